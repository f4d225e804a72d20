// Package spike runs a Double-11 spike against a gateway (a deployed one,
// or one it starts in-process), measures it, audits the invariants and
// produces the report. Run is the whole procedure; the CLI in cmd/spike
// only parses flags and writes files.
package spike
