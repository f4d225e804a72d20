// Package cluster runs the production topology of seckill on one Linux
// machine, without containers: nginx as the load balancer over two
// gateways, two order workers and a notifier (the `make build` binaries), a
// three-node NATS JetStream cluster with R3 streams, Redis, MariaDB, a
// local SMTP sink for the notifier's mail, and Shopify's toxiproxy between
// the seckill processes and every backend connection (Redis, MariaDB, each
// NATS node), so a chaos run can cut, slow or reset any of them.
//
// Every process is a child in a session of its own (setsid), so it
// survives the command that started it; its pid and start time are kept in
// a state file under Config.Dir, and every later signal goes only to a
// process whose start time still matches, never to a pid that has been
// reused. State, data and logs stay under Config.Dir (.cluster/ at the
// repository root); ports are Config.BasePort and the 51 above it, on
// 127.0.0.1 only.
//
// Up starts the cluster (and is a no-op when it is up), Load reads a
// running one back from its state file, and a Cluster stops it (Down),
// reports on it (Status, Env) and is the chaos tool's handle on each
// process: Kill, Start, Pause, Resume, RestartRedisEmpty, and Toxiproxy for
// the faults on the wires. The processes' names are the constants LB,
// Gateway1 ... SMTP; the proxies carry the names of the backends they stand
// in front of (ProxyNames).
//
// Linux only: processes are identified through /proc.
package cluster
