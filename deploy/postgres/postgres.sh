#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and local runs (no Docker needed).
#
#   deploy/postgres/postgres.sh start    # install (if needed), initdb (first time), start, wait
#   deploy/postgres/postgres.sh stop     # fast shutdown
#   deploy/postgres/postgres.sh status   # exit 0 when up and accepting the strata login
#   deploy/postgres/postgres.sh url      # SQLAlchemy async URL for the strata database
#   deploy/postgres/postgres.sh dsn      # plain libpq URL (psql, asyncpg.connect)
#
# It never touches Debian's system cluster: its own data dir lives in
# $STRATA_RUN_DIR/postgres (default <repo>/.run/postgres, or a /var/tmp dir keyed
# by the run dir path (so by the repo path) when the postgres user cannot reach the repo), it listens on
# 127.0.0.1:${STRATA_PG_PORT:-55432} only, and its unix socket sits in that dir.
# PostgreSQL refuses to run as root, so server commands run as the `postgres`
# system user via runuser.
#
# Role `strata` (password `strata`, CREATEDB: the test suite creates its own
# databases) owns database `strata`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN_ROOT="${STRATA_RUN_DIR:-$REPO/.run}"
PORT="${STRATA_PG_PORT:-55432}"
PG_USER=postgres
DB_USER=strata
DB_PASS=strata
DB_NAME=strata
FALLBACK="/var/tmp/strata-pg-$(printf '%s' "$RUN_ROOT" | sha256sum | cut -c1-12)"

log() { echo "postgres.sh: $*" >&2; }

as_pg() { (cd / && runuser -u "$PG_USER" -- "$@"); }

find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; fi
}

ensure_installed() {
    BIN="$(find_bin)"
    if [[ -z "$BIN" ]]; then
        log "no initdb under /usr/lib/postgresql/*/bin; installing Debian's postgresql"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        BIN="$(find_bin)"
        [[ -n "$BIN" ]] || { log "postgresql install did not provide initdb"; exit 1; }
    fi
    id "$PG_USER" >/dev/null 2>&1 || { log "system user $PG_USER missing"; exit 1; }
}

# Where the cluster lives. Existing clusters win; for a new one prefer the run
# dir and fall back to /var/tmp when the postgres user cannot traverse it.
resolve_dir() {
    local primary="$RUN_ROOT/postgres"
    if [[ -f "$primary/data/PG_VERSION" ]]; then PGDIR="$primary"; return; fi
    if [[ -f "$FALLBACK/data/PG_VERSION" ]]; then PGDIR="$FALLBACK"; return; fi
    PGDIR="$primary"
}

prepare_dir() {
    resolve_dir
    if [[ ! -f "$PGDIR/data/PG_VERSION" ]]; then
        mkdir -p "$PGDIR"
        chown "$PG_USER": "$PGDIR"
        chmod 700 "$PGDIR"
        if ! as_pg test -w "$PGDIR"; then
            log "user $PG_USER cannot reach $PGDIR; using $FALLBACK instead"
            rmdir "$PGDIR" 2>/dev/null || true
            PGDIR="$FALLBACK"
            mkdir -p "$PGDIR"
            chown "$PG_USER": "$PGDIR"
            chmod 700 "$PGDIR"
        fi
    fi
    set_paths
}

set_paths() {
    DATA="$PGDIR/data"
    SOCK="$PGDIR/sock"
    # unix socket paths are limited to ~107 bytes; keep deep repo paths working.
    if (( ${#SOCK} > 80 )); then SOCK="$FALLBACK-sock"; fi
    LOGFILE="$PGDIR/postgres.log"
}

init_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    log "initdb in $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U "$PG_USER" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$PGDIR/initdb.log" 2>&1 \
        || { cat "$PGDIR/initdb.log" >&2; exit 1; }
    mkdir -p "$SOCK"; chown "$PG_USER": "$SOCK"; chmod 700 "$SOCK"
    # conf.d-style overrides appended once; postgresql.conf keeps the last value.
    as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<CONF

# --- strata (deploy/postgres/postgres.sh) ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
password_encryption = 'scram-sha-256'
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
CONF
    # Only loopback TCP (password) and the private socket (postgres user, trust).
    as_pg tee "$DATA/pg_hba.conf" >/dev/null <<HBA
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
HBA
}

running() {
    [[ -n "${BIN:-}" && -f "${DATA:-/nonexistent}/PG_VERSION" ]] || return 1
    as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_super() {
    as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$PG_USER" -d postgres "$@"
}

psql_app() {
    PGPASSWORD="$DB_PASS" PGCONNECT_TIMEOUT=5 "$BIN/psql" -X -q -At -h 127.0.0.1 -p "$PORT" \
        -U "$DB_USER" -d "$DB_NAME" "$@"
}

ensure_role_db() {
    psql_super <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS';
  ELSE
    ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
}

wait_ready() {  # real login as the app role, not a port check
    local i
    for i in $(seq 1 120); do
        if [[ "$(psql_app -c 'select 1' 2>/dev/null)" == "1" ]]; then return 0; fi
        sleep 0.5
    done
    log "strata login on 127.0.0.1:$PORT not ready after 60s; see $LOGFILE"
    return 1
}

cmd_start() {
    ensure_installed
    prepare_dir
    if running; then
        ensure_role_db
        wait_ready
        log "already running ($DATA, 127.0.0.1:$PORT); nothing to do"
        return 0
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        log "port 127.0.0.1:$PORT is taken by another process; set STRATA_PG_PORT"
        exit 1
    fi
    init_cluster
    mkdir -p "$SOCK"; chown "$PG_USER": "$SOCK"; chmod 700 "$SOCK"
    log "starting PostgreSQL $(basename "$(dirname "$BIN")") on 127.0.0.1:$PORT (data $DATA, log $LOGFILE)"
    # setsid: the postmaster must not die with the caller's process group.
    (cd / && setsid runuser -u "$PG_USER" -- "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" \
        -o "-p $PORT" -w -t 60 start >/dev/null) \
        || { tail -n 30 "$LOGFILE" >&2 || true; exit 1; }
    ensure_role_db
    wait_ready
}

cmd_stop() {
    BIN="$(find_bin)"
    [[ -n "$BIN" ]] || { log "not installed"; return 0; }
    resolve_dir; set_paths
    if ! running; then log "not running"; return 0; fi
    log "stopping ($DATA)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null \
        || as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null
}

cmd_status() {
    BIN="$(find_bin)"
    resolve_dir; set_paths
    if [[ -n "$BIN" ]] && running && [[ "$(psql_app -c 'select 1' 2>/dev/null)" == "1" ]]; then
        echo "postgres running: 127.0.0.1:$PORT, data $DATA"
        return 0
    fi
    echo "postgres not running (data $DATA)"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) echo "postgresql+asyncpg://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME" ;;
    dsn) echo "postgresql://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME" ;;
    *) echo "usage: $0 {start|stop|status|url|dsn}" >&2; exit 2 ;;
esac
