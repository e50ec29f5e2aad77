//! Integer arithmetic that fails on overflow, as Athena's does.
//!
//! DataFusion adds, subtracts and multiplies integers with wrapping kernels:
//! `9223372036854775807 + 1` is `-9223372036854775808` there, where Athena fails the query with
//! `bigint addition overflow: 9223372036854775807 + 1`. A wrapped sum is a wrong answer that looks
//! like a right one, so after type coercion [`CheckedIntegerArithmetic`] turns each `+`, `-` and
//! `*` whose operands are both of one integer type into [`Checked`], which computes the same
//! values with arrow's checked kernels and fails with Athena's message on the first row that does
//! not fit. Other types (decimals, floats, dates, timestamps, intervals) keep DataFusion's
//! operators.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr_common::datum::apply;

use super::conditional::trino_type;

/// `+`, `-` or `*` of two values of one integer type, failing on overflow (or, inside `try`,
/// NULL where a row overflows).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    op: Op,
    lenient: bool,
    signature: Signature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Subtract,
    Multiply,
}

impl Op {
    fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(Self::Add),
            Operator::Minus => Some(Self::Subtract),
            Operator::Multiply => Some(Self::Multiply),
            _ => None,
        }
    }

    /// The function's name, which `EXPLAIN` shows.
    fn name(self, lenient: bool) -> &'static str {
        match (self, lenient) {
            (Self::Add, false) => "checked_add",
            (Self::Subtract, false) => "checked_subtract",
            (Self::Multiply, false) => "checked_multiply",
            (Self::Add, true) => "try_add",
            (Self::Subtract, true) => "try_subtract",
            (Self::Multiply, true) => "try_multiply",
        }
    }

    /// As Athena's message names it.
    fn noun(self) -> &'static str {
        match self {
            Self::Add => "addition",
            Self::Subtract => "subtraction",
            Self::Multiply => "multiplication",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Subtract => "-",
            Self::Multiply => "*",
        }
    }

    fn exact(self, a: i128, b: i128) -> Option<i128> {
        match self {
            Self::Add => a.checked_add(b),
            Self::Subtract => a.checked_sub(b),
            Self::Multiply => a.checked_mul(b),
        }
    }
}

impl Checked {
    fn new(op: Op, lenient: bool) -> Self {
        Self {
            op,
            lenient,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// Each row's exact result where it fits the operands' type (NULL where it does not, or
    /// where an operand is NULL), and the first pair of operands whose result does not fit.
    fn per_row(
        &self,
        l: &ColumnarValue,
        r: &ColumnarValue,
        rows: usize,
        (lo, hi): (i128, i128),
    ) -> Result<(Int64Array, Option<(i64, i64)>)> {
        let as_i64 = |v: &ColumnarValue| -> Result<ArrayRef> {
            Ok(arrow::compute::cast(&v.to_array(rows)?, &DataType::Int64)?)
        };
        let (la, ra) = (as_i64(l)?, as_i64(r)?);
        let (la, ra) = (
            la.as_primitive::<Int64Type>(),
            ra.as_primitive::<Int64Type>(),
        );
        let mut first = None;
        let exact: Int64Array = la
            .iter()
            .zip(ra.iter())
            .map(|(a, b)| {
                let (a, b) = (a?, b?);
                let v = self
                    .op
                    .exact(i128::from(a), i128::from(b))
                    .filter(|v| (lo..=hi).contains(v))
                    .and_then(|v| i64::try_from(v).ok());
                if v.is_none() && first.is_none() {
                    first = Some((a, b));
                }
                v
            })
            .collect();
        Ok((exact, first))
    }

    /// Athena's error for an overflow, or (inside `try`) each row's result, NULL where it
    /// overflows.
    fn overflowed(
        &self,
        l: &ColumnarValue,
        r: &ColumnarValue,
        rows: usize,
    ) -> Result<ColumnarValue> {
        let t = l.data_type();
        let scalar = matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { rows };
        let message = format!("{} {} overflow", trino_type(&t), self.op.noun());
        let Some(bounds) = bounds(&t) else {
            return exec_err!("{message}");
        };
        let (exact, first) = self.per_row(l, r, rows, bounds)?;
        if !self.lenient {
            return match first {
                Some((a, b)) => exec_err!("{message}: {a} {} {b}", self.op.symbol()),
                None => exec_err!("{message}"),
            };
        }
        let out = arrow::compute::cast(&exact, &t)?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// The range of a signed integer type that fits an `i64`.
fn bounds(t: &DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.op.name(self.lenient)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] if l == r && l.is_integer() => Ok(l.clone()),
            _ => exec_err!(
                "{} takes two integers of one type, not {arg_types:?}",
                self.name()
            ),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [l, r] = args.args.as_slice() else {
            return exec_err!("{} takes two arguments", self.name());
        };
        let kernel = match self.op {
            Op::Add => numeric::add,
            Op::Subtract => numeric::sub,
            Op::Multiply => numeric::mul,
        };
        match apply(l, r, kernel) {
            Err(e) if is_overflow(&e) => self.overflowed(l, r, args.number_rows),
            other => other,
        }
    }
}

fn is_overflow(e: &datafusion::error::DataFusionError) -> bool {
    matches!(
        e.find_root(),
        datafusion::error::DataFusionError::ArrowError(err, _)
            if matches!(err.as_ref(), ArrowError::ArithmeticOverflow(_))
    )
}

/// Turns integer `+`, `-` and `*` into [`Checked`] calls, keeping every expression's name. It
/// runs after DataFusion's type coercion, when both operands of such an operator have one type.
#[derive(Debug)]
pub struct CheckedIntegerArithmetic {
    /// Strict and lenient, for each [`Op`].
    udfs: [[Arc<ScalarUDF>; 2]; 3],
}

impl Default for CheckedIntegerArithmetic {
    fn default() -> Self {
        let udfs = |op| [false, true].map(|l| Arc::new(ScalarUDF::from(Checked::new(op, l))));
        Self {
            udfs: [Op::Add, Op::Subtract, Op::Multiply].map(udfs),
        }
    }
}

/// Marks an operator inside `try` (see `conditional.rs`), which runs before type coercion:
/// [`CheckedIntegerArithmetic`] makes a marked integer operator NULL where it overflows, and
/// drops the mark from anything else.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InTry {
    signature: Signature,
}

impl InTry {
    const NAME: &str = "in_try";

