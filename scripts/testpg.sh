#!/usr/bin/env bash
# testpg.sh start|stop|url — a throwaway PostgreSQL for the store tests.
#
#   export "$(scripts/testpg.sh start)"   # prints PARLEY_TEST_POSTGRES_URL=...
#   go test ./store
#   scripts/testpg.sh stop
#
# The cluster lives in $PARLEY_TESTPG_DIR (default /tmp/parley-testpg):
# trust authentication, 127.0.0.1 only, fsync off. It is for tests only.
# PostgreSQL refuses to run as root: as root, the server runs as the
# "postgres" user. Exits 3 when the PostgreSQL binaries are missing, so that
# callers can skip the PostgreSQL tests.
set -euo pipefail

DIR=${PARLEY_TESTPG_DIR:-/tmp/parley-testpg}
DATA=$DIR/data
PORT_FILE=$DIR/port
LOG=$DIR/postgres.log
DB=parley_test

die() { echo "testpg: $*" >&2; exit 1; }

find_bindir() {
	if [[ -n ${PG_BINDIR:-} ]]; then
		echo "$PG_BINDIR"
		return
	fi
	local d
	# Newest Debian/Ubuntu server package first, then whatever is on PATH.
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
		if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
			echo "$d"
			return
		fi
	done
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		dirname "$(command -v initdb)"
	fi
}

BIN=$(find_bindir)
if [[ -z $BIN || ! -x $BIN/initdb || ! -x $BIN/pg_ctl ]]; then
	echo "testpg: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql or set PG_BINDIR" >&2
	exit 3
fi

# as_owner runs a command as the cluster's owner: postgres when we are root.
if [[ $(id -u) -eq 0 ]]; then
	id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user to run the server"
	OWNER=postgres
	as_owner() { runuser -u postgres -- "$@"; }
else
	OWNER=$(id -un)
	as_owner() { "$@"; }
fi

running() {
	[[ -f $PORT_FILE && -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() {
	echo "PARLEY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$(cat "$PORT_FILE")/$DB?sslmode=disable"
}

port_in_use() {
	# Bash's /dev/tcp: a successful connect means someone listens.
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		if ! port_in_use "$p"; then
			echo "$p"
			return
		fi
	done
	die "no free TCP port found"
}

start() {
	if running; then
		url
		return
	fi
	# Leftovers of a cluster that is not running (reboot, crash): start over.
	if [[ -e $DIR ]]; then
		stop_cluster
	fi
	mkdir -p "$DIR"
	chmod 700 "$DIR"
	chown "$OWNER" "$DIR"
	as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$DIR/initdb.log" 2>&1 ||
		die "initdb failed, see $DIR/initdb.log"
	cat >>"$DATA/postgresql.conf" <<-EOF

		# testpg.sh: a throwaway test server, speed over durability.
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$DIR'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 200
	EOF
	local attempt port
	for attempt in 1 2 3; do
		port=$(free_port)
		if as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
			echo "$port" >"$PORT_FILE"
			break
		fi
		# Most likely someone took the port meanwhile: try another one.
		if [[ $attempt -eq 3 ]]; then
			die "postgres did not start, see $LOG"
		fi
	done
	local i
	for i in $(seq 1 60); do
		if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
			break
		fi
		[[ $i -eq 60 ]] && die "postgres is not accepting connections, see $LOG"
		sleep 0.5
	done
	"$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
		-c "CREATE DATABASE $DB" >/dev/null || die "could not create database $DB"
	url
}

stop_cluster() {
	if [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
		as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || die "pg_ctl stop failed"
	fi
	rm -rf "$DIR"
}

case ${1:-} in
start) start ;;
stop) stop_cluster ;;
url)
	if running; then
		url
	else
		echo "testpg: not running; start it with: $0 start" >&2
		exit 1
	fi
	;;
*)
	echo "usage: $0 start|stop|url" >&2
	exit 2
	;;
esac
