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
// # Descriptions
//
// Every getter takes the setting's description as its last argument, as
// the flag package's do, so a setting cannot be read without one being
// written next to the read. The Reader records what it read (Settings):
// the name, the kind of value, the default and the description. That
// record is the configuration reference (docs/configuration.md is
// generated from it) and each process's list of the names it knows (the
// deploy files are checked against it). So read every setting
// unconditionally, before the checks that depend on it: the record is what
// a reader over an empty environment (Describe) sees. A default that
// depends on other settings is stated in words with DefaultText.
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

// Kind is the form of a setting's value, as an operator writes it.
type Kind string

// The kinds of the getters.
const (
	KindText     Kind = "text"     // String, Raw
	KindList     Kind = "list"     // List: comma-separated
	KindOneOf    Kind = "one of"   // OneOf: Setting.Allowed
	KindInt      Kind = "integer"  // PositiveInt: > 0
	KindNumber   Kind = "number"   // PositiveFloat: > 0
	KindDuration Kind = "duration" // Duration: Go syntax, > 0
	// KindDurationOff is NonNegativeDuration: Go syntax, >= 0, where 0
	// turns the thing off.
	KindDurationOff Kind = "duration or 0"
	KindBool        Kind = "bool" // Bool
)

// Setting is one variable as a Reader read it.
type Setting struct {
	Name string
	Kind Kind
	// Default is the value used when the variable is unset, as an
	// operator would write it ("5m", "64", "text"), or the words given
	// with DefaultText; "" when unset means nothing is set (the
	// description says what that means).
	Default string
	// DefaultWords is true when Default is DefaultText's words rather
	// than a value.
	DefaultWords bool
	Allowed      []string // OneOf's values, in order
	Doc          string   // the description given at the read
}

// Reader reads variables through a getenv function (os.Getenv in main, a
// map in tests), collects their problems and records what it read. The
// zero value is not usable: create one with New.
type Reader struct {
	getenv  func(string) string
	st      *state
	defText string // DefaultText's words for the reads through this Reader
}

// state is shared by a Reader and the views DefaultText returns.
type state struct {
	errs     []error
	bad      map[string]bool
	settings []Setting
	index    map[string]int // name -> position in settings
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv, st: &state{bad: map[string]bool{}, index: map[string]int{}}}
}

// Describe runs read over an empty environment and returns the settings it
// read, in the order first read: the description of a configuration
// loader, for its reference documentation and its list of names.
func Describe(read func(r *Reader)) []Setting {
	r := New(func(string) string { return "" })
	read(r)
	return r.Settings()
}

// Names returns the names of settings, in order.
func Names(settings []Setting) []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Name
	}
	return out
}

// Settings returns every variable read so far, once each, in the order
// first read; a variable read twice keeps the description of its first
// described read.
func (r *Reader) Settings() []Setting {
	out := make([]Setting, len(r.st.settings))
	for i, s := range r.st.settings {
		s.Allowed = append([]string(nil), s.Allowed...)
		out[i] = s
	}
	return out
}

// DefaultText returns a view of r whose reads record text as their default
// instead of the value passed: for a default that depends on other
// settings ("text in demo mode, json otherwise"). Problems and records go
// to r.
//
//	c.LogFormat = r.DefaultText("text in demo mode, json otherwise").
//		OneOf("SECKILL_LOG_FORMAT", def, []string{"text", "json"}, "log line format")
func (r *Reader) DefaultText(text string) *Reader {
	return &Reader{getenv: r.getenv, st: r.st, defText: text}
}

// record notes a read of name; the first read with a description describes it.
func (r *Reader) record(name string, kind Kind, def string, allowed []string, doc string) {
	s := Setting{Name: name, Kind: kind, Default: def, Allowed: allowed, Doc: doc}
	if r.defText != "" {
		s.Default, s.DefaultWords = r.defText, true
	}
	i, seen := r.st.index[name]
	switch {
	case !seen:
		r.st.index[name] = len(r.st.settings)
		r.st.settings = append(r.st.settings, s)
	case r.st.settings[i].Doc == "":
		r.st.settings[i] = s
	}
}

