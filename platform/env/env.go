// Package env reads a process's settings from environment variables, the
// one way every seckill binary does it.
//
// A Reader's getters share one set of rules, so a variable means the same in
// every process that reads it:
//
//   - values are trimmed, and a value that is empty after trimming counts as
//     unset: the getter returns its default;
//   - a value that is set but invalid is a problem naming the variable and
//     what is wrong with it, and the getter returns its default so reading
//     goes on;
//   - every number and every duration must be greater than zero (no seckill
//     setting has a meaningful zero: it would silently mean "never" or
//     "unlimited");
//   - each variable is reported at most once, with its first problem.
//
// Reading collects every problem instead of stopping at the first, so an
// operator fixes a deployment in one round; Err returns them all as one
// error. Checks across variables (one must exceed another, one is required
// when another has some value) are the caller's: it reports them with Fail,
// under the same once-per-variable rule.
//
// The package was written rather than taken from github.com/caarlos0/env:
// that library neither trims nor rejects zero and negative values, so each
// type would need its own parser and check on top of it, and the defaults
// that depend on other settings (the log format follows demo mode) would
// still be code; it would add code, not remove it.
package env

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxFloat is the largest number PositiveFloat accepts: beyond it a rate is
// a typo, not a setting.
const MaxFloat = 1e9

// A VarError is what is wrong with one variable.
type VarError struct {
	Name    string // the variable, e.g. SECKILL_HTTP_ADDR
	Problem string // what is wrong, e.g. `must be a positive integer, got "x"`
}

func (e *VarError) Error() string { return e.Name + " " + e.Problem }

// Reader reads variables through a getenv function (os.Getenv in main, a
// map in tests) and collects their problems. The zero value is not usable:
// create one with New.
type Reader struct {
	getenv func(string) string
	errs   []error
	bad    map[string]bool
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv, bad: map[string]bool{}}
}

// Fail records a problem with name, unless name already has one: one
// complaint per variable, the first, which is the most specific (a getter's
// "not a number" before a cross-check's "must exceed X").
func (r *Reader) Fail(name, format string, args ...any) {
	if r.bad[name] {
		return
	}
	r.bad[name] = true
	r.errs = append(r.errs, &VarError{Name: name, Problem: fmt.Sprintf(format, args...)})
}

// Failed reports whether name has a problem already, so a caller can skip a
// check that would only repeat it.
func (r *Reader) Failed(name string) bool { return r.bad[name] }

// Err returns every problem recorded, one line per variable in the order
// they were found (each a *VarError), or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Raw returns the value of name exactly as set, untrimmed: for secrets and
// templates, whose spaces are theirs. A blank value is unset here too: "".
func (r *Reader) Raw(name string) string {
	v := r.getenv(name)
	if strings.TrimSpace(v) == "" {
		return ""
	}
	return v
}

// String returns the trimmed value of name, or def when it is unset.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// List returns the comma-separated values of name, each trimmed, empty ones
// dropped; nil when unset.
func (r *Reader) List(name string) []string {
	var out []string
	for part := range strings.SplitSeq(r.getenv(name), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// OneOf returns the value of name lower-cased, which must be one of allowed,
// or def when it is unset.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.String(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.Fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// PositiveInt returns the value of name, an integer greater than zero, or
// def when it is unset. def may be 0, meaning "not set, let the component
// choose"; an explicit 0 is still refused.
func (r *Reader) PositiveInt(name string, def int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		r.Fail(name, "must be a positive integer, got %q", v)
		return def
	}
	return n
}

// PositiveFloat returns the value of name, a number greater than zero and at
// most MaxFloat, or def when it is unset.
func (r *Reader) PositiveFloat(name string, def float64) float64 {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > MaxFloat {
		r.Fail(name, "must be a positive number (at most %g), got %q", float64(MaxFloat), v)
		return def
	}
	return f
}

// Duration returns the value of name, a Go duration greater than zero, or
// def when it is unset.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.Fail(name, "must be a positive duration like 500ms or 2s, got %q", v)
		return def
	}
	return d
}

// Bool returns the value of name (true or false, or any other spelling
// strconv.ParseBool reads, such as 1 and 0), or def when it is unset.
func (r *Reader) Bool(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.Fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}
