// Package platform holds what every seckill process does the same way, so
// it is done one way: platform/env reads settings from the environment,
// platform/process runs a service binary (signals, logging, the ops
// listeners, graceful shutdown) and platform/metrics registers Prometheus
// collectors. It depends on no other seckill module; every service module
// depends on it.
package platform
