// Package orderid makes order ids at the gateway: unique across gateway
// instances and time, sortable by creation time, and carrying the activity
// they belong to.
//
// An id is a 64-bit snowflake (41 bits of milliseconds since 2025-01-01, 10
// bits of node, 12 bits of sequence) written as 19 zero-padded decimal digits,
// a dash, and the activity id: "0412345678901234567-42". The padding keeps
// string order equal to time order. Carrying the activity (the "gene" trick of
// sharded order tables) lets anyone find the order's Redis reservation, which
// lives in the activity's hash slot, before the database row exists.
package orderid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	nodeBits = 10
	seqBits  = 12
	// MaxNode is the largest node number a Generator accepts.
	MaxNode = 1<<nodeBits - 1
	maxSeq  = 1<<seqBits - 1
)

// epoch is the zero of the millisecond field.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrMalformed is returned by Parse for a string that is not an order id.
var ErrMalformed = errors.New("orderid: malformed order id")

// Generator hands out ids for one node. It is safe for concurrent use.
type Generator struct {
	node int64
	now  func() time.Time

	mu     sync.Mutex
	lastMs int64
	seq    int64
}

// New returns a Generator for node (0..MaxNode). Two live generators must
// never share a node number; the gateway leases one from Redis at start.
func New(node int64) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("orderid: node %d out of range 0..%d", node, MaxNode)
	}
	return &Generator{node: node, now: time.Now}, nil
}

// Next returns a new id for an order of activityID.
func (g *Generator) Next(activityID int64) string {
	g.mu.Lock()
	ms := g.now().Sub(epoch).Milliseconds()
	if ms < g.lastMs {
		// The clock stepped back: keep counting from the last instant
		// rather than risk reusing an id.
		ms = g.lastMs
	}
	if ms == g.lastMs {
		g.seq++
		if g.seq > maxSeq {
			// 4096 ids in one millisecond: borrow the next one.
			ms++
			g.seq = 0
		}
	} else {
		g.seq = 0
	}
	g.lastMs = ms
	id := ms<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
	g.mu.Unlock()
	return fmt.Sprintf("%019d-%d", id, activityID)
}

// Parse returns the activity id and the creation time carried by id.
func Parse(id string) (activityID int64, created time.Time, err error) {
	snow, act, ok := strings.Cut(id, "-")
	if !ok || len(snow) != 19 {
		return 0, time.Time{}, fmt.Errorf("%w: %q", ErrMalformed, id)
	}
	n, err := strconv.ParseInt(snow, 10, 64)
	if err != nil || n < 0 {
		return 0, time.Time{}, fmt.Errorf("%w: %q", ErrMalformed, id)
	}
	activityID, err = strconv.ParseInt(act, 10, 64)
	if err != nil || activityID <= 0 {
		return 0, time.Time{}, fmt.Errorf("%w: %q", ErrMalformed, id)
	}
	ms := n >> (nodeBits + seqBits)
	return activityID, epoch.Add(time.Duration(ms) * time.Millisecond), nil
}

// Node returns the node number of the generator that made id: whose
// gateway reserved it, so a reservation left by a gateway that died can be
// told from one a live gateway is still publishing.
func Node(id string) (int64, error) {
	snow, _, ok := strings.Cut(id, "-")
	if _, _, err := Parse(id); err != nil || !ok {
		return 0, fmt.Errorf("%w: %q", ErrMalformed, id)
	}
	n, _ := strconv.ParseInt(snow, 10, 64) // checked by Parse
	return n >> seqBits & MaxNode, nil
}
