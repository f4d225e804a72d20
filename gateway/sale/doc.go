// Package sale is the gateway's use cases, without HTTP: buying a unit
// (Place), reading an activity and the storefront, reading and paying an
// order, issuing buy tokens, and the admin's create and stats. It owns what
// makes a buy cheap and correct under a spike: the short activity cache,
// the local sold-out flags and holder snapshots, the bound on buys in
// flight, the reserve through the coalescer, the publish and the release.
//
// Every method answers with a value or an *Error whose Kind says what went
// wrong in the sale's terms; the HTTP port (gateway/httpapi) maps a Kind to
// a status once, and metrics and the dashboard count the buy's Outcome,
// never a status read back.
//
// Naive is the teaching anti-pattern behind the same Placer interface: one
// database transaction per buy (SECKILL_BUY_MODE=naive).
package sale
