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
