package inventory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/testkit"
	"github.com/redis/go-redis/v9"
)

// The tests in this file start a real three-master Redis Cluster
// (redis-server 7.0 or later, skipped when it is not installed, failed
// under CI=true) and prove that every script finds all of its activity's
// keys in one slot, so the cluster accepts it, while the activities spread
// over every master.

// clusterDeadline bounds every wait for the cluster: the processes to
// answer, the gossip to converge, the client to see every slot.
const clusterDeadline = 20 * time.Second

// redisNode is one redis-server process of a test cluster.
type redisNode struct {
	addr        string // 127.0.0.1:port, for clients
	port, bus   int    // client port and cluster bus port
	first, last int    // the slots it serves, once the cluster is formed
	rdb         *redis.Client
	log         string // the server's log file
}

func (n *redisNode) owns(slot int) bool { return n.first <= slot && slot <= n.last }

// startCluster starts three cluster-enabled redis-server processes on free
// loopback ports, gives each a third of the slots, introduces them to each
// other and waits until every node says cluster_state:ok. The processes
// are killed when the test ends, and when the test binary dies (Linux).
func startCluster(t *testing.T) []*redisNode {
	t.Helper()
	bin := testkit.RequireBinary(t, "redis-server")
	ctx := context.Background()
	slots := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	nodes := make([]*redisNode, len(slots))
	for i, r := range slots {
		nodes[i] = startRedisNode(t, bin)
		nodes[i].first, nodes[i].last = r[0], r[1]
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(n.log)
				t.Logf("log of redis-server %s:\n%s", n.addr, b)
			}
		}
	})
	// What redis-cli --cluster create does: slots and a distinct config
	// epoch per node, then a MEET from the first node to the others.
	for i, n := range nodes {
		if err := n.rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", n.first, n.last).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE %d %d on %s: %v", n.first, n.last, n.addr, err)
		}
		if err := n.rdb.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			t.Fatalf("CLUSTER SET-CONFIG-EPOCH on %s: %v", n.addr, err)
		}
	}
	for _, n := range nodes[1:] {
		if err := nodes[0].rdb.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.port, n.bus).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s from %s: %v", n.addr, nodes[0].addr, err)
		}
	}
	waitFor(t, "every node to report cluster_state:ok with all slots and nodes", func() error {
		for _, n := range nodes {
			info, err := n.rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("CLUSTER INFO on %s: %w", n.addr, err)
			}
			want := []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384", "cluster_known_nodes:3", "cluster_size:3"}
			lines := strings.Fields(info)
			for _, w := range want {
				if !slices.Contains(lines, w) {
					return fmt.Errorf("%s lacks %s:\n%s", n.addr, w, info)
				}
			}
		}
		return nil
	})
	return nodes
}

// startRedisNode starts one redis-server. Free ports are found by listening
// on port 0 and closing; another process may take one in between, so a
// server that exits at start is retried on new ports.
func startRedisNode(t *testing.T, bin string) *redisNode {
	t.Helper()
	var errs []error
	for range 3 {
		n, err := tryStartRedisNode(t, bin)
		if err == nil {
			return n
		}
		errs = append(errs, err)
	}
	t.Fatalf("redis-server did not start: %v", errors.Join(errs...))
	return nil
}

func tryStartRedisNode(t *testing.T, bin string) (*redisNode, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	n := &redisNode{port: ports[0], bus: ports[1]}
	n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	dir := t.TempDir() // removed after the process is killed: cleanups run last-in first-out
	n.log = filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(n.port),
		"--bind", "127.0.0.1",
		"--cluster-enabled", "yes",
		"--cluster-port", strconv.Itoa(n.bus),
		"--cluster-announce-ip", "127.0.0.1",
		"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(n.port)+".conf"),
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", n.log,
	)
	out, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	testkit.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	n.rdb = redis.NewClient(&redis.Options{Addr: n.addr, DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { n.rdb.Close() })

	deadline := time.Now().Add(clusterDeadline)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(out.Name())
			l, _ := os.ReadFile(n.log)
			return nil, fmt.Errorf("redis-server on port %d exited at start (%v): %s%s", n.port, waitErr, b, l)
		default:
		}
		// Dial before PING: go-redis would log every refused connection.
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			if err = n.rdb.Ping(context.Background()).Err(); err == nil {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server on port %d does not answer PING after %v: %w", n.port, clusterDeadline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitFor polls check until it returns nil, failing the test with its last
// error after clusterDeadline.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(clusterDeadline)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", clusterDeadline, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterClient returns the product's client for the cluster, made from a
// redis+cluster:// URL as SECKILL_REDIS_URL would give it, once it knows
// all three masters and a node for every slot.
func clusterClient(t *testing.T, nodes []*redisNode) *redis.ClusterClient {
	t.Helper()
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	u := "redis+cluster://" + strings.Join(addrs, ",")
	c, err := NewClient(u)
	if err != nil {
		t.Fatalf("NewClient(%q): %v", u, err)
	}
	t.Cleanup(func() { c.Close() })
	rdb, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("NewClient(%q) = %T; want *redis.ClusterClient", u, c)
	}
	ctx := context.Background()
	waitFor(t, "the cluster client to see every master and slot", func() error {
		var mu sync.Mutex
		var masters []string
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			masters = append(masters, m.Options().Addr)
			return nil
		})
		if err != nil {
			return err
		}
		slices.Sort(masters)
		if want := slices.Sorted(slices.Values(addrs)); !slices.Equal(masters, want) {
			return fmt.Errorf("masters %v; want %v", masters, want)
		}
		ranges, err := rdb.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		covered := 0
		for _, r := range ranges {
			covered += r.End - r.Start + 1
		}
		if covered != 16384 {
			return fmt.Errorf("CLUSTER SLOTS covers %d slots: %v", covered, ranges)
		}
		return nil
	})
	return rdb
}

