module github.com/flashsale/seckill/inventory

go 1.26.0

require (
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/flashsale/seckill/testkit v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-sql-driver/mysql v1.10.1 // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace github.com/flashsale/seckill/testkit => ../testkit
