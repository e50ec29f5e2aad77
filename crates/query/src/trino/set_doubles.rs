//! A double beside a decimal in the rows of a set operation or a `VALUES` list is a double, as
//! on Athena (`SELECT avg(x) … UNION ALL SELECT 0.5` gives doubles). DataFusion made the
//! column a `decimal(30,15)`: a double's digits past the fifteenth were cut (`1/3` printed as
//! `0.333333333333333`), and NaN, infinity or a double of 10^15 or more failed the query
//! ("Cannot cast to Decimal128(30, 15)"). Comparisons, `CASE`, `coalesce` and the other
//! expressions read it so already (`trino/decimals.rs`); this does it for the columns of
//! `UNION` (before DataFusion's type coercion chooses their types) and of `VALUES` (whose
//! casts the planner has written).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, Projection, Union, Values};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct DoublesInSets;

fn float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn decimal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

impl AnalyzerRule for DoublesInSets {
    fn name(&self) -> &str {
        "athena_doubles_in_sets"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let rewritten = plan.transform_up_with_subqueries(|p| match p {
            LogicalPlan::Union(u) => union(u),
            LogicalPlan::Values(v) => values(v),
            other => Ok(Transformed::no(other)),
        })?;
        if !rewritten.transformed {
            return Ok(rewritten.data);
        }
        // The nodes above a column that became a double take its type.
        Ok(rewritten
            .data
            .transform_up_with_subqueries(|p| p.recompute_schema().map(Transformed::yes))?
            .data)
    }
}

/// Each input of `u` with a decimal where another has a double at the same place, that column
/// cast to a double.
fn union(u: Union) -> Result<Transformed<LogicalPlan>> {
    let width = u.schema.fields().len();
    let doubles: Vec<bool> = (0..width)
        .map(|i| {
            let types = || u.inputs.iter().filter_map(|p| p.schema().fields().get(i));
            types().any(|f| float(f.data_type())) && types().any(|f| decimal(f.data_type()))
        })
        .collect();
    if !doubles.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Union(u)));
    }
    let inputs = u
        .inputs
        .into_iter()
        .map(|input| {
            let schema = input.schema().clone();
            if !(0..width).any(|i| doubles[i] && decimal(schema.field(i).data_type())) {
                return Ok(input);
            }
            let exprs = (0..width)
                .map(|i| {
                    let (qualifier, field) = schema.qualified_field(i);
                    let column = Expr::Column(Column::from((qualifier, field)));
                    if doubles[i] && decimal(field.data_type()) {
                        Expr::Cast(Cast::new(Box::new(column), DataType::Float64))
                            .alias_qualified(qualifier.cloned(), field.name())
                    } else {
                        column
                    }
                })
                .collect();
            Ok(Arc::new(LogicalPlan::Projection(Projection::try_new(
                exprs, input,
            )?)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Transformed::yes(LogicalPlan::Union(
        Union::try_new_with_loose_types(inputs)?,
    )))
}

/// A `VALUES` column the planner made a decimal though a row holds a double, as doubles.
fn values(v: Values) -> Result<Transformed<LogicalPlan>> {
    let empty = DFSchema::empty();
    let width = v.schema.fields().len();
    // The expression a row wrote, under the cast to the column's type.
    let written = |e: &Expr| -> Expr {
        match e {
            Expr::Cast(c) => c.expr.as_ref().clone(),
            other => other.clone(),
        }
    };
    let doubles: Vec<bool> = (0..width)
        .map(|i| {
            decimal(v.schema.field(i).data_type())
                && v.values.iter().any(|row| {
                    row.get(i)
                        .and_then(|e| written(e).get_type(&empty).ok())
                        .is_some_and(|t| float(&t))
                })
        })
        .collect();
    if !doubles.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Values(v)));
    }
    let rows = v
        .values
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, e)| match doubles[i] {
                    true => Expr::Cast(Cast::new(Box::new(written(e)), DataType::Float64)),
                    false => e.clone(),
                })
                .collect()
        })
        .collect();
    let fields = v
        .schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            let f = match doubles[i] {
                true => Arc::new(f.as_ref().clone().with_data_type(DataType::Float64)),
                false => f.clone(),
            };
            (q.cloned(), f)
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, v.schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values: rows,
    })))
}

#[cfg(test)]
mod tests {
    use crate::trino::csv_rows as csv;

    #[tokio::test]
    async fn a_double_beside_a_decimal_in_a_set_or_values_is_a_double() {
        for (sql, want) in [
            (
                "SELECT x, typeof(x) FROM (VALUES (CAST(1 AS double) / 3), (0.5)) AS t(x)",
                &["0.3333333333333333,double", "0.5,double"][..],
            ),
            (
                "SELECT x, typeof(x) FROM (SELECT CAST(1 AS double) / 3 AS x UNION ALL SELECT 0.5) \
                 ORDER BY x",
                &["0.3333333333333333,double", "0.5,double"][..],
            ),
            (
                "SELECT x FROM (SELECT nan() AS x UNION SELECT 1e300 UNION SELECT 0.5) ORDER BY x",
                &["0.5", "1.0E300", "NaN"][..],
            ),
            (
                "SELECT x FROM (VALUES (infinity()), (0.25)) AS t(x) ORDER BY x",
                &["0.25", "Infinity"][..],
            ),
            // Decimals alone stay decimals.
            (
                "SELECT x, typeof(x) FROM (SELECT 1.5 AS x UNION ALL SELECT 2.25) ORDER BY x",
                &["1.50,\"decimal(3,2)\"", "2.25,\"decimal(3,2)\""][..],
            ),
        ] {
            assert_eq!(csv(sql).await.unwrap(), want, "{sql}");
        }
    }
}
