// Command seckill-order-worker consumes order messages from NATS or Kafka
// (consumer group "order-workers") and writes them into the database in
// batches; it also cancels unpaid orders at their deadline, relays the
// order events, sweeps and reconciles (order/service). SECKILL_WORKER_CONCURRENCY
// and SECKILL_WORKER_BATCH set the database's pace; on Kafka, more instances
// than topic partitions sit idle. It serves /healthz, /readyz and /metrics
// on SECKILL_HTTP_ADDR (/metrics on SECKILL_METRICS_ADDR when set). SIGTERM
// stops fetching, finishes the messages in hand and commits only their
// offsets.
package main

import (
	"os"

	"github.com/flashsale/seckill/order/service"
)

func main() {
	os.Exit(service.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
