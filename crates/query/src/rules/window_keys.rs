//! A window's partition and order keys that are computed (`PARTITION BY abs(x) > 4`,
//! `PARTITION BY if(length(user_id) > 4, user_id)`, `ORDER BY CASE … END`) are computed once
//! below it, as columns, and the window partitions and orders by those columns. DataFusion 55
//! plans such a key into the window and into the sort under it as two expressions that its plan
//! check then finds different, and it refused the query ("SanityCheckPlan … does not satisfy
//! order requirements"). The answer is the same: the window sees the same values.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Window};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub(crate) struct WindowKeysAsColumns;

/// The name of the n-th computed key.
fn key_name(n: usize) -> String {
    format!("__window_key_{n}")
}

impl OptimizerRule for WindowKeysAsColumns {
    fn name(&self) -> &str {
        "window_keys_as_columns"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Window(window) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let computed = |e: &Expr| !matches!(e, Expr::Column(_) | Expr::Literal(..));
        // The computed keys, each once.
        let mut keys: Vec<Expr> = Vec::new();
        for e in &window.window_expr {
            if let Expr::WindowFunction(f) = unaliased(e) {
                let order = f.params.order_by.iter().map(|s| &s.expr);
                for k in f
                    .params
                    .partition_by
                    .iter()
                    .chain(order)
                    .filter(|k| computed(k))
                {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
        }
        if keys.is_empty() {
            return Ok(Transformed::no(plan));
        }
        // Below: the input's columns, then the keys.
        let input = window.input.as_ref();
        let mut below: Vec<Expr> = input
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        below.extend(
            keys.iter()
                .enumerate()
                .map(|(n, k)| k.clone().alias(key_name(n))),
        );
        let below = LogicalPlanBuilder::from(input.clone())
            .project(below)?
            .build()?;
        // The window over the keys' columns, each output under its name as before.
        let window_expr: Vec<Expr> = window
            .window_expr
            .iter()
            .map(|e| {
                let name = e.schema_name().to_string();
                let Expr::WindowFunction(f) = unaliased(e) else {
                    return e.clone();
                };
                let mut f = f.as_ref().clone();
                let order = f.params.order_by.iter_mut().map(|s| &mut s.expr);
                for k in f.params.partition_by.iter_mut().chain(order) {
                    if let Some(n) = keys.iter().position(|x| x == k) {
                        *k = Expr::Column(Column::from_name(key_name(n)));
                    }
                }
                Expr::WindowFunction(Box::new(f)).alias(name)
            })
            .collect();
        let rewritten = LogicalPlan::Window(Window::try_new(window_expr, Arc::new(below))?);
        // Above: the columns the window gave before, without the keys.
        let outputs: Vec<Expr> = window
            .schema
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let above = LogicalPlanBuilder::from(rewritten)
            .project(outputs)?
            .build()?;
        Ok(Transformed::yes(above))
    }
}

fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    /// Computed partition keys, which DataFusion refused, give the rows a column key gives.
    #[tokio::test]
    async fn a_computed_partition_key_partitions_as_its_values() {
        let ctx = crate::session::functions_session().unwrap();
        let rows = "(VALUES (1, 'a'), (5, 'b'), (7, 'c'), (2, 'd')) AS t(x, y)";
        for (sql, want) in [
            (
                format!(
                    "SELECT y, row_number() OVER (PARTITION BY abs(x) > 4 ORDER BY y) AS r, \
                     count(*) OVER (PARTITION BY if(abs(x) > 4, 'big')) AS n \
                     FROM {rows} ORDER BY y"
                ),
                "y,r,n\na,1,2\nb,1,2\nc,2,2\nd,2,2\n",
            ),
            (
                format!(
                    "SELECT max(r) AS m FROM (SELECT row_number() OVER \
                     (PARTITION BY CASE WHEN abs(x) > 4 THEN y END ORDER BY y) AS r FROM {rows})"
                ),
                "m\n2\n",
            ),
            (
                format!(
                    "SELECT y, row_number() OVER (PARTITION BY x > 4 \
                     ORDER BY CASE WHEN abs(x) > 4 THEN NULL ELSE -x END NULLS FIRST, y) AS r \
                     FROM {rows} ORDER BY y"
                ),
                "y,r\na,2\nb,1\nc,2\nd,1\n",
            ),
        ] {
            let (schema, batches) = crate::session::run_sql(&ctx, &sql).await.unwrap();
            let out =
                crate::session::render(&schema, &batches, crate::session::Format::Csv).unwrap();
            assert_eq!(out, want, "{sql}");
        }
    }
}
