#!/usr/bin/env bash
# Installs (only when missing) and starts Redis and MariaDB on loopback, builds
# nats-server (only when missing or of another version), then prints the test
# environment as `export` lines. Used by .ci/run; safe to run again when they
# are already up.
set -euo pipefail

log() { echo "ci-services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	log "starting redis-server on 127.0.0.1:6379"
	as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
fi

mariadbd=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
if ! mariadb-admin -uroot --protocol=socket ping >/dev/null 2>&1 && ! mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1; then
	log "starting mariadbd"
	as_root mkdir -p /run/mysqld
	as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
	as_root start-stop-daemon --start --oknodo --background --exec "$mariadbd" -- --user=mysql >&2
fi
for i in $(seq 1 60); do
	mariadb-admin -uroot --protocol=socket ping >/dev/null 2>&1 && break
	mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1 && break
	[ "$i" = 60 ] && { log "mariadb did not come up within 60s"; exit 1; }
	sleep 1
done
for i in $(seq 1 30); do
	redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
	[ "$i" = 30 ] && { log "redis did not come up within 30s"; exit 1; }
	sleep 1
done

# Tests need a TCP login that may create databases. A fresh Debian MariaDB
# lets root in over the socket only, so make a dedicated user there.
if mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1; then
	dsn='root@tcp(127.0.0.1:3306)/test?parseTime=true'
else
	log "root has no TCP login: creating user seckill"
	as_root mariadb -uroot --protocol=socket -e "
		CREATE USER IF NOT EXISTS 'seckill'@'127.0.0.1' IDENTIFIED BY 'seckill';
		CREATE USER IF NOT EXISTS 'seckill'@'localhost' IDENTIFIED BY 'seckill';
		GRANT ALL PRIVILEGES ON *.* TO 'seckill'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON *.* TO 'seckill'@'localhost';
		CREATE DATABASE IF NOT EXISTS test;
		FLUSH PRIVILEGES;" >&2
	dsn='seckill:seckill@tcp(127.0.0.1:3306)/test?parseTime=true'
fi
# The JetStream tests of mq/natsjs also run against nats-server processes.
# The OS package is too old (message schedules need 2.12+), so build the
# version mq resolves (what its embedded server links) into a cache, once
# per version.
root=$(cd "$(dirname "$0")/.." && pwd)
gobin=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
nats_bin=${XDG_CACHE_HOME:-$HOME/.cache}/seckill/bin/nats-server
nats_ver=$(cd "$root/mq" && "$gobin" list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
if [ "$("$nats_bin" --version 2>/dev/null)" != "nats-server: $nats_ver" ]; then
	log "building nats-server $nats_ver into $nats_bin"
	mkdir -p "$(dirname "$nats_bin")"
	(cd "$root/mq" && CGO_ENABLED=0 "$gobin" build -trimpath -o "$nats_bin.tmp" github.com/nats-io/nats-server/v2) >&2
	mv -f "$nats_bin.tmp" "$nats_bin"
fi

echo "export SECKILL_TEST_REDIS_URL='redis://127.0.0.1:6379/0'"
echo "export SECKILL_TEST_MYSQL_DSN='$dsn'"
echo "export SECKILL_TEST_NATS_SERVER='$nats_bin'"
