package process_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/platform/process"
)

// recorder registers components that note their starts and stops.
type recorder struct {
	lc     *process.Lifecycle
	events []string
}

func newRecorder() *recorder { return &recorder{lc: process.NewLifecycle(nil)} }

func (r *recorder) add(name string, needs []string, startErr, stopErr error) {
	r.lc.Add(process.Component{
		Name: name, Needs: needs,
		Start: func(context.Context) error { r.events = append(r.events, "start "+name); return startErr },
		Stop:  func(context.Context) error { r.events = append(r.events, "stop "+name); return stopErr },
	})
}

// The process's graph as the binaries use it: each target starts what it
// names and what that needs, dependencies first, and stops in reverse.
func TestLifecycleStartsATargetInDependencyOrderAndStopsInReverse(t *testing.T) {
	build := func() *recorder {
		r := newRecorder()
		r.add("tracing", nil, nil, nil)
		r.add("redis", []string{"tracing"}, nil, nil)
		r.add("database", []string{"tracing"}, nil, nil)
		r.add("queue", []string{"tracing"}, nil, nil)
		r.add("orders", []string{"redis", "database", "queue"}, nil, nil)
		r.add("notifier", []string{"database", "queue"}, nil, nil)
		r.add("http", []string{"redis", "database", "queue"}, nil, nil)
		return r
	}
	for _, tc := range []struct {
		target []string
		want   string
	}{
		{[]string{"http", "orders", "notifier"}, "start tracing,start database,start queue,start redis,start http,start orders,start notifier," +
			"stop notifier,stop orders,stop http,stop redis,stop queue,stop database,stop tracing"},
		{[]string{"notifier"}, "start tracing,start database,start queue,start notifier,stop notifier,stop queue,stop database,stop tracing"},
	} {
		r := build()
		if err := r.lc.Start(context.Background(), time.Second, tc.target...); err != nil {
			t.Fatal(err)
		}
		if err := r.lc.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(r.events, ","); got != tc.want {
			t.Errorf("target %v:\n got %s\nwant %s", tc.target, got, tc.want)
		}
	}
}

// A component that fails to start stops the ones already started, and the
// error names it.
func TestLifecycleFailedStartStopsWhatStarted(t *testing.T) {
	r := newRecorder()
	r.add("a", nil, nil, nil)
	r.add("b", []string{"a"}, errors.New("boom"), nil)
	r.add("c", []string{"b"}, nil, nil)
	err := r.lc.Start(context.Background(), time.Second, "c")
	if err == nil || !strings.Contains(err.Error(), "start b: boom") {
		t.Fatalf("start: %v, want the failure of b", err)
	}
	if got := strings.Join(r.events, ","); got != "start a,start b,stop a" {
		t.Fatalf("events %s, want a started and stopped, c never started", got)
	}
}

// Every started component is stopped even when one fails, and the errors
// are joined, each naming its component; a second Stop stops nothing again.
func TestLifecycleStopsEverythingAndReportsEachFailure(t *testing.T) {
	r := newRecorder()
	r.add("a", nil, nil, errors.New("a broke"))
	r.add("b", []string{"a"}, nil, errors.New("b broke"))
	if err := r.lc.Start(context.Background(), time.Second, "b"); err != nil {
		t.Fatal(err)
	}
	err := r.lc.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stop a: a broke") || !strings.Contains(err.Error(), "stop b: b broke") {
		t.Fatalf("stop: %v, want both failures", err)
	}
	if err := r.lc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.events, ","); got != "start a,start b,stop b,stop a" {
		t.Fatalf("events %s", got)
	}
}

