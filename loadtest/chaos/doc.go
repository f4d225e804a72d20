// Package chaos plays a schedule of faults against the cluster in a box
// (loadtest/cluster) while a spike runs, and measures what the faults did:
// how long the system took to recover from each one, and which alerts they
// raised.
//
// A Schedule is a short YAML or JSON list of faults at offsets from the
// sale's start (T0): a process killed (SIGKILL, started again on the same
// data after a while) or paused (SIGSTOP, then SIGCONT); a backend
// connection (Redis, MariaDB, a NATS node) cut, slowed or reset through
// toxiproxy; Redis restarted empty. The faults are fixed offsets, so a run
// is replayed by its schedule and the crowd's seed. Parse reads one, and
// Validate checks it against the cluster's topology before anything runs:
// an unknown kind, process or proxy, a negative offset, a fault on a
// process the cluster lacks or two faults on one target at once are errors
// naming the fault.
//
// Run injects the faults through a Target (the cluster, or a fake in
// tests) on a Clock, and records when each began and ended. RecoveryOf
// computes a fault's time to recover from what the load generator saw;
// FiredAlerts reads the alerts a Prometheus evaluated meanwhile.
//
// docs/chaos.md describes the schedules, the report and make chaos.
package chaos
