# One entry point for developers and CI. Modules are listed explicitly: at a
# go.work root, `go test ./...` does not cross module boundaries.
MODULES := platform mq inventory order notifier gateway static testkit deploy loadtest
GO      ?= go
ARGS    ?=

.PHONY: run build test test-short lint fmt bench tidy deps help services-up services-down services-env spike spike-compare cluster-up cluster-down cluster-status cluster-env chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run: ## run the all-in-one process (gateway + order workers, embedded backends unless configured)
	$(GO) run ./gateway/cmd/seckill $(ARGS)

build: ## build the binaries (all-in-one, gateway, order worker, notifier) into bin/
	@set -e; for b in seckill seckill-gateway; do CGO_ENABLED=0 $(GO) build -trimpath -o bin/$$b ./gateway/cmd/$$b; done
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/seckill-order-worker ./order/cmd/seckill-order-worker
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/seckill-notifier ./notifier/cmd/seckill-notifier

test: ## run every module's tests with the race detector (real Redis/MariaDB tests need SECKILL_TEST_REDIS_URL / SECKILL_TEST_MYSQL_DSN)
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done

test-short: ## the tests without the race detector, faster while editing
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -count=1 ./...); done

lint: ## gofmt and go vet over every module
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would rewrite:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

fmt: ## gofmt -w every module
	gofmt -w $(MODULES)

bench: ## benchmarks of every module (set SECKILL_TEST_REDIS_URL / SECKILL_TEST_MYSQL_DSN for the real-backend ones)
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem $(ARGS) ./...); done

tidy: ## go mod tidy in every module
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

deps: ## list each module's direct dependencies that have a newer release; see README "Dependencies"
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && direct=$$($(GO) mod edit -json | $(GO) run ../scripts/directdeps.go) && \
		[ -z "$$direct" ] || $(GO) list -m -u -f '{{if .Update}}{{.Path}} {{.Version}} -> {{.Update.Version}}{{end}}' $$direct | grep . || true); done

spike: ## the load tester: a 100,000-user spike, audited, reports in spike-report/ (ARGS="--users 20000 --redis-url ..."; see docs/loadtest.md)
	$(GO) run ./loadtest/cmd/spike $(ARGS)

spike-compare: ## the same spike against the naive synchronous mode and the pipeline, side by side (spike-report/compare.html); buy tokens off, as the design is the variable (ARGS="--buy-token required" puts the door in front of both)
	$(GO) run ./loadtest/cmd/spike --compare --buy-token off $(ARGS)

services-up: ## start Redis (127.0.0.1:6390) and MariaDB (127.0.0.1:3390) from the OS packages, state in .services/; ARGS=--install installs them
	@scripts/services.sh up $(ARGS)

services-down: ## stop what services-up started; the data stays (ARGS=--purge deletes it)
	@scripts/services.sh down $(ARGS)

services-env: ## print their env as export lines, for eval
	@scripts/services.sh env

cluster-up: build ## the production topology on this machine: nginx over 2 gateways, 2 workers, a notifier, 3 NATS nodes, Redis, MariaDB, toxiproxy; state in .cluster/ (ARGS="--demo", "--queue-sync interval", "--install"; docs/cluster.md)
	@$(GO) run ./loadtest/cmd/cluster up $(ARGS)

cluster-down: ## stop what cluster-up started; the data stays (ARGS=--purge deletes .cluster/)
	@$(GO) run ./loadtest/cmd/cluster down $(ARGS)

cluster-status: ## each cluster process: up, paused or down, pid, ports, readiness
	@$(GO) run ./loadtest/cmd/cluster status $(ARGS)

cluster-env: ## the cluster's env as export lines: eval "$(make -s cluster-env)"
	@$(GO) run ./loadtest/cmd/cluster env $(ARGS)

chaos: build ## faults mid-spike on a fresh cluster (.cluster-chaos/, ports 19000+): the default schedule, then Redis restarted empty; audits each, reports in spike-report/chaos-*.html; exit 1 on a breach (ARGS="--users 5000 --seed 7 --schedule my.yaml"; docs/chaos.md)
	$(GO) run ./loadtest/cmd/chaos $(ARGS)
