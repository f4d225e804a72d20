// Package mail delivers the notifier's e-mail: over SMTP with
// wneessen/go-mail, or into the log when no SMTP server is configured (demo
// mode), so a laptop run shows what would have been sent.
package mail