// Every stage of a stop shares one deadline: what a slow stage spends is
// gone for the ones after it.
func TestLifecycleStopSharesOneDeadline(t *testing.T) {
	lc := process.NewLifecycle(nil)
	var seen []time.Time
	for _, name := range []string{"a", "b", "c"} {
		lc.Add(process.Component{Name: name, Stop: func(ctx context.Context) error {
			d, ok := ctx.Deadline()
			if !ok {
				t.Errorf("%s stopped without a deadline", name)
			}
			seen = append(seen, d)
			return nil
		}})
	}
	if err := lc.Start(context.Background(), time.Second, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want, _ := ctx.Deadline()
	for i, d := range seen {
		if !d.Equal(want) {
			t.Fatalf("stage %d had deadline %v, want the shared %v", i, d, want)
		}
	}
}

func TestLifecycleRefusesUnknownNamesAndCycles(t *testing.T) {
	r := newRecorder()
	r.add("a", []string{"b"}, nil, nil)
	r.add("b", []string{"a"}, nil, nil)
	r.add("c", []string{"missing"}, nil, nil)
	for target, want := range map[string]string{
		"a":    "cycle",
		"c":    `needs "missing", which is not registered`,
		"nope": `unknown component "nope"`,
	} {
		err := r.lc.Start(context.Background(), time.Second, target)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("target %s: %v, want %q", target, err, want)
		}
	}
	if len(r.events) != 0 {
		t.Fatalf("events %v: nothing may start", r.events)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a name registered twice must panic")
		}
	}()
	r.add("a", nil, nil, nil)
}

// A process may start in steps: a later target starts only what is not
// running yet, and the stop is still the reverse of all the starts.
func TestLifecycleStartsInSteps(t *testing.T) {
	r := newRecorder()
	r.add("db", nil, nil, nil)
	r.add("sale", []string{"db"}, nil, nil)
	r.add("http", []string{"sale"}, nil, nil)
	if err := r.lc.Start(context.Background(), time.Second, "sale"); err != nil {
		t.Fatal(err)
	}
	if !r.lc.Started("sale") || r.lc.Started("http") {
		t.Fatal("Started does not follow the first step")
	}
	if err := r.lc.Start(context.Background(), time.Second, "http"); err != nil {
		t.Fatal(err)
	}
	if err := r.lc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.events, ","); got != "start db,start sale,start http,stop http,stop sale,stop db" {
		t.Fatalf("events %s", got)
	}
}

// A backend that does not answer yet is waited for, within the start wait;
// one that answered no, or a wait of 0, fails the start at once; a start
// cancelled while waiting stops waiting.
func TestLifecycleWaitsForAnUnreachableBackend(t *testing.T) {
	unreachable := process.Unreachable(errors.New("dial tcp 127.0.0.1:3306: connect: connection refused"))
	refused := errors.New("Error 1045: Access denied")
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		failures []error // what the first starts answer; then it starts
		cancel   bool    // the start's context ends while it waits
		wantErr  string  // "" = started
		attempts int     // exactly; with atLeast, at least
		atLeast  bool
	}{
		{"unreachable twice, then up", time.Minute, []error{unreachable, unreachable}, false, "", 3, false},
		{"no wait", 0, []error{unreachable}, false, "connection refused", 1, false},
		{"refused is not waited for", time.Minute, []error{refused}, false, "Access denied", 1, false},
		{"gives up after the wait", time.Second, []error{unreachable, unreachable, unreachable, unreachable, unreachable, unreachable}, false, "gave up after", 2, true},
		{"cancelled while waiting", time.Minute, []error{unreachable, unreachable, unreachable}, true, "stopped waiting", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lc := process.NewLifecycle(nil)
			lc.WaitForBackends(tc.wait)
			attempts := 0
			lc.Add(process.Component{Name: "database", Start: func(context.Context) error {
				attempts++
				if tc.cancel {
					cancel()
				}
				if attempts <= len(tc.failures) {
					return tc.failures[attempts-1]
				}
				return nil
			}})
			err := lc.Start(ctx, time.Second, "database")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Start = %v; want started", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "start database")):
				t.Fatalf("Start = %v; want an error naming the database and saying %q", err, tc.wantErr)
			}
			if attempts != tc.attempts && !(tc.atLeast && attempts > tc.attempts) {
				t.Errorf("%d attempts; want %d (at least: %v)", attempts, tc.attempts, tc.atLeast)
			}
			if started := lc.Started("database"); started != (tc.wantErr == "") {
				t.Errorf("Started(database) = %v", started)
			}
		})
	}
}