func TestRedisCluster(t *testing.T) {
	nodes := startCluster(t)
	rdb := clusterClient(t, nodes)
	ctx := context.Background()

	const activities = 30
	scenario := New(rdb, Options{Prefix: "lifecycle"})

	t.Run("every call on 30 activities answers as on a single node", func(t *testing.T) {
		for id := int64(1); id <= activities; id++ {
			checkLifecycle(t, scenario, id)
		}
	})

	t.Run("an activity's keys share one slot on one master, activities spread over all masters", func(t *testing.T) {
		owner := map[int64]*redisNode{}   // activity -> the master holding its keys
		found := map[int64][]string{}     // activity -> its keys, as the masters list them
		perNode := map[*redisNode]int64{} // master -> activities it holds
		for _, n := range nodes {
			var keys []string
			iter := n.rdb.Scan(ctx, 0, "lifecycle:*", 1000).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Fatalf("SCAN on %s: %v", n.addr, err)
			}
			for _, k := range keys {
				id, err := activityOfKey(k)
				if err != nil {
					t.Fatalf("key %q on %s: %v", k, n.addr, err)
				}
				if o, ok := owner[id]; ok && o != n {
					t.Errorf("activity %d has keys on %s and on %s", id, o.addr, n.addr)
				}
				if _, ok := owner[id]; !ok {
					perNode[n]++
				}
				owner[id] = n
				found[id] = append(found[id], k)
			}
		}
		for id := int64(1); id <= activities; id++ {
			keys := scenario.keys(id)
			// After the lifecycle nothing is pending, so that key is gone.
			want := []string{keys.meta, keys.res, keys.users} // sorted
			if got := slices.Sorted(slices.Values(found[id])); !slices.Equal(got, want) {
				t.Errorf("activity %d: keys on the masters %v; want %v", id, got, want)
			}
			var slot int64 = -1
			for _, k := range keys.forScript() {
				s, err := rdb.ClusterKeySlot(ctx, k).Result()
				if err != nil {
					t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
				}
				if slot >= 0 && s != slot {
					t.Errorf("activity %d: key %s in slot %d, another key in slot %d", id, k, s, slot)
				}
				slot = s
			}
			if o := owner[id]; o != nil && !o.owns(int(slot)) {
				t.Errorf("activity %d: keys on %s, which does not serve their slot %d", id, o.addr, slot)
			}
		}
		for _, n := range nodes {
			if perNode[n] == 0 {
				t.Errorf("master %s (slots %d-%d) holds none of the %d activities", n.addr, n.first, n.last, activities)
			}
			t.Logf("master %s (slots %d-%d) holds %d activities", n.addr, n.first, n.last, perNode[n])
		}
	})

	t.Run("keys of two activities in one script are refused with CROSSSLOT", func(t *testing.T) {
		// The control: this cluster does enforce slots, so the runs above
		// prove the hash tags rather than a lenient server.
		k1, k2 := scenario.keys(1).meta, scenario.keys(2).meta
		s1, err1 := rdb.ClusterKeySlot(ctx, k1).Result()
		s2, err2 := rdb.ClusterKeySlot(ctx, k2).Result()
		if err1 != nil || err2 != nil || s1 == s2 {
			t.Fatalf("slots of %s, %s = %d, %d (%v, %v); want two different slots", k1, k2, s1, s2, err1, err2)
		}
		err := rdb.Eval(ctx, "return redis.call('EXISTS', KEYS[1], KEYS[2])", []string{k1, k2}).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
			t.Errorf("script over %s and %s: err = %v; want CROSSSLOT", k1, k2, err)
		}
	})

	t.Run("200 users for 50 units: exactly 50 reserved", func(t *testing.T) {
		const stock, users = 50, 200
		s := New(rdb, Options{Prefix: "concurrent"})
		const id = 7
		a := Activity{ID: id, Stock: stock, StartsAt: t0, EndsAt: t0.Add(window)}
		if loaded, err := s.Load(ctx, a, stock, nil); err != nil || !loaded {
			t.Fatalf("Load = %v, %v; want true, nil", loaded, err)
		}
		reserveDistinctUsers(t, s, id, users, stock)
	})
}

