package orderid

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestNextIsUniqueAndSortableAcrossNodes(t *testing.T) {
	g1, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range []*Generator{g1, g2} {
		for range 4 {
			wg.Go(func() {
				local := make([]string, 0, 5000)
				for range 5000 {
					local = append(local, g.Next(7))
				}
				mu.Lock()
				defer mu.Unlock()
				for _, id := range local {
					if seen[id] {
						t.Errorf("duplicate id %s", id)
					}
					seen[id] = true
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != 40000 {
		t.Fatalf("got %d distinct ids, want 40000", len(seen))
	}
}

func TestStringOrderFollowsTime(t *testing.T) {
	g, _ := New(3)
	clock := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return clock }
	var ids []string
	for i := range 50 {
		clock = clock.Add(time.Duration(i%3) * time.Millisecond)
		ids = append(ids, g.Next(int64(1000-i))) // activity must not affect order
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids not sorted in generation order: %v", ids)
	}
}

func TestClockBackwardsDoesNotRepeat(t *testing.T) {
	g, _ := New(0)
	clock := time.Date(2026, 11, 11, 0, 0, 1, 0, time.UTC)
	g.now = func() time.Time { return clock }
	a := g.Next(1)
	clock = clock.Add(-time.Second)
	b := g.Next(1)
	if a == b || b < a {
		t.Fatalf("after clock step back got %s then %s", a, b)
	}
}

func TestSequenceOverflowBorrowsNextMillisecond(t *testing.T) {
	g, _ := New(5)
	clock := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return clock }
	seen := map[string]bool{}
	for range maxSeq + 10 {
		id := g.Next(1)
		if seen[id] {
			t.Fatalf("duplicate %s at overflow", id)
		}
		seen[id] = true
	}
}

func TestParse(t *testing.T) {
	g, _ := New(9)
	at := time.Date(2026, 11, 11, 0, 0, 0, 123e6, time.UTC)
	g.now = func() time.Time { return at }
	id := g.Next(42)
	act, created, err := Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	if act != 42 || !created.Equal(at) {
		t.Fatalf("Parse(%s) = %d, %v; want 42, %v", id, act, created, at)
	}
	for _, bad := range []string{"", "42", "abc-1", "0000000000000000001-", "0000000000000000001-x", "0000000000000000001-0", "1-1", "-000000000000000001-1"} {
		if _, _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) err = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestNewRejectsBadNode(t *testing.T) {
	for _, n := range []int64{-1, MaxNode + 1} {
		if _, err := New(n); err == nil {
			t.Errorf("New(%d) accepted", n)
		}
	}
}

func TestNodeIsTheGeneratorsNode(t *testing.T) {
	for _, node := range []int64{0, 1, 517, MaxNode} {
		g, err := New(node)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			id := g.Next(42)
			if got, err := Node(id); err != nil || got != node {
				t.Fatalf("Node(%s) = %d, %v; want %d", id, got, err, node)
			}
		}
	}
	if _, err := Node("not-an-id"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Node of garbage: %v, want ErrMalformed", err)
	}
}
