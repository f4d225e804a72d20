// Command seckill-notifier sends the buyers' mail and SMS in the split
// deployment: it consumes the order-events topic from Kafka in the consumer
// group "notifier" and delivers through SMTP and an SMS webhook, with rate
// limits, retries and a dead-letter record per notification in the shared
// database (see package notifier). It serves /healthz, /readyz and /metrics
// on SECKILL_HTTP_ADDR; SIGTERM finishes the events in hand and commits only
// their offsets. Any number of replicas may run: the notifications table
// keeps each (event, channel) to one send.
package main

import (
	"os"

	"github.com/flashsale/seckill/notifier/delivery"
)

func main() {
	os.Exit(delivery.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
