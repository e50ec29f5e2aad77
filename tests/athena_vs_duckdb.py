"""Differential test: generated analyst queries in Athena SQL, run by `etl query` and by DuckDB
(through sqlglot's Athena-to-DuckDB translation) on the same committed Parquet files; every
answer must match.

    python3 tests/athena_vs_duckdb.py <etl binary> <lake dir> [--queries N] [--seed S]

The lake must hold committed partitions (`etl generate` then `etl backfill`). The queries are
drawn, with a fixed seed, from shapes analysts write (group-bys, filters on string columns,
distinct counts, DISTINCT, joins, window functions) and from the functions whose meaning Athena
and DuckDB share; each orders its result completely, so both engines must give the same rows in
the same order. Numbers compare to 9 significant digits. Exits 1 on the first difference,
printing both answers and the two SQL texts.
"""
import argparse
import csv
import datetime
import decimal
import io
import json
import os
import random
import subprocess
import sys

import duckdb
import sqlglot

p = argparse.ArgumentParser()
p.add_argument("etl")
p.add_argument("lake")
p.add_argument("--queries", type=int, default=60)
p.add_argument("--seed", type=int, default=7)
p.add_argument(
    "--files",
    help="a folder of saved queries to compare too (those using approx_* are left out: the two "
    "engines' approximations differ)",
)
args = p.parse_args()

# The committed files, exactly as `etl query` reads them.
listing = subprocess.run(
    [args.etl, "--lake", args.lake, "catalog", "list", "--json"],
    check=True, capture_output=True, text=True,
).stdout
entries = json.loads(listing)
lake = os.path.abspath(args.lake)
files = [os.path.join(lake, f["key"]) for e in entries for f in e["files"]]
if not files:
    sys.exit("the lake has no committed partitions: run etl generate and etl backfill first")
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
# Athena's lambdas are written `x -> …`; DuckDB reads that form only when asked to.
con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
# DuckDB 2.0.1 rewrites a window without an order (`count(*) OVER (PARTITION BY session_id)`)
# into an aggregation joined back, and that aggregation loses a filter on a hive partition
# column: over `WHERE dt = '…'` it counted every day's rows of a session.
con.execute("SET disabled_optimizers = 'window_self_join'")
listed = ", ".join(f"'{f}'" for f in files)
con.execute(
    f"CREATE VIEW events AS SELECT * EXCLUDE (v) FROM read_parquet([{listed}], "
    "hive_partitioning = true, hive_types = {'team': VARCHAR, 'dt': VARCHAR, 'v': VARCHAR})"
)

teams = [r[0] for r in con.execute("SELECT DISTINCT team FROM events ORDER BY 1").fetchall()]
days = [r[0] for r in con.execute("SELECT DISTINCT dt FROM events ORDER BY 1").fetchall()]