    /// `e`, marked.
    pub fn mark(e: Expr) -> Expr {
        static UDF: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
            Arc::new(ScalarUDF::from(InTry {
                signature: Signature::any(1, Volatility::Immutable),
            }))
        });
        UDF.call(vec![e])
    }
}

impl ScalarUDFImpl for InTry {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => exec_err!("{} takes one argument", Self::NAME),
        }
    }
    // The mark is dropped during analysis; were it left, it gives its argument.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.as_slice() {
            [v] => Ok(v.clone()),
            _ => exec_err!("{} takes one argument", Self::NAME),
        }
    }
}

impl CheckedIntegerArithmetic {
    fn rewrite(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        expr.transform_up(|e| {
            if let Expr::ScalarFunction(f) = &e
                && f.func.name() == InTry::NAME
            {
                let Expr::ScalarFunction(f) = e else {
                    unreachable!("matched above")
                };
                let Ok([arg]) = <[Expr; 1]>::try_from(f.args) else {
                    return exec_err!("{} takes one argument", InTry::NAME);
                };
                // The operator below was made strict already: make it lenient.
                if let Expr::ScalarFunction(inner) = &arg
                    && let Some(i) = self
                        .udfs
                        .iter()
                        .position(|[strict, _]| strict.name() == inner.func.name())
                {
                    let Expr::ScalarFunction(inner) = arg else {
                        unreachable!("matched above")
                    };
                    return Ok(Transformed::yes(self.udfs[i][1].call(inner.args)));
                }
                return Ok(Transformed::yes(arg));
            }
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
                return Ok(Transformed::no(e));
            };
            let Some(op) = Op::of(*op) else {
                return Ok(Transformed::no(e));
            };
            let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
                return Ok(Transformed::no(e));
            };
            if lt != rt || !lt.is_integer() {
                return Ok(Transformed::no(e));
            }
            let udf = &self.udfs[op as usize][0];
            let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = e else {
                unreachable!("matched above")
            };
            Ok(Transformed::yes(udf.call(vec![*left, *right])))
        })
    }
}

