// Command seckill-order-worker consumes order messages from Kafka (consumer
// group "order-workers") and writes them into the database in batches.
// SECKILL_WORKER_CONCURRENCY and SECKILL_WORKER_BATCH set the database's
// pace; more instances than topic partitions sit idle. It serves /healthz,
// /readyz and /metrics on SECKILL_HTTP_ADDR. SIGTERM stops fetching, finishes
// the messages in hand and commits only their offsets.
package main

import (
	"os"

	"github.com/flashsale/seckill/gateway/app"
)

func main() {
	os.Exit(app.Main(app.WorkerOnly, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
