#!/usr/bin/env bash
# Runs Redis and MariaDB from the OS packages for development without Docker:
# on loopback, on their own ports (Redis 6390, MariaDB 3390, so a system Redis
# on 6379 or MySQL on 3306 is left alone), with all their state under
# ./.services (gitignored).
#
#   scripts/services.sh up [--install]   start both (again: a no-op), wait until
#                                        they answer, print the env as exports
#   scripts/services.sh down [--purge]   stop exactly the processes `up` started
#                                        (pid files); --purge also deletes the data
#   scripts/services.sh env              print the env as exports (both must be up)
#
# eval "$(scripts/services.sh up)" starts them and sets the env in one step;
# progress goes to stderr, only the export lines to stdout.
#
# Environment: SECKILL_SERVICES_DIR (state, default ./.services at the
# repository root), SECKILL_SERVICES_REDIS_PORT (6390),
# SECKILL_SERVICES_MYSQL_PORT (3390).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${SECKILL_SERVICES_DIR:-$root/.services}
redis_port=${SECKILL_SERVICES_REDIS_PORT:-6390}
mysql_port=${SECKILL_SERVICES_MYSQL_PORT:-3390}

log() { echo "services: $*" >&2; }
die() {
	log "$*"
	exit 1
}

usage() {
	cat >&2 <<-EOF
		usage: scripts/services.sh up [--install] | down [--purge] | env

		  up        start Redis on 127.0.0.1:$redis_port and MariaDB on 127.0.0.1:$mysql_port
		            (state in $state), wait until both answer, print the env
		  --install install the missing packages with apt-get first (uses sudo unless root)
		  down      stop them; the data stays for the next up
		  --purge   also delete $state
		  env       print the env to use (export lines for eval)
	EOF
	exit 2
}

