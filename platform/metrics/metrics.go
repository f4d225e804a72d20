// Package metrics is the one way seckill registers Prometheus collectors.
//
// Register is the rule: every collector of a component is registered in one
// call, and every failure comes back at once, joined, so a clash of names
// is found in one run. MustRegister is Register for constructors that have
// no error to return, as prometheus.MustRegister is. Shared is for the
// components a process may build more than once on one registry (two order
// workers, a lifecycle per caller): the second gets the first one's
// collector, and both count into the same series.
package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers each of cs on reg and returns the failures joined, one
// per collector that was refused; the others stay registered.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("register metric %s: %w", names(c), err))
		}
	}
	return errors.Join(errs...)
}

// MustRegister is Register that panics with the failures: for constructors
// that cannot return an error, where a clash is a programming error found by
// the first test that builds the component.
func MustRegister(reg prometheus.Registerer, cs ...prometheus.Collector) {
	if err := Register(reg, cs...); err != nil {
		panic(err)
	}
}

// Shared registers c on reg, or, when a collector of the same type is
// already registered there under the same descriptors, returns that one
// instead, so every instance of a component counts into one series. Any
// other failure is returned with c, which then counts unseen.
func Shared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric %s: %w", names(c), err)
}

// names lists the metric names c describes, for an error that says which
// registration failed (prometheus's own errors often do not).
func names(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var out []string
	for d := range ch {
		// Desc has no accessor for its name; its String form quotes it.
		s := d.String()
		if i := strings.Index(s, `fqName: `); i >= 0 {
			if q, err := strconv.QuotedPrefix(s[i+len(`fqName: `):]); err == nil {
				if n, err := strconv.Unquote(q); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	if len(out) == 0 {
		return "(unnamed collector)"
	}
	return strings.Join(out, ", ")
}
