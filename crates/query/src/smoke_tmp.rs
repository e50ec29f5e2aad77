#[tokio::test]
async fn smoke() {
    let ctx = crate::functions_session().unwrap();
    for e in std::fs::read_to_string("/tmp/smoke/exprs.txt").unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let sql = if e.starts_with("EXPLAIN") { e.to_string() } else { format!("SELECT {e}") };
        match ctx.sql(&sql).await {
            Err(err) => println!("{e}  ==> PLAN ERROR {err}"),
            Ok(df) => match df.collect().await {
                Err(err) => println!("{e}  ==> RUN ERROR {err}"),
                Ok(b) => {
                    let col = b[0].column(0).clone();
                    if e.starts_with("EXPLAIN") { println!("{}", arrow::util::pretty::pretty_format_batches(&b).unwrap()); continue; } println!("{e}  ==> {}  :: {}", crate::trino::render::cell(&col, 0), crate::trino::trino_type(col.data_type()));
                }
            },
        }
    }
}
#[tokio::test]
async fn missing() {
    let ctx = crate::functions_session().unwrap();
    let sql = "SELECT year(DATE '2020-01-01'),\n  reduce(ARRAY[1], 0, (s, x) -> s + x, s -> s)";
    println!("{:?}", crate::run_sql(&ctx, sql).await.err().map(|e| e.to_string()));
    println!("{:?}", crate::run_sql(&ctx, "SELECT 1 FROM (SELECT 2) t WHERE frobnicate(1) = 1").await.err().map(|e| e.to_string()));
    println!("{:?}", crate::trino::missing::unsupported(&ctx));
    println!("{}", crate::trino::missing::supported(&ctx).len());
}