for p in "$redis_port" "$mysql_port"; do
	[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "port $p is not a number in 1..65535 (SECKILL_SERVICES_REDIS_PORT, SECKILL_SERVICES_MYSQL_PORT)"
done
[ "$redis_port" != "$mysql_port" ] || die "Redis and MariaDB cannot share port $redis_port"

redis_dir=$state/redis
mysql_dir=$state/mariadb
run_dir=$state/run
log_dir=$state/log
redis_pid=$run_dir/redis.pid
mysql_pid=$run_dir/mariadb.pid
mysql_sock=$run_dir/mariadb.sock
# A unix socket path longer than ~107 bytes cannot be bound; MariaDB always
# creates one, so a deep checkout puts it in the temp directory instead.
if [ ${#mysql_sock} -gt 100 ]; then
	mysql_sock=${TMPDIR:-/tmp}/seckill-mariadb-$(id -u)-$mysql_port.sock
fi

# find_bin prints the path of the first of the given programs found in PATH
# or in the sbin directories, which are not in a normal user's PATH.
find_bin() {
	local name dir
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		for dir in /usr/sbin /usr/local/sbin /sbin; do
			if [ -x "$dir/$name" ]; then
				echo "$dir/$name"
				return 0
			fi
		done
	done
	return 1
}

# locate sets the paths of every program used, installing or explaining
# how to install what is missing.
locate() {
	local install=$1 missing=()
	find_bin redis-server >/dev/null || missing+=(redis-server)
	find_bin redis-cli >/dev/null || missing+=(redis-tools)
	find_bin mariadbd mysqld >/dev/null && find_bin mariadb-install-db mysql_install_db >/dev/null || missing+=(mariadb-server)
	find_bin mariadb mysql >/dev/null && find_bin mariadb-admin mysqladmin >/dev/null || missing+=(mariadb-client)
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$install" != yes ]; then
			die "not installed: ${missing[*]}
  Debian/Ubuntu: sudo apt-get install redis-server mariadb-server mariadb-client
                 (or: scripts/services.sh up --install)
  macOS:         brew install redis mariadb
The packages' own services (ports 6379, 3306) are not used and may stay stopped."
		fi
		command -v apt-get >/dev/null 2>&1 || die "--install needs apt-get; install ${missing[*]} with your package manager"
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo)
		log "installing ${missing[*]} with apt-get"
		"${sudo[@]}" apt-get update -qq >&2
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
	redis_server=$(find_bin redis-server) || die "redis-server is still missing"
	redis_cli=$(find_bin redis-cli) || die "redis-cli is still missing"
	mariadbd=$(find_bin mariadbd mysqld) || die "mariadbd is still missing"
	install_db=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db is still missing"
	mariadb=$(find_bin mariadb mysql) || die "the mariadb client is still missing"
	mariadb_admin=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin is still missing"
}

# running PIDFILE PATTERN prints the pid in PIDFILE and succeeds when that
# process is alive and its command line contains PATTERN, so a stale pid
# file whose number now belongs to another process is never taken for ours.
running() {
	local pid args
	[ -s "$1" ] || return 1
	pid=$(tr -dc 0-9 <"$1")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	args=$(ps -ww -p "$pid" -o args= 2>/dev/null) || return 1
	[[ $args == *"$2"* ]] || return 1
	echo "$pid"
}
redis_running() { running "$redis_pid" ":$redis_port"; }
mysql_running() { running "$mysql_pid" "--datadir=$mysql_dir"; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log() {
	[ -s "$1" ] || return 0
	log "last lines of $1:"
	tail -n 20 "$1" >&2
}

redis_up() {
	local pid
	if pid=$(redis_running); then
		log "redis already running (pid $pid) on 127.0.0.1:$redis_port"
		return 0
	fi
	rm -f "$redis_pid"
	port_taken "$redis_port" && die "127.0.0.1:$redis_port is in use by another process: choose another port with SECKILL_SERVICES_REDIS_PORT"
	mkdir -p "$redis_dir" "$run_dir" "$log_dir"
	log "starting redis on 127.0.0.1:$redis_port (data in $redis_dir)"
	# Snapshots every minute with changes and at shutdown keep the data
	# across down and up.
	"$redis_server" --daemonize yes --bind 127.0.0.1 --port "$redis_port" \
		--dir "$redis_dir" --dbfilename dump.rdb --save "60 1" --appendonly no \
		--pidfile "$redis_pid" --logfile "$log_dir/redis.log" >&2
	for _ in $(seq 1 150); do
		[ "$("$redis_cli" -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.2
	done
	show_log "$log_dir/redis.log"
	die "redis did not answer on 127.0.0.1:$redis_port within 30s"
}

mysql_up() {
	local pid user=() launcher=() launched
	if pid=$(mysql_running); then
		log "mariadb already running (pid $pid) on 127.0.0.1:$mysql_port"
	else
		rm -f "$mysql_pid"
		port_taken "$mysql_port" && die "127.0.0.1:$mysql_port is in use by another process: choose another port with SECKILL_SERVICES_MYSQL_PORT"
		# mariadbd refuses to run as root unless told to.
		if [ "$(id -u)" = 0 ]; then user=(--user=root); fi
		mkdir -p "$run_dir" "$log_dir"
		if [ ! -d "$mysql_dir/mysql" ]; then
			[ ! -e "$mysql_dir" ] || die "$mysql_dir exists but holds no initialised database: move it away or run: scripts/services.sh down --purge"
			log "initialising mariadb in $mysql_dir"
			# Into a scratch directory first, so an interrupted run leaves no
			# half-made data directory behind.
			rm -rf "$mysql_dir.init"
			if ! "$install_db" --no-defaults "${user[@]}" --datadir="$mysql_dir.init" \
				--auth-root-authentication-method=normal --skip-test-db \
				>"$log_dir/mariadb-install.log" 2>&1; then
				show_log "$log_dir/mariadb-install.log"
				die "mariadb-install-db failed"
			fi
			mv "$mysql_dir.init" "$mysql_dir"
		fi
		log "starting mariadb on 127.0.0.1:$mysql_port (data in $mysql_dir)"
		# In its own session, so a Ctrl-C in this terminal later does not
		# reach it; its output goes to the log, never to our stdout.
		if command -v setsid >/dev/null 2>&1; then launcher=(setsid); else launcher=(nohup); fi
		"${launcher[@]}" "$mariadbd" --no-defaults "${user[@]}" --datadir="$mysql_dir" \
			--bind-address=127.0.0.1 --port="$mysql_port" --socket="$mysql_sock" \
			--pid-file="$mysql_pid" --log-error="$log_dir/mariadb.log" --skip-name-resolve \
			</dev/null >>"$log_dir/mariadb.log" 2>&1 &
		launched=$!
		local ok=
		for _ in $(seq 1 300); do
			if "$mariadb_admin" --no-defaults -h127.0.0.1 -P"$mysql_port" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
				ok=1
				break
			fi
			if ! kill -0 "$launched" 2>/dev/null && ! mysql_running >/dev/null; then
				show_log "$log_dir/mariadb.log"
				die "mariadbd exited at start"
			fi
			sleep 0.2
		done
		if [ -z "$ok" ]; then
			show_log "$log_dir/mariadb.log"
			die "mariadb did not answer on 127.0.0.1:$mysql_port within 60s"
		fi
	fi
	"$mariadb" --no-defaults -h127.0.0.1 -P"$mysql_port" -uroot -e \
		"CREATE DATABASE IF NOT EXISTS seckill CHARACTER SET utf8mb4; CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4;" ||
		die "cannot log in to mariadb on 127.0.0.1:$mysql_port as root without a password (is $mysql_dir from another setup? scripts/services.sh down --purge starts afresh)"
}

print_env() {
	cat <<-EOF
		export SECKILL_REDIS_URL='redis://127.0.0.1:$redis_port/0'
		export SECKILL_DB_DSN='root@tcp(127.0.0.1:$mysql_port)/seckill'
		export SECKILL_TEST_REDIS_URL='redis://127.0.0.1:$redis_port/1'
		export SECKILL_TEST_MYSQL_DSN='root@tcp(127.0.0.1:$mysql_port)/test?parseTime=true'
		# make run on these backends is not demo mode: set SECKILL_DEMO=true, or SECKILL_JWT_SECRET and SECKILL_ADMIN_TOKEN
	EOF
}

# stop NAME PID waits for the process to exit after SIGTERM: Redis writes
# its snapshot and MariaDB flushes InnoDB on the way out.
stop() {
	local name=$1 pid=$2
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	die "$name (pid $pid) did not stop within 60s; see $log_dir"
}

cmd=${1:-}
if [ $# -gt 0 ]; then shift; fi
install=no purge=no
for arg in "$@"; do
	case "$cmd $arg" in
	"up --install") install=yes ;;
	"down --purge") purge=yes ;;
	*) usage ;;
	esac
done

case "$cmd" in
up)
	locate "$install"
	redis_up
	mysql_up
	log "redis on 127.0.0.1:$redis_port, mariadb on 127.0.0.1:$mysql_port (databases seckill, test; user root, no password)"
	log "stop them with: make services-down (data stays; --purge deletes it)"
	print_env
	;;
down)
	if pid=$(redis_running); then stop redis "$pid"; else log "redis is not running"; fi
	rm -f "$redis_pid"
	if pid=$(mysql_running); then stop mariadb "$pid"; else log "mariadb is not running"; fi
	rm -f "$mysql_pid"
	if [ "$purge" = yes ]; then
		log "deleting $state"
		rm -rf -- "$state"
	fi
	;;
env)
	down=()
	redis_running >/dev/null || down+=(redis)
	mysql_running >/dev/null || down+=(mariadb)
	[ ${#down[@]} -eq 0 ] || die "not running: ${down[*]} (start with: make services-up)"
	print_env
	;;
*)
	usage
	;;
esac
