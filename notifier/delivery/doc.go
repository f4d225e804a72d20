// Package delivery is the notifier as a service: its settings (Config: the
// SMTP server, the SMS webhook, rate limits and retries, read by the
// all-in-one through gateway/config and by the seckill-notifier binary;
// ProcessConfig adds what the standalone binary needs besides, with the same
// names and meanings as the other services), its wiring (Start: channels
// from the settings, its tables, the retrier and the subscription to the
// order events; Register: the same as a component of a process's
// lifecycle), and the seckill-notifier process itself (Main, Run).
//
// As everywhere in seckill, the variables are read with platform/env (a
// value that is present but invalid is an error naming the variable), and
// secrets (the SMTP password, the webhook's auth header, credentials
// inside URLs) never appear in errors or logs.
package delivery
