#!/usr/bin/env bash
# Print a URL of a PostgreSQL server the tests may use, starting Debian's cluster if needed.
# Prints nothing (and exits 0) when no server can be had, so the PostgreSQL suite is skipped;
# CI sets ONELOOP_REQUIRE_POSTGRES=1, which turns that skip into a failure.
#
# Why not pytest-postgresql's own process fixture: pg_ctl/initdb refuse to run as root, and CI
# runs as root. pg_ctlcluster (Debian's wrapper) starts the cluster as the postgres user.
set -euo pipefail

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

{
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
        pg_createcluster "$version" main
    fi
    pg_ctlcluster "$version" main start 2>/dev/null || true
    port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
    for _ in $(seq 1 50); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        sleep 0.2
    done
    as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 -c "
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'oneloop_test') THEN
            CREATE ROLE oneloop_test LOGIN CREATEDB PASSWORD 'oneloop_test';
          END IF;
        END \$\$;"
} >&2 || exit 0

echo "postgresql+psycopg://oneloop_test:oneloop_test@127.0.0.1:${port}/postgres"
