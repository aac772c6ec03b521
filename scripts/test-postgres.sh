#!/usr/bin/env bash
# Print URLs of PostgreSQL servers the tests may use, comma-separated, one per test worker,
# starting Debian's clusters if needed: `scripts/test-postgres.sh 2` gives two URLs.
# Prints nothing (and exits 0) when no server can be had, so the PostgreSQL suite is skipped;
# CI sets ONELOOP_REQUIRE_POSTGRES=1, which turns that skip into a failure.
#
# Why one cluster per worker: the event log hands a consumer only what every running
# transaction of the *cluster* can no longer change (pg_snapshot_xmin), so one worker's open
# transaction would hold back another worker's consumers in a shared cluster.
#
# Why not pytest-postgresql's own process fixture: pg_ctl/initdb refuse to run as root, and CI
# runs as root. pg_ctlcluster (Debian's wrapper) starts the cluster as the postgres user.
set -euo pipefail

workers="${1:-1}"
if [ -n "${ONELOOP_TEST_POSTGRES_URL:-}" ]; then
    echo "$ONELOOP_TEST_POSTGRES_URL"
    exit 0
fi
command -v pg_ctlcluster >/dev/null 2>&1 || exit 0
version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
[ -n "$version" ] || exit 0

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

# Start cluster $1 (created when missing) and print its port.
cluster_port() {
    local name=$1
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version $name"; then
        pg_createcluster "$version" "$name" >&2
    fi
    pg_ctlcluster "$version" "$name" start >/dev/null 2>&1 || true
    local port
    port=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1==v && $2==n {print $3}')
    for _ in $(seq 1 50); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        sleep 0.2
    done
    as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 -c "
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'oneloop_test') THEN
            CREATE ROLE oneloop_test LOGIN CREATEDB PASSWORD 'oneloop_test';
          END IF;
        END \$\$;" >&2
    echo "$port"
}

urls=()
for i in $(seq 1 "$workers"); do
    name=main
    [ "$i" -gt 1 ] && name="oneloop_test_$i"
    port=$(cluster_port "$name") || exit 0
    urls+=("postgresql+psycopg://oneloop_test:oneloop_test@127.0.0.1:${port}/postgres")
done
(IFS=,; echo "${urls[*]}")
