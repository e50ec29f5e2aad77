#!/usr/bin/env bash
# Runs every test of the workspace, then the README's quickstart against a scratch lake.
#
# Stand-ins for AWS are installed and started here when a test needs them (none does yet: the
# local suite needs only the Rust toolchain). In CI (CI=true) a missing tool fails the run; no
# test skips itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# The ingestion Lambda stays small: no DataFusion (nor arrow, parquet) in its dependency tree.
heavy=$(cargo tree --locked -p eventlake-ingest -e normal --prefix none | grep -E '^(datafusion|arrow|parquet)' | sort -u || true)
if [ -n "$heavy" ]; then
  echo "eventlake-ingest must not depend on these:" >&2
  echo "$heavy" >&2
  exit 1
fi

cargo test --workspace --locked

# The README's first command, on a scratch lake with the debug binary built above.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
etl=target/debug/etl
"$etl" --lake "$scratch/lake" generate >/dev/null
"$etl" --lake "$scratch/lake" backfill >/dev/null
out=$("$etl" --lake "$scratch/lake" query --format csv \
  --sql "SELECT count(*) AS events FROM events")
test "$out" = "$(printf 'events\n29659')" || { echo "quickstart gave: $out" >&2; exit 1; }
echo "quickstart: ok"
