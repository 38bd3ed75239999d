#!/usr/bin/env bash
# Runs the test suites once per database backend:
#   1. TEST_DB_BACKEND=pglite: embedded PostgreSQL, in-memory cache (what `npm test` runs);
#   2. TEST_DB_BACKEND=pg: node-postgres over TCP to the local PostgreSQL, cache/locks/limits in Redis;
#   3. TEST_DB_BACKEND=neon: the Neon driver through a WebSocket proxy (each test file starts one in-process)
#      to the same PostgreSQL, with Redis. Three full runs do not fit the time CI gives this on two cores, so
#      this one runs the API and domain suites (NEON_SUITES), where the driver matters; the full suite's other
#      files do not depend on the database driver.
# Each pg/neon test file works in a schema of its own (t_<random>) that it drops afterwards, and its own Redis
# key prefix. The pg and neon runs are skipped, saying so, when PostgreSQL is not reachable; Redis is started
# here when it is installed but not running.
#
#   bash scripts/test-backends.sh            # all three
#   bash scripts/test-backends.sh pg neon    # some of them
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export REDIS_URL_FOR_TESTS="${REDIS_URL:-redis://127.0.0.1:6379}"
neon_suites="${NEON_SUITES:-functions lib/payments test/api test/events test/dataplane}"
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(pglite pg neon)

reachable() { # host port
  node -e 'const s=require("net").connect(+process.argv[2],process.argv[1]);s.setTimeout(1000,()=>process.exit(1));s.on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' "$1" "$2"
}
db_host=$(node -e 'const u=new URL(process.argv[1]);console.log(u.hostname||"127.0.0.1")' "$TEST_DATABASE_URL")
db_port=$(node -e 'const u=new URL(process.argv[1]);console.log(u.port||5432)' "$TEST_DATABASE_URL")
redis_port=$(node -e 'const u=new URL(process.argv[1]);console.log(u.port||6379)' "$REDIS_URL_FOR_TESTS")

if ! reachable 127.0.0.1 "$redis_port" && command -v redis-server >/dev/null; then
  echo "test-backends: starting redis-server on 127.0.0.1:$redis_port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do reachable 127.0.0.1 "$redis_port" && break; sleep 0.1; done
fi

status=0
for backend in "${backends[@]}"; do
  case "$backend" in
    pglite)
      echo "== test-backends: pglite"
      TEST_DB_BACKEND=pglite npx vitest run || status=1
      ;;
    pg | neon)
      if ! reachable "$db_host" "$db_port"; then
        echo "== test-backends: $backend skipped: PostgreSQL is not reachable at $db_host:$db_port"
        continue
      fi
      suites=()
      [ "$backend" = neon ] && read -r -a suites <<<"$neon_suites"
      echo "== test-backends: $backend (Redis at $REDIS_URL_FOR_TESTS) ${suites[*]:-all suites}"
      TEST_DB_BACKEND="$backend" REDIS_URL="$REDIS_URL_FOR_TESTS" npx vitest run "${suites[@]}" || status=1
      ;;
    *)
      echo "test-backends: unknown backend $backend (pglite, pg or neon)" >&2
      exit 2
      ;;
  esac
done
exit "$status"
