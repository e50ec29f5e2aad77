"""The same job in DuckDB, as a data engineer would write it: the baseline of `benches/compact.rs`.

Reads every raw object, skips malformed lines, keeps the first copy of each event_id per
(team, dt) by received_at, and writes team/dt-partitioned ZSTD Parquet.

usage: python3 duckdb_compact.py <lake> <out-dir>
"""

import sys

import duckdb

lake, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET preserve_insertion_order = false")
columns = """{
    event_id: 'VARCHAR', event_type: 'VARCHAR', event_time: 'VARCHAR', received_at: 'VARCHAR',
    user_id: 'VARCHAR', session_id: 'VARCHAR', source: 'VARCHAR', schema_version: 'INTEGER',
    properties: 'JSON', team: 'VARCHAR',
    context: 'STRUCT(ip VARCHAR, user_agent VARCHAR, locale VARCHAR, app_version VARCHAR)'
}"""
con.execute(
    f"""
COPY (
  WITH raw AS (
    SELECT * REPLACE (
      try_cast(event_time AS TIMESTAMPTZ) AS event_time,
      try_cast(received_at AS TIMESTAMPTZ) AS received_at)
    FROM read_json('{lake}/raw/*/*/*/*.ndjson.gz', format = 'newline_delimited',
                   ignore_errors = true, hive_partitioning = false, columns = {columns})
  )
  SELECT event_id, event_type, event_time, received_at, user_id, session_id, source,
         schema_version, properties::VARCHAR AS properties,
         context.ip AS context_ip, context.user_agent AS context_user_agent,
         context.locale AS context_locale, context.app_version AS context_app_version,
         team, strftime(received_at AT TIME ZONE 'UTC', '%Y-%m-%d') AS dt
  FROM raw
  WHERE event_id IS NOT NULL AND event_id <> '' AND event_time IS NOT NULL
    AND received_at IS NOT NULL AND regexp_full_match(event_type, '[a-z0-9_.:-]{{1,64}}')
  QUALIFY row_number() OVER (PARTITION BY team, dt, event_id ORDER BY received_at) = 1
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (team, dt), OVERWRITE_OR_IGNORE)
"""
)
rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/*/*/*.parquet')").fetchone()[0]
print(f"duckdb rows {rows}")
