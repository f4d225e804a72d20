package cluster

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name may hold spaces and parentheses: fields count from
	// the last ')'.
	line := "4242 (we (ird) name) T 1 4242 4200 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 10 ..."
	st, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'T' || st.session != 4200 || st.startTicks != 987654 {
		t.Fatalf("parseStat = %+v, want state T, session 4200, start 987654", st)
	}
	if _, err := parseStat(1, []byte("1 (x) S 0")); err == nil {
		t.Fatal("a short line parsed")
	}
}

// sleeper is a process record for a shell that starts a child and waits:
// a session with two processes, like nginx's master and worker. Like
// nginx's master, it stops its child when it is asked to stop.
func sleeper(t *testing.T) *proc {
	t.Helper()
	return sleeperRunning(t, "trap 'kill $!; exit 0' TERM; sleep 300 & wait")
}

func sleeperRunning(t *testing.T, script string) *proc {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	p := &proc{
		Name: "sleeper", Argv: []string{sh, "-c", script}, Dir: dir,
		Log: filepath.Join(dir, "sleeper.log"), StopSignal: syscall.SIGTERM,
	}
	if err := p.launch(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.signalGroup(syscall.SIGKILL) })
	deadline := time.Now().Add(5 * time.Second)
	for len(p.members()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child never appeared: members %+v", p.members())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// waitState waits until p's process is in state want (signals arrive
// asynchronously).
func waitState(t *testing.T, p *proc, want byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := p.alive()
		if st.state == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %c, want %c", st.state, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLaunchRecordsAndStopsTheWholeSession(t *testing.T) {
	p := sleeper(t)
	st, ok := p.alive()
	if !ok || st.session != p.PID {
		t.Fatalf("launched process: alive %v, session %d, want its own session %d", ok, st.session, p.PID)
	}
	if err := p.stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.alive(); ok {
		t.Fatal("still alive after stop")
	}
	if m := p.members(); len(m) != 0 {
		t.Fatalf("left behind after stop: %+v", m)
	}
}

func TestStopKillsWhatOutlivesTheStopSignal(t *testing.T) {
	// This shell leaves its child behind when it exits: stop must find
	// the orphan in the session and kill it, and say it had to.
	p := sleeperRunning(t, "sleep 300 & wait")
	err := p.stop(context.Background(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("stop: %v, want an error saying it had to kill", err)
	}
	if m := p.members(); len(m) != 0 {
		t.Fatalf("left behind after stop: %+v", m)
	}
}

func TestStopContinuesAPausedProcess(t *testing.T) {
	p := sleeper(t)
	if err := syscall.Kill(-p.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, 'T')
	// A stopped process sees SIGTERM only once continued; stop must
	// not need its fallback SIGKILL for that.
	if err := p.stop(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("stop of a paused process: %v", err)
	}
}

func TestARecordWithAnotherStartTimeIsNotOurs(t *testing.T) {
	p := sleeper(t)
	other := *p
	other.StartTicks++ // the same pid, started at another time: a reused pid
	if _, ok := other.alive(); ok {
		t.Fatal("a process with another start time counts as ours")
	}
	if m := other.members(); len(m) != 0 {
		t.Fatalf("members of a reused pid's session: %+v", m)
	}
	// And so it is never signalled: the real process lives on.
	if err := other.stop(context.Background(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.alive(); !ok {
		t.Fatal("stopping a stale record killed the process that now has its pid")
	}
}

func TestClusterControlsOneProcess(t *testing.T) {
	p := sleeper(t)
	c := &Cluster{dir: t.TempDir(), st: &state{Version: stateVersion, Procs: []*proc{p}}}
	// The controls go by name; use one the cluster knows for this record.
	p.Name = Redis
	if err := c.Pause(Redis); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, 'T')
	if s := c.Status(context.Background())[0]; s.State != StatePaused || s.PID != p.PID {
		t.Fatalf("status of a paused process: %+v", s)
	}
	if err := c.Resume(Redis); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(Redis); err != nil {
		t.Fatal(err)
	}
	if len(p.members()) != 0 {
		t.Fatal("Kill left processes of the session")
	}
	if err := c.Kill(Redis); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Kill of a dead process: %v, want ErrNotRunning", err)
	}
	// The error lists the names this cluster has (here only redis).
	if err := c.Pause("nginx"); !errors.Is(err, ErrUnknownProcess) || !strings.Contains(err.Error(), "(one of redis)") {
		t.Fatalf("Pause of an unknown name: %v, want ErrUnknownProcess listing the cluster's names", err)
	}
	// A name of the topology that this cluster lacks is unknown too, not
	// a nil record.
	if err := c.Kill(Prometheus); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("Kill of a process the cluster does not have: %v, want ErrUnknownProcess", err)
	}
}

// Progress lines come from a goroutine per process (starting, stopping):
// they reach Config.Log one at a time, whatever the writer (run with
// -race).
func TestProgressLinesAreSerialised(t *testing.T) {
	var buf bytes.Buffer
	c := &Cluster{dir: t.TempDir(), log: &buf, st: &state{Version: stateVersion}}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				c.logf("line %d.%d", i, j)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}