impl AnalyzerRule for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = merge_schema(&plan.inputs());
            if plan.inputs().is_empty() {
                schema.merge(plan.schema());
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                self.rewrite(expr, &schema)
                    .map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    async fn one(sql: &str) -> std::result::Result<String, String> {
        let ctx = crate::session::functions_session().map_err(|e| e.to_string())?;
        let batches = async { ctx.sql(sql).await?.collect().await }
            .await
            .map_err(|e| e.to_string())?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)
            .map_err(|e| e.to_string())?
            .to_string())
    }

    #[tokio::test]
    async fn integer_overflow_fails_as_athena_does() {
        for (sql, message) in [
            (
                "SELECT x + 1 FROM (VALUES (CAST(9223372036854775807 AS bigint))) t(x)",
                "bigint addition overflow: 9223372036854775807 + 1",
            ),
            (
                "SELECT x * x FROM (VALUES (CAST(3037000500 AS bigint))) t(x)",
                "bigint multiplication overflow: 3037000500 * 3037000500",
            ),
            (
                "SELECT x - CAST(1 AS integer) FROM (VALUES (CAST(-2147483648 AS integer))) t(x)",
                "integer subtraction overflow: -2147483648 - 1",
            ),
            (
                "SELECT CAST(2147483647 AS integer) + CAST(1 AS integer)",
                "integer addition overflow: 2147483647 + 1",
            ),
            (
                "SELECT CAST(100 AS tinyint) + CAST(100 AS tinyint)",
                "tinyint addition overflow: 100 + 100",
            ),
            // The second row overflows; the first does not.
            (
                "SELECT x * 2 FROM (VALUES (CAST(1 AS bigint)), \
                 (CAST(5000000000000000000 AS bigint))) t(x)",
                "bigint multiplication overflow: 5000000000000000000 * 2",
            ),
        ] {
            let got = one(sql).await;
            let err = got.expect_err(sql);
            assert!(err.contains(message), "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn values_that_fit_are_unchanged() {
        let got = one(
            "SELECT x + 1 AS a, x - 1 AS b, x * 3 AS c, y + 1 AS d, y * y AS e, z + 0.5 AS g \
             FROM (VALUES (CAST(3074457345618258602 AS bigint), CAST(46340 AS integer), 1.5), \
             (CAST(NULL AS bigint), CAST(-46340 AS integer), 2.5)) t(x, y, z)",
        )
        .await
        .unwrap();
        for v in [
            "3074457345618258603",
            "3074457345618258601",
            "9223372036854775806",
            "46341",
            "2147395600",
            "2.0",
            "-46339",
            "3.0",
        ] {
            assert!(got.contains(v), "{v} in {got}");
        }
    }

    #[tokio::test]
    async fn names_and_other_types_are_kept() {
        // An unnamed sum keeps its column name; dates, decimals and doubles keep their operators.
        let got = one(
            "SELECT x + 1, DATE '2026-01-31' + INTERVAL '1' DAY AS d, 1.5 * 2 AS m, \
             1e308 * 10 AS big FROM (VALUES (CAST(1 AS bigint))) t(x)",
        )
        .await
        .unwrap();
        assert!(got.contains("2026-02-01"), "{got}");
        assert!(got.contains("3.0"), "{got}");
        assert!(got.contains("inf"), "{got}");
        // A branch not taken is not evaluated, so its overflow does not fail the query.
        let got = one(
            "SELECT CASE WHEN x < 10 THEN x * 9223372036854775807 ELSE 0 END AS c \
             FROM (VALUES (CAST(1 AS bigint)), (CAST(20 AS bigint))) t(x)",
        )
        .await
        .unwrap();
        assert!(got.contains("9223372036854775807"), "{got}");
    }

    #[tokio::test]
    async fn inside_try_an_overflowing_row_is_null_and_the_others_keep_their_values() {
        let got = one(
            "SELECT try(x * 2) AS a, try(x + y) AS b, try(1.5 * 2) AS c, \
             try(DATE '2026-01-31' + INTERVAL '1' DAY) AS d \
             FROM (VALUES (CAST(1 AS bigint), CAST(2 AS bigint)), \
             (CAST(5000000000000000000 AS bigint), CAST(5000000000000000000 AS bigint)), \
             (CAST(NULL AS bigint), CAST(7 AS bigint))) t(x, y) ORDER BY x NULLS LAST",
        )
        .await
        .unwrap();
        // Rows ordered by x: 1, 5000000000000000000, NULL. A NULL prints as an empty cell.
        let rows: Vec<Vec<&str>> = got
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows[0][1..5], ["2", "3", "3.0", "2026-02-01"], "{got}");
        assert_eq!(rows[1][1..5], ["", "", "3.0", "2026-02-01"], "{got}");
        assert_eq!(rows[2][1..5], ["", "", "3.0", "2026-02-01"], "{got}");
    }
}
