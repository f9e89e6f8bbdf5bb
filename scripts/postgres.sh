#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store's tests (crates/store/tests/postgres.rs).
#
#   scripts/postgres.sh start DIR PORT   create a cluster in DIR if absent, start it on
#                                        127.0.0.1:PORT and print its URL on stdout
#   scripts/postgres.sh stop DIR         stop the server running from DIR
#
# The server listens on loopback only, trusts every local connection (user `strongroom`,
# no password) and skips fsync: it holds test data and nothing else. Its Unix socket, log
# and data all live inside DIR. It uses Debian's binaries (/usr/lib/postgresql/*/bin,
# the highest version). PostgreSQL refuses to run as root, so as root DIR is owned by
# the `postgres` OS user (created by the Debian package) and the binaries run as it.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

# Highest-versioned Debian PostgreSQL bin directory.
find_bindir() {
    local dir best="" best_version=-1 version
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] || continue
        version=$(basename "$(dirname "$dir")")
        version=${version%%.*}
        [[ "$version" =~ ^[0-9]+$ ]] || continue
        if [ "$version" -gt "$best_version" ]; then
            best=$dir
            best_version=$version
        fi
    done
    [ -n "$best" ] || die "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    printf '%s\n' "$best"
}

# Runs a command as the user that owns the server: `postgres` when we are root.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        # From /, which the postgres user can always read, whatever our working directory.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

absolute() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

start() {
    local dir port bindir data socket url
    dir=$(absolute "$1")
    port=$2
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, not '$port'"
    bindir=$(find_bindir)
    data=$dir/data
    socket=$dir/socket

    mkdir -p "$dir" "$socket"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user (apt-get install postgresql)"
        chown -R postgres:postgres "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "the postgres user cannot reach $dir (a parent directory is not traversable)"
    fi
    chmod 700 "$dir"

    if [ ! -f "$data/PG_VERSION" ]; then
        echo "postgres.sh: creating a cluster in $data with $bindir/initdb" >&2
        as_owner "$bindir/initdb" -D "$data" -U strongroom --auth=trust --no-sync \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        # Loopback and the socket in DIR only; nothing else may connect.
        as_owner tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
    fi

    # A server left running by an earlier run is restarted on the requested port.
    if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$data" stop -m fast >/dev/null
    fi

    # pg_ctl hands these to a shell on one line: no newlines in them.
    local options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$socket"
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    options+=" -c max_connections=300"
    # The tests make and drop many small databases; keep the write-ahead log small.
    options+=" -c max_wal_size=64MB -c min_wal_size=32MB"
    as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o "$options" >/dev/null ||
        { tail -n 20 "$dir/server.log" >&2 || true; die "the server did not start (log: $dir/server.log)"; }

    local tries=0
    until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U strongroom -d postgres; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || die "the server does not answer on 127.0.0.1:$port (log: $dir/server.log)"
        sleep 0.5
    done

    url="postgres://strongroom@127.0.0.1:$port/postgres"
    printf '%s\n' "$url"
}

stop() {
    local dir bindir data
    dir=$(absolute "$1")
    data=$dir/data
    bindir=$(find_bindir)
    if [ ! -d "$data" ] || ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        echo "postgres.sh: no server running from $data" >&2
        return 0
    fi
    as_owner "$bindir/pg_ctl" -D "$data" stop -m fast >/dev/null
}

case "${1:-}" in
    start)
        [ $# -eq 3 ] || usage
        start "$2" "$3"
        ;;
    stop)
        [ $# -eq 2 ] || usage
        stop "$2"
        ;;
    *) usage ;;
esac
