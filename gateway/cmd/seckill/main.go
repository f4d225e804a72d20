// Command seckill runs the whole flash-sale pipeline in one process: the
// gateway, the order workers and the queue, on embedded Redis, SQLite and an
// in-process queue unless SECKILL_REDIS_URL, SECKILL_DB_DSN and SECKILL_MQ
// say otherwise.
//
// SIGINT or SIGTERM stops accepting requests, drains the queue into the
// database and exits 0.
package main

import (
	"os"

	"github.com/flashsale/seckill/gateway/app"
)

func main() {
	os.Exit(app.Main(app.AllInOne, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
