// Command seckill-gateway is the gateway as its own service: it serves the
// HTTP API and publishes orders to Kafka (SECKILL_MQ=kafka is required);
// seckill-order-worker processes write them. Run as many as the traffic
// needs: order ids stay unique because each instance leases its own node
// number from Redis.
package main

import (
	"os"

	"github.com/flashsale/seckill/gateway/app"
)

func main() {
	os.Exit(app.Main(app.GatewayOnly, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
