"""Runs the saved queries on DuckDB over the Parquet files of a lake's committed versions.

    python3 benches/duckdb_queries.py <catalog.json> <sql dir> <runs>

<catalog.json> is `etl catalog list --json`: the same files `etl query` reads. Each saved query
gets its parameters' defaults and is translated from Athena SQL to DuckDB's dialect with sqlglot
(json_extract_scalar, approx_percentile, approx_distinct, from_iso8601_timestamp have other names
there). Prints JSON: {"threads": n, "queries": {name: [ms, ...]}}; each query runs once untimed
first, as `etl check-p95` does by default.
"""
import json
import os
import pathlib
import re
import sys
import time

import duckdb
import sqlglot

catalog_file, sql_dir, runs = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
lake = os.path.dirname(os.path.abspath(catalog_file))
entries = json.load(open(catalog_file))
files = []
for e in entries:
    for f in e["files"]:
        files.append((os.path.join(lake, f["key"]), e["partition"]["team"], e["partition"]["dt"]))

con = duckdb.connect()
threads = os.cpu_count()
con.execute(f"SET threads = {threads}")
# One view over exactly the committed files; team and dt come from the hive-style paths, so
# DuckDB prunes files on them as etl prunes partitions.
listed = ", ".join(f"'{path}'" for path, _team, _dt in files)
con.execute(
    f"CREATE VIEW events AS SELECT * EXCLUDE (v) FROM read_parquet([{listed}], "
    "hive_partitioning = true, hive_types = {'team': VARCHAR, 'dt': VARCHAR, 'v': VARCHAR})"
)

queries = {}
for f in sorted(sql_dir.glob("*.sql")):
    text = f.read_text()
    name = re.search(r"^-- name: (\S+)", text, re.M).group(1)
    for pname, _kind, default in re.findall(r"^-- param: (\S+) (\S+) (\S+)$", text, re.M):
        text = text.replace("{{" + pname + "}}", f"'{default}'")
    queries[name] = sqlglot.transpile(text, read="athena", write="duckdb")[0]

# One untimed pass first, as `etl check-p95 --warmup 1` does.
for sql in queries.values():
    con.execute(sql).fetchall()
samples = {n: [] for n in queries}
for _ in range(runs):
    for name, sql in queries.items():
        t = time.perf_counter()
        con.execute(sql).fetchall()
        samples[name].append((time.perf_counter() - t) * 1000.0)
print(json.dumps({"threads": threads, "queries": samples, "sql": queries}))
