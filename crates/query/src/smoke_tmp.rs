#[tokio::test]
async fn smoke() {
    let ctx = crate::functions_session().unwrap();
    for e in std::fs::read_to_string("/tmp/smoke/exprs.txt").unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let sql = format!("SELECT {e}");
        match ctx.sql(&sql).await {
            Err(err) => println!("{e}  ==> PLAN ERROR {err}"),
            Ok(df) => match df.collect().await {
                Err(err) => println!("{e}  ==> RUN ERROR {err}"),
                Ok(b) => {
                    let col = b[0].column(0).clone();
                    println!("{e}  ==> {}  :: {}", crate::trino::render::cell(&col, 0), crate::trino::trino_type(col.data_type()));
                }
            },
        }
    }
}