# Expressions of one row, each with the functions both dialects mean the same by.
DIMS = [
    "team",
    "dt",
    "event_type",
    "source",
    "context_locale",
    "hour(event_time)",
    "month(event_time)",
    "year(event_time)",
    "day(event_time)",
    "CAST(event_time AS DATE)",
    "lower(event_type)",
    "upper(source)",
    "length(event_type)",
    "substr(user_id, 1, 6)",
    "split_part(context_locale, '-', 1)",
    "regexp_extract(event_type, '^[a-z]+')",
    "json_extract_scalar(properties, '$.referrer')",
    "coalesce(json_extract_scalar(properties, '$.currency'), 'none')",
    "CASE WHEN strpos(event_type, '_') > 0 THEN 'compound' ELSE 'simple' END",
    "replace(event_type, '_', '-')",
    "concat(team, '/', source)",
    "date_trunc('day', event_time) = date_trunc('day', received_at)",
    "day_of_week(event_time)",
    "day_of_year(event_time)",
    "date_format(event_time, '%Y-%m-%d %H')",
    "date_diff('hour', event_time, received_at)",
    "date_add('day', 1, CAST(event_time AS DATE))",
    "regexp_replace(user_id, '[0-9]', '#')",
    "split(event_type, '_')[1]",
    "cardinality(split(event_type, '_'))",
    "json_extract_scalar(properties, '$.variant')",
    "if(source = 'web', 'web', 'app')",
    "greatest(length(event_type), length(source))",
    "trim(lower(context_locale))",
    "starts_with(event_type, 'p')",
    "array_join(transform(split(context_locale, '-'), x -> upper(x)), '+')",
    "cardinality(filter(split(event_type, '_'), x -> length(x) > 3))",
    "array_join(transform(split(user_id, '0'), p -> concat(p, source)), '|')",
]
AGGS = [
    "count(*)",
    "count(DISTINCT user_id)",
    "count(DISTINCT session_id)",
    "count(DISTINCT event_id)",
    "sum(CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT))",
    "max(CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT))",
    "min(length(user_id))",
    "sum(CAST(json_extract_scalar(properties, '$.amount_cents') AS BIGINT))",
    "max(CAST(json_extract_scalar(properties, '$.amount_cents') AS DECIMAL(12, 2)))",
    "avg(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE))",
    "count(CASE WHEN source = 'web' THEN 1 END)",
    "max(event_type)",
    "min(user_id)",
    "sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END)",
    "stddev_samp(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE))",
    "count_if(source = 'web')",
    "count(*) FILTER (WHERE source = 'web' OR upper(event_type) = 'PURCHASE')",
    "bool_or(event_type = 'signup')",
    "sum(if(event_type = 'click', 1, 0))",
    "count(DISTINCT date_trunc('hour', event_time))",
    "max(date_diff('second', event_time, received_at))",
    "count_if(received_at - event_time >= INTERVAL '36' HOUR)",
]
FILTERS = [
    "team = '{team}'",
    "dt = '{day}'",
    "dt BETWEEN '{day}' AND '{day2}'",
    "event_type = 'purchase'",
    "event_type LIKE 'add%'",
    "event_type NOT LIKE '%view'",
    "user_id LIKE '%7'",
    "source IN ('ios', 'android')",
    "context_locale <> 'en-US'",
    "regexp_like(user_id, '[05]$')",
    "hour(event_time) BETWEEN 8 AND 17",
    "json_extract_scalar(properties, '$.referrer') = 'direct'",
    "CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT) > 500",
    "length(session_id) > 0",
    "strpos(context_user_agent, 'iPhone') > 0",
    "lower(source) = 'server'",
    "event_time >= TIMESTAMP '{day} 12:00:00'",
    "received_at - event_time > INTERVAL '1' DAY",
]


def where(r, k):
    fs = r.sample(FILTERS, k)
    day = r.choice(days)
    day2 = days[min(days.index(day) + 1, len(days) - 1)]
    return " AND ".join(f.format(team=r.choice(teams), day=day, day2=day2) for f in fs)


