// Package httpapi is the gateway's HTTP contract (v1) on gin: the door's
// filters (body limit, auth, rate limits), then one use case per route
// (gateway/sale), and the one place where errors become answers
// (respond). Handlers decode, call one method and answer; what a buy does
// and why lives in sale.
package httpapi