// Fail records a problem with name, unless name already has one: one
// complaint per variable, the first, which is the most specific (a getter's
// "not a number" before a cross-check's "must exceed X").
func (r *Reader) Fail(name, format string, args ...any) {
	if r.st.bad[name] {
		return
	}
	r.st.bad[name] = true
	r.st.errs = append(r.st.errs, &VarError{Name: name, Problem: fmt.Sprintf(format, args...)})
}

// Failed reports whether name has a problem already, so a caller can skip a
// check that would only repeat it.
func (r *Reader) Failed(name string) bool { return r.st.bad[name] }

// Err returns every problem recorded, one line per variable in the order
// they were found (each a *VarError), or nil.
func (r *Reader) Err() error { return errors.Join(r.st.errs...) }

// IsSet reports whether name is set (not blank), for a check on a variable
// that a getter reads too; it describes nothing, so a variable only ever
// checked with IsSet is recorded without a description.
func (r *Reader) IsSet(name string) bool {
	r.record(name, KindText, "", nil, "")
	return strings.TrimSpace(r.getenv(name)) != ""
}

// Raw returns the value of name exactly as set, untrimmed: for secrets and
// templates, whose spaces are theirs. A blank value is unset here too: "".
func (r *Reader) Raw(name, doc string) string {
	r.record(name, KindText, "", nil, doc)
	v := r.getenv(name)
	if strings.TrimSpace(v) == "" {
		return ""
	}
	return v
}

// String returns the trimmed value of name, or def when it is unset.
func (r *Reader) String(name, def, doc string) string {
	r.record(name, KindText, def, nil, doc)
	return r.value(name, def)
}

func (r *Reader) value(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// List returns the comma-separated values of name, each trimmed, empty ones
// dropped; nil when unset.
func (r *Reader) List(name, doc string) []string {
	r.record(name, KindList, "", nil, doc)
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
func (r *Reader) OneOf(name, def string, allowed []string, doc string) string {
	r.record(name, KindOneOf, def, allowed, doc)
	v := strings.ToLower(r.value(name, def))
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
// choose" (say what it chooses with DefaultText); an explicit 0 is still
// refused.
func (r *Reader) PositiveInt(name string, def int, doc string) int {
	r.record(name, KindInt, zeroless(def != 0, strconv.Itoa(def)), nil, doc)
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
func (r *Reader) PositiveFloat(name string, def float64, doc string) float64 {
	r.record(name, KindNumber, zeroless(def != 0, strconv.FormatFloat(def, 'f', -1, 64)), nil, doc)
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
func (r *Reader) Duration(name string, def time.Duration, doc string) time.Duration {
	r.record(name, KindDuration, zeroless(def != 0, FormatDuration(def)), nil, doc)
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

// NonNegativeDuration returns the value of name, a Go duration of zero or
// more (0 turns off what it bounds), or def when it is unset.
func (r *Reader) NonNegativeDuration(name string, def time.Duration, doc string) time.Duration {
	r.record(name, KindDurationOff, FormatDuration(def), nil, doc)
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.Fail(name, "must be a duration like 30s, or 0 for none, got %q", v)
		return def
	}
	return d
}

// Bool returns the value of name (true or false, or any other spelling
// strconv.ParseBool reads, such as 1 and 0), or def when it is unset.
func (r *Reader) Bool(name string, def bool, doc string) bool {
	r.record(name, KindBool, strconv.FormatBool(def), nil, doc)
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

// FormatDuration writes d as an operator would: 5m, 720h, 1m30s, 200us
// (time.Duration.String's 5m0s without its zero units, and us for µs,
// which time.ParseDuration reads too).
func FormatDuration(d time.Duration) string {
	s := strings.Replace(d.String(), "µs", "us", 1)
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func zeroless(set bool, s string) string {
	if !set {
		return ""
	}
	return s
}