def gen(r):
    shape = r.randrange(16)
    w = where(r, r.randrange(1, 3))
    if shape == 0:
        d = r.sample(DIMS, r.randrange(1, 3))
        a = r.sample(AGGS, r.randrange(1, 3))
        cols = ", ".join(d + [f"{x} AS a{i}" for i, x in enumerate(a)])
        keys = ", ".join(str(i + 1) for i in range(len(d)))
        order = ", ".join(str(i + 1) for i in range(len(d) + len(a)))
        return f"SELECT {cols} FROM events WHERE {w} GROUP BY {keys} ORDER BY {order} LIMIT 40"
    if shape == 1:
        a = r.sample(AGGS, r.randrange(1, 4))
        return "SELECT " + ", ".join(f"{x} AS a{i}" for i, x in enumerate(a)) + f" FROM events WHERE {w}"
    if shape == 2:
        d = r.sample(DIMS, r.randrange(1, 3))
        order = ", ".join(str(i + 1) for i in range(len(d)))
        return f"SELECT DISTINCT {', '.join(d)} FROM events WHERE {w} ORDER BY {order} LIMIT 50"
    if shape == 3:
        d = r.choice(DIMS)
        return (
            f"SELECT k, n, rank() OVER (ORDER BY n DESC, k) AS r, "
            f"sum(n) OVER (ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running "
            f"FROM (SELECT {d} AS k, count(*) AS n FROM events WHERE {w} GROUP BY 1) t "
            f"ORDER BY k LIMIT 30"
        )
    if shape == 4:
        d = r.choice(["team", "dt", "source", "event_type", "context_locale"])
        return (
            f"SELECT a.k, a.n, b.m FROM "
            f"(SELECT {d} AS k, count(*) AS n FROM events WHERE {w} GROUP BY 1) a "
            f"JOIN (SELECT {d} AS k, count(DISTINCT user_id) AS m FROM events "
            f"WHERE event_type = 'purchase' GROUP BY 1) b ON a.k = b.k ORDER BY 1"
        )
    if shape == 5:
        return (
            f"SELECT team, user_id, count(*) AS n FROM events WHERE {w} "
            f"GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 3 DESC, 1, 2 LIMIT 25"
        )
    if shape == 6:
        # NOT IN a subquery, correlated or not, with NULLs on either side (a NULL on the outer
        # side is kept only where the subquery is empty; one in the subquery keeps nothing).
        c = r.choice(["user_id", "session_id", "context_locale", "source"])
        nulls = lambda when: f"CASE WHEN {when} THEN NULL ELSE {c} END"
        constant = {"user_id": "'u-1'", "session_id": "'s-12'", "context_locale": "'de-DE'",
                    "source": "'web'"}[c]
        outer = r.choice([c, nulls("hour(event_time) % 7 = 0"), constant])
        inner = r.choice([c, c, nulls("minute(event_time) = 7 AND second(event_time) = 7")])
        corr = r.choice(["", "", " AND p.team = e.team", " AND p.dt = e.dt",
                         " AND p.team = e.team AND p.dt = e.dt", " AND p.dt > e.dt"])
        inner_w = where(r, 1)
        return (
            f"SELECT e.team, count(*) AS n FROM events e WHERE {w} AND {outer} NOT IN "
            f"(SELECT {inner} FROM events p WHERE {inner_w}{corr}) GROUP BY 1 ORDER BY 1"
        )
    if shape == 7:
        # The first (or last) row of each key; event_id breaks ties, so the answer is one.
        key = r.choice(["user_id", "session_id", "team, user_id", "context_locale"])
        d = r.choice(["event_type", "source", "team", "context_locale"])
        direction = r.choice(["", " DESC"])
        rn = r.choice(["rn = 1", "rn <= 1", "rn < 2", "1 = rn", "rn <= 3", "rn = 2", "rn < 5"])
        return (
            f"SELECT {d}, count(*) AS n FROM (SELECT {d}, row_number() OVER (PARTITION BY {key} "
            f"ORDER BY event_time{direction}, event_id{direction}) AS rn FROM events WHERE {w}) t "
            f"WHERE {rn} GROUP BY 1 ORDER BY 1"
        )
    if shape == 8:
        # Words of the event types (or of the teams), counted.
        arrays = r.choice(["split(event_type, '_')", "split(team, 'e')", "split(concat(team, '-', event_type), '_')"])
        by_team = r.random() < 0.5
        keys = "team, w" if by_team else "w"
        order = "1, 2" if by_team else "1"
        return (
            f"SELECT {keys}, count(*) AS n FROM events CROSS JOIN UNNEST({arrays}) AS t(w) "
            f"WHERE {w} GROUP BY {order} ORDER BY {order}"
        )
    if shape == 9:
        # Grouping sets, rollups and cubes of two keys, with aggregates made of partial ones.
        a, b = r.sample(["team", "dt", "source", "event_type", "context_locale"], 2)
        sets = r.choice([f"ROLLUP ({a}, {b})", f"CUBE ({a}, {b})",
                         f"GROUPING SETS (({a}), ({b}), ())", f"GROUPING SETS (({a}, {b}), ({a}))"])
        aggs = r.sample(["count(*)", "count(user_id)", "min(event_time)", "max(user_id)",
                         "sum(schema_version)", "count(DISTINCT user_id)"], r.randrange(1, 3))
        cols = ", ".join([a, b] + [f"{x} AS a{i}" for i, x in enumerate(aggs)])
        order = ", ".join(str(i + 1) for i in range(2 + len(aggs)))
        return f"SELECT {cols} FROM events WHERE {w} GROUP BY {sets} ORDER BY {order}"
    if shape == 10:
        # Ranking, first or last values, counts and sums over sessions and users; each answer
        # is one the order keys decide (event_id breaks ties, or the value is the same within a
        # tie, or the frame holds the whole tie).
        f = r.choice([
            "first_value(event_type) OVER (PARTITION BY session_id ORDER BY event_time, event_id)",
            "first_value(source) OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id DESC)",
            "last_value(event_type) OVER (PARTITION BY session_id ORDER BY event_time, event_id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
            "last_value(source) OVER (PARTITION BY user_id ORDER BY event_time, event_id)",
            "last_value(dt) OVER (PARTITION BY user_id ORDER BY dt)",
            "rank() OVER (PARTITION BY user_id ORDER BY dt)",
            "dense_rank() OVER (PARTITION BY session_id ORDER BY event_type DESC)",
            "row_number() OVER (PARTITION BY session_id, event_type ORDER BY event_time, event_id)",
            "count(*) OVER (PARTITION BY user_id ORDER BY event_time, event_id)",
            "count(*) OVER (PARTITION BY session_id)",
            "count(context_locale) OVER (PARTITION BY user_id ORDER BY dt)",
            "count(*) OVER (PARTITION BY session_id ORDER BY event_time, event_id "
            "ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING)",
            "sum(schema_version) OVER (PARTITION BY session_id ORDER BY event_time, event_id)",
            "sum(CAST(json_extract_scalar(properties, '$.duration_ms') AS bigint)) OVER "
            "(PARTITION BY session_id ORDER BY event_time, event_id "
            "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)",
            "sum(length(event_type)) OVER (PARTITION BY user_id ORDER BY dt "
            "RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)",
            "sum(if(source = 'web', 1, 0)) OVER (PARTITION BY user_id ORDER BY event_time DESC, "
            "event_id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
            "lag(event_type) OVER (PARTITION BY session_id ORDER BY event_time, event_id)",
            "lead(source, 2, 'none') OVER (PARTITION BY user_id ORDER BY event_time DESC, "
            "event_id DESC)",
            "lag(event_type, 1, source) OVER (PARTITION BY session_id ORDER BY event_time, "
            "event_id)",
            "lead(dt, 1) OVER (PARTITION BY user_id, source ORDER BY event_time, event_id)",
            "count(*) OVER (PARTITION BY user_id ORDER BY event_time "
            "RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW)",
            "sum(schema_version) OVER (PARTITION BY session_id ORDER BY event_time DESC "
            "RANGE BETWEEN INTERVAL '10' MINUTE PRECEDING AND INTERVAL '30' SECOND FOLLOWING)",
            "count(context_locale) OVER (PARTITION BY user_id ORDER BY CAST(event_time AS DATE) "
            "RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND CURRENT ROW)",
        ])
        return (
            f"SELECT v, count(*) AS n FROM (SELECT {f} AS v FROM events WHERE {w}) t "
            f"GROUP BY 1 ORDER BY 1"
        )
    if shape == 11:
        # A JSON value of one key, as JSON text.
        key = r.choice(["path", "currency", "amount_cents", "duration_ms", "missing"])
        return (
            f"SELECT json_extract(properties, '$.{key}') AS v, count(*) AS n FROM events "
            f"WHERE {w} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
        )
    if shape == 12:
        # One DISTINCT argument beside other aggregates, grouped by a key of many values.
        k = r.choice(["user_id", "session_id", "lower(user_id)", "substr(session_id, 1, 6)"])
        d = r.choice(["session_id", "event_type", "source", "dt", "context_locale"])
        dist = r.sample([f"count(DISTINCT {d})", f"min(DISTINCT {d})", f"max(DISTINCT {d})"],
                        r.randrange(1, 3))
        others = r.sample(["count(*)", "count(context_locale)", "max(event_time)",
                           "min(source)", "sum(schema_version)"], r.randrange(1, 3))
        aggs = dist + others
        cols = ", ".join([f"{k} AS k"] + [f"{x} AS a{i}" for i, x in enumerate(aggs)])
        order = ", ".join(str(i + 1) for i in range(1 + len(aggs)))
        having = r.choice(["", f" HAVING {dist[0]} IS NOT NULL", " HAVING count(*) > 1"])
        return (
            f"SELECT {cols} FROM events WHERE {w} GROUP BY 1{having} ORDER BY {order} LIMIT 40"
        )
    if shape == 13:
        # Two sides joined USING their key, each with keys the other lacks: the key is one
        # column (a full join's from either side) and comes first.
        d = r.choice(["event_type", "source", "context_locale", "dt", "hour(event_time)"])
        kind = r.choice(["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "FULL OUTER JOIN"])
        w2 = where(r, 1)
        pick = r.choice(["*", "k, n, m", "k, coalesce(m, 0) - coalesce(n, 0) AS change"])
        return (
            f"SELECT {pick} FROM (SELECT {d} AS k, count(*) AS n FROM events WHERE {w} "
            f"GROUP BY 1) a {kind} (SELECT {d} AS k, count(DISTINCT user_id) AS m FROM events "
            f"WHERE {w2} GROUP BY 1) b USING (k) ORDER BY 1, 2"
        )
    if shape == 14:
        # Set operations with and without ALL: a row kept as many times as Athena keeps it.
        d = r.choice(["event_type", "source", "context_locale", "hour(event_time)",
                      "CASE WHEN source = 'web' THEN NULL ELSE source END"])
        op = r.choice(["INTERSECT", "INTERSECT ALL", "EXCEPT", "EXCEPT ALL", "UNION",
                       "UNION ALL"])
        w2 = where(r, 1)
        return (
            f"SELECT k, count(*) AS n FROM (SELECT {d} AS k FROM events WHERE {w} {op} "
            f"SELECT {d} FROM events WHERE {w2}) t GROUP BY 1 ORDER BY 1"
        )
    return (
        f"SELECT team, n FROM (SELECT team, user_id, count(*) AS n, row_number() OVER "
        f"(PARTITION BY team ORDER BY count(*) DESC, user_id) AS rn FROM events WHERE {w} "
        f"GROUP BY 1, 2) t WHERE rn <= 3 ORDER BY 1, 2 DESC"
    )


def wrap_calls(sql, name, before, after):
    """Each call `name(...)` in sql, rewritten as before + call-without-its-last-paren + after."""
    out, i = [], 0
    while True:
        j = sql.find(name + "(", i)
        if j < 0:
            out.append(sql[i:])
            return "".join(out)
        depth, k = 0, j + len(name)
        while True:
            depth += {"(": 1, ")": -1}.get(sql[k], 0)
            if depth == 0:
                break
            k += 1
        out.append(sql[i:j] + before + sql[j:k] + after)
        i = k + 1


def duckdb_meaning(sql):
    """Where sqlglot's translation keeps a name whose meaning differs in DuckDB, the DuckDB
    expression with Athena's meaning: Athena's date_diff counts whole units (DuckDB's date_sub;
    its date_diff counts boundaries crossed); regexp_replace replaces every match (DuckDB's
    needs the 'g' option); count_if of no rows is 0 (DuckDB's is NULL); a date plus days is a
    date (DuckDB's is a timestamp); greatest and least are NULL when an argument is (DuckDB's
    skip NULL arguments)."""
    sql = sql.replace("DATE_DIFF(", "DATE_SUB(")
    for name, agg in (("GREATEST", "max"), ("LEAST", "min")):
        strict = f"__STRICT_{name}"
        sql = wrap_calls(sql.replace(f"{name}(", f"{strict}("), strict, "", "]) AS t(x))")
        sql = sql.replace(
            f"{strict}(",
            f"(SELECT CASE WHEN bool_or(x IS NULL) THEN NULL ELSE {agg}(x) END FROM unnest([",
        )
    sql = wrap_calls(sql, "REGEXP_REPLACE", "", ", 'g')")
    sql = wrap_calls(sql, "COUNT_IF", "COALESCE(", "), 0)")
    return sql.replace(
        "CAST(event_time AS DATE) + INTERVAL 1 DAY",
        "CAST(CAST(event_time AS DATE) + INTERVAL 1 DAY AS DATE)",
    )


def norm(v):
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
        # Athena prints a timestamp of the table in UTC without a zone.
        v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, (int, float, decimal.Decimal)):
        v = str(v)
    s = str(v)
    if s in ("true", "false"):
        return s
    if len(s) >= 19 and s[4] == "-" and s[10] in "T ":
        try:
            return norm(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")))
        except ValueError:
            pass
    try:
        f = float(s)
    except ValueError:
        return s
    return f"{f:.9g}"


r = random.Random(args.seed)
checked = 0
answered = 0
queries = [gen(r) for _ in range(args.queries)]
if args.files:
    for f in sorted(os.listdir(args.files)):
        text = open(os.path.join(args.files, f)).read()
        if f.endswith(".sql") and "approx_" not in text:
            queries.append("\n".join(l for l in text.splitlines() if not l.startswith("--")))
for i, sql in enumerate(queries):
    duck_sql = duckdb_meaning(sqlglot.transpile(sql, read="athena", write="duckdb")[0])
    out = subprocess.run(
        [args.etl, "--lake", args.lake, "query", "--format", "csv", "--sql", sql],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        print(f"query {i}: etl failed:\n{sql}\n{out.stderr}", file=sys.stderr)
        sys.exit(1)
    rows = list(csv.reader(io.StringIO(out.stdout)))[1:]
    ours = [[norm(v) for v in row] for row in rows]
    theirs = [[norm(v) for v in row] for row in con.execute(duck_sql).fetchall()]
    if ours != theirs:
        print(f"query {i} differs:\n  Athena SQL: {sql}\n  DuckDB SQL: {duck_sql}", file=sys.stderr)
        print(f"  etl:    {ours[:8]}\n  DuckDB: {theirs[:8]}", file=sys.stderr)
        sys.exit(1)
    checked += 1
    answered += bool(ours)
# A run whose queries mostly select nothing compares little: that is a failure of the generator.
if answered < checked * 0.6:
    sys.exit(f"only {answered} of {checked} queries returned rows: the comparison is too weak")
print(f"athena vs duckdb: {checked} queries ({answered} with rows), same answers")
