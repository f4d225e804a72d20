package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Check is one backend a readiness probe pings.
type Check struct {
	Name string // what /readyz says when it is down: "redis", "database", "queue"
	Ping func(context.Context) error
}

// NotReady says which backends a readiness probe could not reach. Its text
// names them and nothing else: /readyz is public, and a driver's error
// (addresses, user names) is for the log, reachable through Unwrap.
type NotReady struct {
	Backends []string
	Err      error
}

func (e *NotReady) Error() string {
	return "not ready: " + strings.Join(e.Backends, ", ") + " unreachable"
}

func (e *NotReady) Unwrap() error { return e.Err }

// Readiness returns a Ready function that pings every check and, when any
// fails, returns a *NotReady naming them.
func Readiness(checks ...Check) func(context.Context) error {
	return func(ctx context.Context) error {
		var names []string
		var errs []error
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				names = append(names, c.Name)
				errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			}
		}
		if len(names) == 0 {
			return nil
		}
		return &NotReady{Backends: names, Err: errors.Join(errs...)}
	}
}

// ReadyMessage is what /readyz tells a caller about err: the names of the
// backends down for a *NotReady, nothing of the cause otherwise.
func ReadyMessage(err error) string {
	var nr *NotReady
	if errors.As(err, &nr) {
		return nr.Error()
	}
	return "not ready"
}
