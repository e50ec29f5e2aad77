//! Answers of the local engine that once were wrong, on the quickstart's data.

use crate::common::{TestLake, etl, stderr, stdout};

fn query(t: &TestLake, sql: &str) -> String {
    let out = etl(&t.path, &["query", "--format", "csv", "--sql", sql]);
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_column_maximum_beside_an_expression_maximum_leaves_the_expression_its_rows() {
    let t = TestLake::new();
    assert!(etl(&t.path, &["generate"]).status.success());
    assert!(etl(&t.path, &["backfill"]).status.success());
    for filter in ["", " WHERE user_id LIKE '%5'"] {
        let alone = query(
            &t,
            &format!("SELECT max(received_at - event_time) AS a FROM events{filter}"),
        );
        let beside = query(
            &t,
            &format!(
                "SELECT max(received_at - event_time) AS a, max(event_type) AS b, min(user_id) AS c FROM events{filter}"
            ),
        );
        let first = |s: &str| {
            s.lines()
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(first(&alone), first(&beside), "{filter}");
    }
    // Map aggregates over many files and partitions (partial states merged): the same counts
    // as plain aggregates.
    assert_eq!(
        query(
            &t,
            "SELECT element_at(histogram(team), 'checkout') AS h, cardinality(histogram(dt)) AS days, \
             cardinality(map_agg(event_id, user_id)) AS ids FROM events"
        ),
        query(
            &t,
            "SELECT count_if(team = 'checkout') AS h, count(DISTINCT dt) AS days, count(DISTINCT event_id) AS ids FROM events"
        )
    );
}

/// Queries over the table that failed or answered otherwise than Athena: a cast beside its
/// column, a sample that read every row, a DISTINCT ordered by an expression, a subquery left
/// unnamed before an UNNEST, a table timestamp written with a zone it does not have, the
/// table's description and partitions, an interval; and where a refused query went wrong.
#[test]
fn table_queries_answer_as_athena_does() {
    let t = TestLake::new();
    assert!(etl(&t.path, &["generate"]).status.success());
    assert!(etl(&t.path, &["backfill"]).status.success());
    let days = query(
        &t,
        "SELECT CAST(dt AS date), dt, count(*) FROM events GROUP BY 1, 2 ORDER BY 1",
    );
    assert_eq!(days.lines().next(), Some("_col0,dt,_col2"), "{days}");
    assert!(days.contains("\n2026-11-20,2026-11-20,"), "{days}");
    assert_eq!(
        query(&t, "SELECT CAST(received_at AS varchar), received_at FROM events ORDER BY received_at LIMIT 1")
            .lines()
            .count(),
        2
    );
    let all: u64 = query(&t, "SELECT count(*) FROM events")
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let tenth: u64 = query(&t, "SELECT count(*) FROM events TABLESAMPLE BERNOULLI (10)")
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // 29,647 rows at 10 %: 2,965 expected, a standard deviation of 52.
    assert!(tenth > all / 20 && tenth < all / 5, "{tenth} of {all}");
    assert_eq!(
        query(
            &t,
            "SELECT DISTINCT upper(team) FROM events ORDER BY upper(team)"
        ),
        "_col0\nCHECKOUT\nGROWTH\nSEARCH\n"
    );
    let types = query(
        &t,
        "SELECT u, x FROM (SELECT user_id AS u, array_agg(DISTINCT event_type) AS ts FROM events \
         WHERE user_id = 'u-7' GROUP BY 1) CROSS JOIN UNNEST(ts) AS s(x) ORDER BY x LIMIT 1",
    );
    assert!(types.starts_with("u,x\nu-7,"), "{types}");
    let columns = query(&t, "DESCRIBE events");
    assert!(
        columns.starts_with("Column,Type,Extra,Comment\nevent_id,varchar,,\n"),
        "{columns}"
    );
    assert!(
        columns.contains("\nevent_time,timestamp(3),,\n"),
        "{columns}"
    );
    assert!(
        columns.ends_with("\ndt,varchar,partition key,\n"),
        "{columns}"
    );
    let partitions = query(&t, "SHOW PARTITIONS events");
    assert_eq!(partitions.lines().count(), 1 + 3 * 3, "{partitions}");
    assert!(
        partitions.starts_with("partition\nteam=checkout/dt=2026-11-20\n"),
        "{partitions}"
    );
    // Athena's table of partitions, and its listings of tables and databases.
    assert_eq!(
        query(
            &t,
            "SELECT team, dt FROM \"eventlake\".\"events$partitions\" ORDER BY dt DESC, team LIMIT 1"
        ),
        "team,dt\ncheckout,2026-11-22\n"
    );
    assert_eq!(
        query(&t, "SELECT count(*) AS n FROM \"events$partitions\""),
        "n\n9\n"
    );
    assert_eq!(query(&t, "SHOW TABLES"), "tab_name\nevents\n");
    assert_eq!(
        query(&t, "SHOW TABLES IN eventlake 'x*|ev*'"),
        "tab_name\nevents\n"
    );
    assert_eq!(query(&t, "SHOW TABLES 'x*'"), "tab_name\n");
    assert_eq!(query(&t, "SHOW DATABASES"), "database_name\neventlake\n");
    let ddl = etl(&t.path, &["query", "--sql", "SHOW CREATE TABLE events"]);
    assert!(!ddl.status.success());
    assert!(stderr(&ddl).contains("DESCRIBE"), "{}", stderr(&ddl));
    assert_eq!(
        query(&t, "SHOW SCHEMAS LIKE 'event*'"),
        "database_name\neventlake\n"
    );
    // Athena's hidden columns: each row's data file and its size, left out of `*`.
    let files = query(
        &t,
        "SELECT \"$path\", count(*) AS n, min(\"$file_size\") > 0 AS sized FROM events \
         WHERE team = 'checkout' GROUP BY 1 ORDER BY 1 LIMIT 1",
    );
    let row = files.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("file:///")
            && row.contains("/curated/events/team=checkout/dt=2026-11-20/")
            && row.ends_with(".parquet,3294,true"),
        "{files}"
    );
    for sql in [
        "SELECT e.* FROM events AS e WHERE \"$path\" LIKE '%/dt=2026-11-21/%' LIMIT 1",
        "SELECT * FROM events WHERE \"$path\" LIKE '%/dt=2026-11-21/%' LIMIT 1",
    ] {
        let starred = query(&t, sql);
        let header = starred.lines().next().unwrap_or_default();
        assert!(
            header.starts_with("event_id,") && header.ends_with(",dt") && !header.contains('$'),
            "{starred}"
        );
    }
    assert_eq!(
        query(
            &t,
            "SELECT count(DISTINCT \"$path\") AS f FROM eventlake.events"
        ),
        "f\n9\n"
    );
    // Each side of a UNION reads its own.
    assert_eq!(
        query(
            &t,
            "SELECT count(DISTINCT p) AS f FROM (SELECT \"$path\" AS p FROM events \
             WHERE team = 'search' UNION ALL SELECT \"$path\" FROM events WHERE team = 'growth')"
        ),
        "f\n6\n"
    );
    // Athena's information_schema: its types, positions from 1, partition keys marked.
    let listed = query(
        &t,
        "SELECT table_name, column_name, ordinal_position, data_type, extra_info \
         FROM information_schema.columns WHERE table_schema = 'eventlake' ORDER BY 3",
    );
    assert!(
        listed.starts_with(
            "table_name,column_name,ordinal_position,data_type,extra_info\n\
             events,event_id,1,varchar,\nevents,event_type,2,varchar,\n\
             events,event_time,3,timestamp(3),\n"
        ),
        "{listed}"
    );
    assert!(
        listed.ends_with("\nevents,dt,15,varchar,partition key\n"),
        "{listed}"
    );
    assert_eq!(
        query(
            &t,
            "SELECT table_catalog, table_name, table_type FROM \"AwsDataCatalog\".information_schema.tables \
             WHERE table_schema = 'eventlake'"
        ),
        "table_catalog,table_name,table_type\nawsdatacatalog,events,BASE TABLE\n"
    );
    assert_eq!(
        query(&t, "SHOW FUNCTIONS LIKE 'array_j%'"),
        "Function,Function Type\narray_join,scalar\n"
    );
    // A difference of timestamps is an interval day to second, printed as Athena prints it.
    let span = query(
        &t,
        "SELECT TIMESTAMP '2026-11-22 01:02:03.004' - TIMESTAMP '2026-11-20 00:00:00' AS d",
    );
    assert_eq!(span, "d\n2 01:02:03.004\n");
    let iso = query(
        &t,
        "SELECT to_iso8601(received_at) AS a, CAST(received_at AS varchar) AS b FROM events LIMIT 1",
    );
    let row = iso.lines().nth(1).unwrap();
    let (a, b) = row.split_once(',').unwrap();
    assert_eq!(a, b.replace(' ', "T"), "{iso}");
    // A refused query says where, and nothing that speaks to the engine's own developers.
    let refused = etl(
        &t.path,
        &["query", "--sql", "SELECT team,\n  colour FROM events"],
    );
    assert!(!refused.status.success());
    let e = stderr(&refused);
    assert!(
        e.contains("query: line 2:3: ") && e.contains("colour"),
        "{e}"
    );
    let refused = etl(&t.path, &["query", "--sql", "SELECT sum(team) FROM events"]);
    let e = stderr(&refused);
    assert!(
        e.contains("Unexpected parameters (varchar) for function sum") && !e.contains("bug"),
        "{e}"
    );
}