// TestLifecycle runs checkLifecycle on a single node (miniredis, and the
// real Redis of SECKILL_TEST_REDIS_URL): the answers TestRedisCluster
// expects from the cluster are the single node's.
func TestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		id := randomID()
		checkLifecycle(t, e.s, id)
		keys, err := scanKeys(context.Background(), e.rdb, e.prefix)
		if err != nil {
			t.Fatal(err)
		}
		k := e.s.keys(id)
		if want := []string{k.meta, k.res, k.users}; !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
			t.Errorf("keys after the lifecycle = %v; want %v", keys, want)
		}
	})
}

// activityOfKey reads the activity id out of "<prefix>:{a<ID>}:<name>".
func activityOfKey(key string) (int64, error) {
	_, rest, ok1 := strings.Cut(key, "{a")
	tag, _, ok2 := strings.Cut(rest, "}")
	if !ok1 || !ok2 {
		return 0, errors.New("no {a<ID>} hash tag")
	}
	return strconv.ParseInt(tag, 10, 64)
}

// checkLifecycle takes activity id (not yet loaded) through every Store
// call (Load with a restored reservation, Reserve with each outcome,
// Confirm, Claim, Lookup, Release, ReapPending, Stats, Remaining) and
// checks every answer. It leaves meta, users and res, and nothing pending.
func checkLifecycle(t *testing.T, s *Store, id int64) {
	t.Helper()
	ctx := context.Background()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("activity %d: "+format, append([]any{id}, args...)...)
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	if r, err := s.Reserve(ctx, id, "u1", "r1", "o1", at(1)); err != nil || r.Outcome != UnknownActivity {
		fail("Reserve before Load = %+v, %v; want UnknownActivity", r, err)
	}
	if _, ok, err := s.Stats(ctx, id); err != nil || ok {
		fail("Stats before Load = %v, %v; want not loaded", ok, err)
	}
	a := Activity{ID: id, Stock: 4, StartsAt: t0, EndsAt: t0.Add(window)}
	restored := []Reservation{{OrderID: "o0", UserID: "u0", ReservedAt: t0, Status: StatusQueued}}
	if loaded, err := s.Load(ctx, a, 3, restored); err != nil || !loaded {
		fail("Load = %v, %v; want true, nil", loaded, err)
	}
	if loaded, err := s.Load(ctx, a, 4, nil); err != nil || loaded {
		fail("second Load = %v, %v; want false, nil", loaded, err)
	}
	wantStats := func(want Stats) {
		t.Helper()
		st, ok, err := s.Stats(ctx, id)
		if err != nil || !ok || st != want {
			fail("Stats = %+v, %v, %v; want %+v", st, ok, err, want)
		}
		rem, ok, err := s.Remaining(ctx, id)
		if err != nil || !ok || rem != want.Remaining {
			fail("Remaining = %d, %v, %v; want %d", rem, ok, err, want.Remaining)
		}
	}
	wantStats(Stats{Stock: 4, Remaining: 3, Reserved: 1})

	reserves := []struct {
		user, request, order string
		now                  time.Time
		want                 ReserveResult
	}{
		{"u1", "r1", "o1", at(1), ReserveResult{Outcome: Reserved, OrderID: "o1", Remaining: 2}},
		{"u1", "r1", "o1-again", at(2), ReserveResult{Outcome: Pending, OrderID: "o1", Remaining: 2}},
		{"u2", "", "o2", at(3), ReserveResult{Outcome: Reserved, OrderID: "o2", Remaining: 1}},
		{"u3", "", "o3", at(4), ReserveResult{Outcome: Reserved, OrderID: "o3", Remaining: 0}},
		{"u4", "", "o4", at(5), ReserveResult{Outcome: SoldOut}},
		{"u2", "r9", "o2-again", at(5), ReserveResult{Outcome: AlreadyPurchased}},
		{"u0", "", "o0-again", at(5), ReserveResult{Outcome: AlreadyPurchased}},
		{"u5", "", "o5", t0.Add(-time.Millisecond), ReserveResult{Outcome: NotStarted}},
		{"u5", "", "o5", t0.Add(window), ReserveResult{Outcome: Ended}},
	}
	for _, r := range reserves {
		got, err := s.Reserve(ctx, id, r.user, r.request, r.order, r.now)
		if err != nil || got != r.want {
			fail("Reserve(%q, %q, %q) = %+v, %v; want %+v", r.user, r.request, r.order, got, err, r.want)
		}
	}
	wantStats(Stats{Stock: 4, Remaining: 0, Reserved: 4, Pending: 3})

	if ok, err := s.Confirm(ctx, id, "o1"); err != nil || !ok {
		fail("Confirm(o1) = %v, %v; want true", ok, err)
	}
	if ok, err := s.Confirm(ctx, id, "o-none"); err != nil || ok {
		fail("Confirm(o-none) = %v, %v; want false", ok, err)
	}
	if got, err := s.Reserve(ctx, id, "u1", "r1", "o1-again", at(6)); err != nil || got != (ReserveResult{Outcome: Existing, OrderID: "o1"}) {
		fail("Reserve after Confirm = %+v, %v; want Existing o1", got, err)
	}
	ok, err := s.Claim(ctx, id, []string{"o1", "o2", "o-none"})
	if want := []bool{true, true, false}; err != nil || !slices.Equal(ok, want) {
		fail("Claim = %v, %v; want %v", ok, err, want)
	}

	lookups := []struct {
		order string
		want  Reservation
	}{
		{"o0", Reservation{OrderID: "o0", UserID: "u0", ReservedAt: t0, Status: StatusQueued}},
		{"o1", Reservation{OrderID: "o1", UserID: "u1", RequestID: "r1", ReservedAt: at(1), Status: StatusClaimed}},
		{"o3", Reservation{OrderID: "o3", UserID: "u3", ReservedAt: at(4), Status: StatusPending}},
	}
	for _, l := range lookups {
		got, ok, err := s.Lookup(ctx, id, l.order)
		if err != nil || !ok || !got.ReservedAt.Equal(l.want.ReservedAt) {
			fail("Lookup(%s) = %+v, %v, %v; want %+v", l.order, got, ok, err, l.want)
		}
		got.ReservedAt = l.want.ReservedAt // compared above; the location may differ
		if got != l.want {
			fail("Lookup(%s) = %+v; want %+v", l.order, got, l.want)
		}
	}
	if got, ok, err := s.Lookup(ctx, id, "o-none"); err != nil || ok {
		fail("Lookup(o-none) = %+v, %v, %v; want none", got, ok, err)
	}

	// o2 is claimed: Release leaves it; its order's cancel returns it.
	if r, err := s.Release(ctx, id, "o2"); err != nil || r != NotReleasedClaimed {
		fail("Release(claimed o2) = %v, %v; want %v", r, err, NotReleasedClaimed)
	}
	if ok, err := s.ReleaseCancelled(ctx, id, "o2"); err != nil || !ok {
		fail("ReleaseCancelled(o2) = %v, %v; want true", ok, err)
	}
	if ok, err := s.ReleaseCancelled(ctx, id, "o2"); err != nil || ok {
		fail("second ReleaseCancelled(o2) = %v, %v; want false", ok, err)
	}
	if r, err := s.Release(ctx, id, "o2"); err != nil || r != NotReleasedAbsent {
		fail("Release(o2) after its cancel = %v, %v; want %v", r, err, NotReleasedAbsent)
	}
	wantStats(Stats{Stock: 4, Remaining: 1, Reserved: 3, Pending: 1})
	if got, err := s.Reserve(ctx, id, "u4", "", "o4", at(7)); err != nil || got != (ReserveResult{Outcome: Reserved, OrderID: "o4"}) {
		fail("Reserve of the released unit = %+v, %v; want Reserved o4", got, err)
	}

	reaped, err := s.ReapPending(ctx, id, t0.Add(time.Minute), 10)
	if want := []string{"o3", "o4"}; err != nil || !slices.Equal(reaped, want) {
		fail("ReapPending = %v, %v; want %v", reaped, err, want)
	}
	if ok, err := s.Claim(ctx, id, []string{"o3"}); err != nil || ok[0] {
		fail("Claim of reaped o3 = %v, %v; want false", ok, err)
	}
	wantStats(Stats{Stock: 4, Remaining: 2, Reserved: 2, Pending: 0})
}
