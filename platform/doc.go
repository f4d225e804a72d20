// Package platform holds what every seckill process does the same way, so
// it is done one way: platform/env reads settings from the environment,
// platform/process runs a service binary (signals, logging, the ops
// listeners, graceful shutdown), platform/metrics registers Prometheus
// collectors and platform/tracing starts OpenTelemetry tracing. Of the
// other seckill modules it depends only on mq (platform/tracing hands out
// the mq/mqotel configuration); every service module depends on it.
package platform
