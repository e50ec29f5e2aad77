//! Athena's conditionals and the functions planned as other expressions:
//!
//! - `if(c, a[, b])`: `CASE WHEN c THEN a [ELSE b] END` (only the chosen branch runs).
//! - `try(e)`: `e` with the errors Athena's `try` hides turned into NULL: a cast becomes
//!   `TRY_CAST`, a division or remainder by zero is NULL, and this module's functions give NULL
//!   for a row they cannot compute (an unparsable date, text that is not JSON, a bad pattern);
//!   DataFusion's own functions are run row by row when a batch fails, a failing row giving
//!   NULL.
//! - `typeof(x)`: the value's type, in Athena's names.
//! - `localtimestamp` and `localtime`: the query's start as a wall-clock time in the session's
//!   zone (UTC), as `now()` and `current_time` give it.
//! - `contains(array, x)`: Athena's membership on arrays (`arrays.rs`); `count_if(c)`: `count(CASE WHEN c THEN 1 END)`;
//!   `max_by(x, y)` / `min_by(x, y)`: the aggregates of `pick.rs` (the forms with a count are
//!   aggregates of their own, `top_by.rs`).

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNanoType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::logical_expr::expr::{AggregateFunction, Case, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, Expr, ExprSchemable, Operator,
    ScalarUDF, Signature, SortExpr, Volatility, lit,
};

use super::fun::{Call, Fun, Result, arc, arity};

/// A type in Athena's words.
pub fn trino_type(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => format!("decimal({p},{s})"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::Utf8View => "varchar".into(),
        // The engine holds Athena's JSON as large strings (`json_types::JSON`).
        DataType::LargeUtf8 => "json".into(),
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary => "varbinary".into(),
        DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(u, tz) if super::render::is_table_timestamp(u, tz.as_deref()) => {
            "timestamp(3)".into()
        }
        DataType::Timestamp(u, tz) => {
            let p = match u {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            match tz {
                Some(_) => format!("timestamp({p}) with time zone"),
                None => format!("timestamp({p})"),
            }
        }
        DataType::Time32(u) | DataType::Time64(u) => format!(
            "time({})",
            match u {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            }
        ),
        DataType::Interval(arrow::datatypes::IntervalUnit::YearMonth) => {
            "interval year to month".into()
        }
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array({})", trino_type(f.data_type())),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map({}, {})",
                trino_type(kv[0].data_type()),
                trino_type(kv[1].data_type())
            ),
            other => format!("map({})", trino_type(other)),
        },
        DataType::Struct(fs) => format!(
            "row({})",
            fs.iter()
                .map(|f| format!("{} {}", f.name(), trino_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Dictionary(_, v) => trino_type(v),
        other => other.to_string().to_lowercase(),
    }
}

fn typeof_(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let name = trino_type(&call.types[0]);
    // The engine has one interval type for both of Athena's: an interval of whole months (as
    // `INTERVAL '3' MONTH` is planned) is a year to month one, as it is printed (`render.rs`).
    if let Some(iv) = a[0].as_primitive_opt::<IntervalMonthDayNanoType>() {
        let names = iv.iter().map(|v| match v {
            Some(v) if v.months != 0 && v.days == 0 && v.nanoseconds == 0 => {
                "interval year to month"
            }
            _ => "interval day to second",
        });
        return Ok(arc(names.map(Some).collect::<StringArray>()));
    }
    Ok(arc(StringArray::from(vec![name; a[0].len()])))
}

fn is_list(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    )
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// The common type of `if`'s branches (what the CASE it becomes will have).
fn branches_type(types: &[DataType]) -> Result<DataType> {
    let mut t = DataType::Null;
    for b in types {
        if t == DataType::Null {
            t = b.clone();
        } else if *b != DataType::Null && *b != t {
            t = datafusion::logical_expr::type_coercion::binary::comparison_coercion(&t, b)
                .ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "if: the branches' types {} and {} have no common type",
                        trino_type(&t),
                        trino_type(b)
                    ))
                })?;
        }
    }
    Ok(t)
}

fn planned_away(call: &Call, _: &[ArrayRef]) -> Result<ArrayRef> {
    Err(DataFusionError::Internal(format!(
        "{} should have been planned as another expression",
        call.name
    )))
}

/// `CAST(x AS VARCHAR(n))`, written `varchar_cast(CAST(x AS VARCHAR), n, x)` before planning
/// (see `select.rs`): text is cut to its first `n` characters; any other value's text must fit
/// in `n` ("Value 1200.0 cannot be represented as varchar(3)"), as on Athena.
fn varchar_cast(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let texts = super::fun::text(&a[0])?;
    let n = arrow::compute::cast(&a[1], &DataType::Int64)?;
    let n = n.as_primitive::<arrow::datatypes::Int64Type>();
    let cut = super::fun::is_string(a[2].data_type());
    let mut out = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let (Some(t), false) = (t, n.is_null(i)) else {
            out.push(None);
            continue;
        };
        let n = usize::try_from(n.value(i)).unwrap_or(0);
        match t.char_indices().nth(n) {
            None => out.push(Some(t.to_string())),
            Some((end, _)) if cut => out.push(Some(t[..end].to_string())),
            Some(_) => {
                out.push(call.row_err(format!("Value {t} cannot be represented as varchar({n})"))?)
            }
        }
    }
    Ok(arc(StringArray::from(out)))
}

/// The scalar functions above (`if` and `try` are rewritten before they run).
pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new(
            "varchar_cast",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(DataType::Utf8)
            },
            varchar_cast,
        ),
        Fun::new(
            "typeof",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Utf8)
            },
            typeof_,
        ),
        Fun::new(
            "if",
            |n, t| {
                arity(n, t, &[2, 3])?;
                branches_type(&t[1..])
            },
            planned_away,
        ),
        // Planned as DataFusion's array or map function for the first argument's type.
        Fun::new(
            "contains",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Boolean)
            },
            planned_away,
        ),
        Fun::new(
            "element_at",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(match &t[0] {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        f.data_type().clone()
                    }
                    DataType::Map(f, _) => match f.data_type() {
                        DataType::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
                        _ => DataType::Null,
                    },
                    other => {
                        return Err(DataFusionError::Plan(format!(
                            "element_at takes an array or a map, not {}",
                            trino_type(other)
                        )));
                    }
                })
            },
            planned_away,
        ),
        // Strings or arrays, planned as DataFusion's function for the argument's type (its own
        // `reverse` and `repeat` take only strings; Athena's `repeat` makes an array).
        Fun::new(
            "reverse",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(if is_list(&t[0]) {
                    t[0].clone()
                } else {
                    DataType::Utf8
                })
            },
            planned_away,
        ),
        Fun::new(
            "repeat",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::List(Arc::new(Field::new_list_field(
                    t[0].clone(),
                    true,
                ))))
            },
            planned_away,
        ),
        Fun::new(
            "localtimestamp",
            |_, _| Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
            planned_away,
        )
        .nullary(Volatility::Stable),
        Fun::new(
            "localtime",
            |_, _| Ok(DataType::Time32(TimeUnit::Millisecond)),
            planned_away,
        )
        .nullary(Volatility::Stable),
        Fun::new(
            "try",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(t[0].clone())
            },
            |_, a| Ok(Arc::clone(&a[0])),
        ),
    ]
}

/// An aggregate that is only a name for the planner: [`Rewrites`] replaces it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Placeholder {
    name: &'static str,
    arity: &'static [usize],
    signature: Signature,
    /// The index of the argument whose type is the result's, or None for bigint.
    ret_from: Option<usize>,
}

impl Placeholder {
    fn udaf(name: &'static str, arity: &'static [usize], ret_from: Option<usize>) -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            name,
            arity,
            signature: Signature::variadic_any(Volatility::Immutable),
            ret_from,
        })
    }
}

impl AggregateUDFImpl for Placeholder {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        arity(self.name, t, self.arity)?;
        Ok(match self.ret_from {
            Some(i) => t[i].clone(),
            None => DataType::Int64,
        })
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Err(DataFusionError::Internal(format!(
            "{} should have been planned as another aggregate",
            self.name
        )))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_state", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

/// The aggregates planned as others.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        Placeholder::udaf("count_if", &[1], None),
        datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
            .as_ref()
            .clone()
            .with_aliases(["every"]),
    ]
}

/// Rewrites `if`, `try`, `contains` on arrays and the placeholder aggregates.
#[derive(Debug, Default)]
pub struct Rewrites;

fn is_fun(f: &ScalarUDF) -> Option<&Fun> {
    (f.inner().as_ref() as &dyn Any).downcast_ref::<Fun>()
}

/// A function of DataFusion's inside `try(…)`: called on the whole batch, and when that fails,
/// row by row, a row that fails giving NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TryRows {
    inner: Arc<ScalarUDF>,
}

/// Whether `f` is a function of DataFusion's wrapped in `W`.
fn wrapped_in<W: Any>(f: &ScalarUDF) -> bool {
    (f.inner().as_ref() as &dyn Any)
        .downcast_ref::<W>()
        .is_some()
}

/// The methods a wrapper of a function of DataFusion's (`inner`) takes from it unchanged.
macro_rules! as_inner {
    () => {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn signature(&self) -> &Signature {
            self.inner.signature()
        }
        fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
            self.inner.return_type(arg_types)
        }
        fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
            self.inner.coerce_types(arg_types)
        }
    };
}

impl datafusion::logical_expr::ScalarUDFImpl for TryRows {
    as_inner!();
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<FieldRef> {
        // A row that fails is NULL, whatever the function itself promises.
        let f = self.inner.return_field_from_args(args)?;
        Ok(Arc::new(f.as_ref().clone().with_nullable(true)))
    }
    // Functions that are planned away (`coalesce` into a CASE, `now()` into the query's start)
    // still are: what they become fails row by row only through its own parts.
    fn simplify(
        &self,
        args: Vec<Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }
    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }
    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.inner().conditional_arguments(args)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        let whole = datafusion::logical_expr::ScalarFunctionArgs {
            args: args.args.clone(),
            arg_fields: args.arg_fields.clone(),
            number_rows: args.number_rows,
            return_field: Arc::clone(&args.return_field),
            config_options: Arc::clone(&args.config_options),
        };
        match self.inner.invoke_with_args(whole) {
            Ok(out) => return Ok(out),
            // Not a row the function cannot compute: the function cannot run here (it is
            // planned away before it runs, `now()`), which the planner must see.
            Err(e @ DataFusionError::Internal(_)) => return Err(e),
            Err(_) => {}
        }
        let rows = args.number_rows;
        let mut parts: Vec<ArrayRef> = Vec::with_capacity(rows);
        for i in 0..rows {
            let one = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Array(x) => ColumnarValue::Array(x.slice(i, 1)),
                    scalar => scalar.clone(),
                })
                .collect();
            let r = self
                .inner
                .invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
                    args: one,
                    arg_fields: args.arg_fields.clone(),
                    number_rows: 1,
                    return_field: Arc::clone(&args.return_field),
                    config_options: Arc::clone(&args.config_options),
                })
                .and_then(|v| v.into_array(1));
            parts.push(match r {
                Ok(a) => a,
                Err(_) => arrow::array::new_null_array(args.return_field.data_type(), 1),
            });
        }
        if parts.is_empty() {
            return Ok(ColumnarValue::Array(arrow::array::new_empty_array(
                args.return_field.data_type(),
            )));
        }
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        Ok(ColumnarValue::Array(arrow::compute::concat(&refs)?))
    }
}

/// The errors `try` hides, made NULL in `e`.
fn lenient(e: Expr) -> Result<Expr> {
    Ok(e.transform_down(|e| {
        Ok(match e {
            Expr::Cast(c) => Transformed::yes(Expr::TryCast(
                datafusion::logical_expr::TryCast::new_from_field(c.expr, c.field),
            )),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: op @ (Operator::Divide | Operator::Modulo),
                right,
            }) => Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                left,
                op,
                Box::new(datafusion::functions::core::expr_fn::nullif(*right, lit(0))),
            ))),
            Expr::ScalarFunction(ScalarFunction { func, args }) => match is_fun(&func) {
                Some(f) => Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                    func: Arc::new(ScalarUDF::new_from_impl(f.lenient())),
                    args,
                })),
                // DataFusion's own functions: a row they fail on becomes NULL.
                None if !wrapped_in::<TryRows>(&func) => {
                    Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: Arc::new(ScalarUDF::new_from_impl(TryRows { inner: func })),
                        args,
                    }))
                }
                None => Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args })),
            },
            other => Transformed::no(other),
        })
    })?
    .data
    // Integer `+`, `-` and `*` are NULL where they overflow (`overflow.rs`, once types are known).
    .transform_up(|e| {
        Ok(match e {
            Expr::BinaryExpr(BinaryExpr {
                op: Operator::Plus | Operator::Minus | Operator::Multiply,
                ..
            }) => Transformed::yes(crate::trino::overflow::InTry::mark(e)),
            other => Transformed::no(other),
        })
    })?
    .data)
}

/// `greatest` and `least` as Athena's: NULL when any argument is NULL (DataFusion's skip NULL
/// arguments, as PostgreSQL's do).
#[derive(Debug, PartialEq, Eq, Hash)]
struct NullIfAnyNull {
    inner: Arc<ScalarUDF>,
}

impl datafusion::logical_expr::ScalarUDFImpl for NullIfAnyNull {
    as_inner!();
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        let f = self.inner.return_field_from_args(args)?;
        Ok(Arc::new(f.as_ref().clone().with_nullable(nullable)))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        if args
            .args
            .iter()
            .any(|a| matches!(a, ColumnarValue::Scalar(s) if s.is_null()))
        {
            let t = args.return_field.data_type();
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from(t)?,
            ));
        }
        let nulls = args.args.iter().fold(None, |acc, a| match a {
            ColumnarValue::Array(x) => {
                arrow::buffer::NullBuffer::union(acc.as_ref(), x.logical_nulls().as_ref())
            }
            ColumnarValue::Scalar(_) => acc,
        });
        let out = self.inner.invoke_with_args(args)?;
        let (Some(nulls), ColumnarValue::Array(out)) = (nulls, &out) else {
            return Ok(out);
        };
        let nulls = arrow::buffer::NullBuffer::union(Some(&nulls), out.logical_nulls().as_ref());
        let data = out.to_data().into_builder().nulls(nulls).build()?;
        Ok(ColumnarValue::Array(arrow::array::make_array(data)))
    }
}

impl FunctionRewrite for Rewrites {
    fn name(&self) -> &str {
        "athena_function_rewrites"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        match expr {
            Expr::ScalarFunction(ScalarFunction { func, args }) => match func.name() {
                "if" => {
                    let mut args = args.into_iter();
                    let (Some(c), Some(a)) = (args.next(), args.next()) else {
                        return Err(DataFusionError::Plan("if takes 2 or 3 arguments".into()));
                    };
                    let b = args.next();
                    Ok(Transformed::yes(Expr::Case(Case::new(
                        None,
                        vec![(Box::new(c), Box::new(a))],
                        b.map(Box::new),
                    ))))
                }
                // A pattern that is text to find: a LIKE (`text.rs`).
                "regexp_like" if is_fun(&func).is_some() => {
                    match super::text::regexp_like_as_like(&args, schema) {
                        Some(like) => Ok(Transformed::yes(like)),
                        None => Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction {
                            func,
                            args,
                        }))),
                    }
                }
                // Athena's wall-clock time in the session's zone, UTC: the query's start time,
                // as `now()` and `current_time` give it.
                "localtimestamp" if is_fun(&func).is_some() => {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(datafusion::functions::datetime::expr_fn::now()),
                        DataType::Timestamp(TimeUnit::Millisecond, None),
                    ))))
                }
                // `now()` and `current_timestamp`: Athena's `timestamp(3) with time zone`, in
                // the session's zone (DataFusion's are nanoseconds at `+00:00`).
                "now" if args.is_empty() && is_fun(&func).is_none() => {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(Expr::ScalarFunction(ScalarFunction { func, args })),
                        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    ))))
                }
                "localtime" if is_fun(&func).is_some() => {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(datafusion::functions::datetime::expr_fn::current_time()),
                        DataType::Time32(TimeUnit::Millisecond),
                    ))))
                }
                "greatest" | "least" if !wrapped_in::<NullIfAnyNull>(&func) => {
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: Arc::new(ScalarUDF::new_from_impl(NullIfAnyNull { inner: func })),
                        args,
                    })))
                }
                "try" => {
                    let [e] = <[Expr; 1]>::try_from(args)
                        .map_err(|_| DataFusionError::Plan("try takes one argument".into()))?;
                    Ok(Transformed::yes(lenient(e)?))
                }
                "contains" if is_fun(&func).is_some() => {
                    let list = args.first().is_some_and(|a| {
                        matches!(
                            a.get_type(schema),
                            Ok(DataType::List(_)
                                | DataType::LargeList(_)
                                | DataType::FixedSizeList(..))
                        )
                    });
                    let func = if list {
                        Arc::new(
                            crate::trino::arrays::contains_element().udf(),
                        )
                    } else {
                        datafusion::functions::string::contains()
                    };
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func,
                        args,
                    })))
                }
                "reverse" if is_fun(&func).is_some() => {
                    let list = args.first().is_some_and(|a| a.get_type(schema).is_ok_and(|t| is_list(&t)));
                    let func = if list {
                        datafusion::functions_nested::reverse::array_reverse_udf()
                    } else {
                        datafusion::functions::unicode::reverse()
                    };
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction { func, args })))
                }
                "repeat" if is_fun(&func).is_some() => Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction {
                        func: datafusion::functions_nested::repeat::array_repeat_udf(),
                        args,
                    },
                ))),
                "concat"
                    if args
                        .iter()
                        .any(|a| a.get_type(schema).is_ok_and(|t| is_list(&t))) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: datafusion::functions_nested::concat::array_concat_udf(),
                        args,
                    })))
                }
                // DataFusion's own where its answer is Athena's, for its speed: `substr` from a
                // positive literal start, `strpos` without an instance, `length` of a string.
                "substr"
                    if is_fun(&func).is_some()
                        && args.len() >= 2
                        && args.first().is_some_and(|a| a.get_type(schema).is_ok_and(|t| !is_binary(&t)))
                        && matches!(&args[1], Expr::Literal(v, _) if v.cast_to(&DataType::Int64).is_ok_and(|v| matches!(v, datafusion::common::ScalarValue::Int64(Some(x)) if x > 0)))
                        && args.get(2).is_none_or(|l| matches!(l, Expr::Literal(v, _) if v.cast_to(&DataType::Int64).is_ok_and(|v| matches!(v, datafusion::common::ScalarValue::Int64(Some(x)) if x >= 0)))) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: datafusion::functions::unicode::substr(),
                        args,
                    })))
                }
                "strpos" if is_fun(&func).is_some() && args.len() == 2 => {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(Expr::ScalarFunction(ScalarFunction {
                            func: datafusion::functions::unicode::strpos(),
                            args,
                        })),
                        DataType::Int64,
                    ))))
                }
                "length"
                    if is_fun(&func).is_some()
                        && args.first().is_some_and(|a| a.get_type(schema).is_ok_and(|t| !is_binary(&t))) =>
                {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(Expr::ScalarFunction(ScalarFunction {
                            func: datafusion::functions::unicode::character_length(),
                            args,
                        })),
                        DataType::Int64,
                    ))))
                }
                // `extract(DOW FROM x)` and Athena's other fields, as Athena counts them (of an
                // interval too: `extract(HOUR FROM INTERVAL '27' HOUR)` is 3).
                "date_part" | "datepart"
                    if args.len() == 2
                        && matches!(
                            args[1].get_type(schema),
                            Ok(DataType::Date32
                                | DataType::Timestamp(..)
                                | DataType::Interval(_)
                                | DataType::Duration(_))
                        )
                        && matches!(&args[0], Expr::Literal(v, _)
                            if v.to_string().trim_matches('"').parse::<String>().ok()
                                .and_then(|f| super::datetime::extract_field(&f)).is_some()) =>
                {
                    let Expr::Literal(v, _) = &args[0] else { unreachable!("matched above") };
                    let field = v.to_string();
                    let name = super::datetime::extract_field(field.trim_matches('"'))
                        .expect("matched above");
                    let f = super::datetime::extractors()
                        .into_iter()
                        .find(|f| datafusion::logical_expr::ScalarUDFImpl::name(f) == name)
                        .expect("every field has an extractor");
                    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                        func: Arc::new(f.udf()),
                        args: vec![args[1].clone()],
                    })))
                }
                // On a date, `date_trunc` gives a date.
                "date_trunc"
                    if args.len() == 2
                        && matches!(args[1].get_type(schema), Ok(DataType::Date32)) =>
                {
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(Expr::ScalarFunction(ScalarFunction { func, args })),
                        DataType::Date32,
                    ))))
                }
                "element_at" if is_fun(&func).is_some() => {
                    let map = args
                        .first()
                        .is_some_and(|a| matches!(a.get_type(schema), Ok(DataType::Map(..))));
                    let [x, i] = <[Expr; 2]>::try_from(args).map_err(|_| {
                        DataFusionError::Plan("element_at takes 2 arguments".into())
                    })?;
                    Ok(Transformed::yes(if map {
                        super::subscript::map_value(x, i, false)
                    } else {
                        super::subscript::element_at(x, i)
                    }))
                }
                _ => Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction {
                    func,
                    args,
                }))),
            },
            Expr::AggregateFunction(f) => aggregate(f),
            Expr::Cast(c) => {
                let from = c.expr.get_type(schema)?;
                if let Some(e) = athena_cast(&c.expr, &from, c.field.data_type()) {
                    return Ok(Transformed::yes(e));
                }
                match super::json_types::json_cast(
                    (*c.expr).clone(),
                    &from,
                    c.field.data_type(),
                    false,
                ) {
                    Some(e) => Ok(Transformed::yes(e)),
                    None => Ok(Transformed::no(Expr::Cast(c))),
                }
            }
            Expr::TryCast(c) => {
                let from = c.expr.get_type(schema)?;
                match super::json_types::json_cast(
                    (*c.expr).clone(),
                    &from,
                    c.field.data_type(),
                    true,
                ) {
                    Some(e) => Ok(Transformed::yes(e)),
                    None => Ok(Transformed::no(Expr::TryCast(c))),
                }
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

/// Casts whose Athena semantics differ from arrow's: a double or decimal to an integer rounds
/// half away from zero (arrow truncates), a row to a row type matches fields by position
/// (arrow by name), a timestamp to a coarser precision rounds half up,
/// and a date or timestamp to varchar is written as Athena writes it
/// (`2001-08-22 03:04:05.321`, arrow writes a `T`).
fn athena_cast(e: &Expr, from: &DataType, target: &DataType) -> Option<Expr> {
    let float = matches!(
        from,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    );
    if float && target.is_integer() {
        let rounded = Expr::ScalarFunction(ScalarFunction {
            func: datafusion::functions::math::round(),
            args: vec![e.clone()],
        });
        return Some(Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(rounded),
            target.clone(),
        )));
    }
    // A row to a row type of the same arity: field by field, by position (as Athena casts
    // rows), where arrow matches fields by name.
    if let (DataType::Struct(from_fields), DataType::Struct(to_fields)) = (from, target)
        && from_fields.len() == to_fields.len()
        && !from_fields.is_empty()
        && from_fields
            .iter()
            .zip(to_fields.iter())
            .any(|(a, b)| a.name() != b.name())
    {
        let mut args = Vec::with_capacity(2 * to_fields.len());
        for (a, b) in from_fields.iter().zip(to_fields.iter()) {
            args.push(lit(b.name().as_str()));
            args.push(Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(datafusion::functions::core::expr_fn::get_field(
                    e.clone(),
                    a.name().as_str(),
                )),
                b.data_type().clone(),
            )));
        }
        let row = Expr::ScalarFunction(ScalarFunction {
            func: datafusion::functions::core::named_struct(),
            args,
        });
        // A NULL row stays NULL (not a row of NULLs).
        return Some(Expr::Case(Case::new(
            None,
            vec![(
                Box::new(e.clone().is_null()),
                Box::new(Expr::Literal(
                    datafusion::common::ScalarValue::try_from(target).ok()?,
                    None,
                )),
            )],
            Some(Box::new(row)),
        )));
    }
    // To a coarser timestamp: Athena rounds half up (arrow truncates), so `.521` to
    // `timestamp(0)` is the next second. The value is rounded in its own unit, then cast.
    let rounding = matches!(e, Expr::ScalarFunction(f) if f.func.name() == ROUND_TIMESTAMP);
    // The table's timestamps are `timestamp(3)` without a zone, stored as microseconds at UTC.
    let table = |coarse: &TimeUnit| {
        to_zone_less(target)
            && matches!(from, DataType::Timestamp(u, z) if super::render::is_table_timestamp(u, z.as_deref()))
            && per_second(*coarse) < 1_000
    };
    if let (DataType::Timestamp(fine, zone), DataType::Timestamp(coarse, to_zone)) = (from, target)
        && (zone == to_zone || table(coarse))
        && per_second(*coarse) < per_second(*fine)
        && !rounding
    {
        let step = per_second(*fine) / per_second(*coarse);
        let f = Fun::new(
            ROUND_TIMESTAMP,
            |_, t| Ok(t[0].clone()),
            |_, a| {
                let steps = a[1].as_primitive::<arrow::datatypes::Int64Type>();
                let step = i128::from(steps.value(0));
                let ints = arrow::compute::cast(&a[0], &DataType::Int64)?;
                let rounded: arrow::array::Int64Array = arrow::compute::kernels::arity::unary(
                    ints.as_primitive::<arrow::datatypes::Int64Type>(),
                    |v| ((i128::from(v) + step / 2).div_euclid(step) * step) as i64,
                );
                Ok(arrow::compute::cast(&rounded, a[0].data_type())?)
            },
        );
        return Some(Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(Expr::ScalarFunction(ScalarFunction {
                func: Arc::new(f.udf()),
                args: vec![e.clone(), lit(step)],
            })),
            target.clone(),
        )));
    }
    // Times as Athena prints them (not ISO 8601), and doubles as Java does (`1.0E-5`,
    // `1.2345678E7`), where arrow writes `0.00001` and `12345678.0`.
    let printed = matches!(
        from,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Float64 | DataType::Float32
    );
    if printed && matches!(target, DataType::Utf8 | DataType::Utf8View) {
        let f = Fun::new(
            "cast_to_varchar",
            |_, _| Ok(DataType::Utf8),
            |_, a| Ok(arc(super::render::column(&a[0]))),
        );
        let out = Expr::ScalarFunction(ScalarFunction {
            func: Arc::new(f.udf()),
            args: vec![e.clone()],
        });
        return Some(if target == &DataType::Utf8 {
            out
        } else {
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(out),
                target.clone(),
            ))
        });
    }
    None
}

/// Whether `t` is a timestamp without a zone.
fn to_zone_less(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, None))
}

/// The rounding a cast to a coarser timestamp goes through.
const ROUND_TIMESTAMP: &str = "round_timestamp";

fn per_second(u: TimeUnit) -> i64 {
    match u {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// An ordered aggregate's sort directions, and its arguments followed by its sort keys (as
/// `ordered_agg.rs` takes them).
fn ordered(args: &[Expr], order_by: &[SortExpr]) -> (Vec<arrow::compute::SortOptions>, Vec<Expr>) {
    let order = order_by
        .iter()
        .map(|o| arrow::compute::SortOptions {
            descending: !o.asc,
            nulls_first: o.nulls_first,
        })
        .collect();
    let args = args
        .iter()
        .cloned()
        .chain(order_by.iter().map(|o| o.expr.clone()))
        .collect();
    (order, args)
}

fn aggregate(f: AggregateFunction) -> Result<Transformed<Expr>> {
    let name = f.func.name().to_string();
    let p = f.params;
    let with = |func: Arc<AggregateUDF>,
                args: Vec<Expr>,
                filter: Option<Box<Expr>>,
                order_by: Vec<SortExpr>| {
        Expr::AggregateFunction(AggregateFunction::new_udf(
            func,
            args,
            p.distinct,
            filter,
            order_by,
            p.null_treatment,
        ))
    };
    Ok(match name.as_str() {
        "count_if" => {
            let c = p.args[0].clone();
            let one = Expr::Case(Case::new(
                None,
                vec![(Box::new(c), Box::new(lit(1_i64)))],
                None,
            ));
            Transformed::yes(with(
                datafusion::functions_aggregate::count::count_udaf(),
                vec![one],
                p.filter.clone(),
                vec![],
            ))
        }
        "array_agg"
            if !p.order_by.is_empty()
                && !p.distinct
                && p.args.len() == 1
                && !matches!(
                    p.null_treatment,
                    Some(datafusion::logical_expr::expr::NullTreatment::IgnoreNulls)
                ) =>
        {
            let (order, args) = ordered(&p.args, &p.order_by);
            Transformed::yes(with(
                super::ordered_agg::udaf(order, None),
                args,
                p.filter.clone(),
                vec![],
            ))
        }
        // `listagg(x, sep) WITHIN GROUP (ORDER BY …)`, as `syntax.rs` writes it.
        "string_agg"
            if !p.order_by.is_empty()
                && !p.distinct
                && p.args.len() == 2
                && let Expr::Literal(
                    datafusion::common::ScalarValue::Utf8(Some(sep))
                    | datafusion::common::ScalarValue::Utf8View(Some(sep))
                    | datafusion::common::ScalarValue::LargeUtf8(Some(sep)),
                    _,
                ) = &p.args[1] =>
        {
            let (order, args) = ordered(&p.args[..1], &p.order_by);
            Transformed::yes(with(
                super::ordered_agg::udaf(order, Some(sep.clone())),
                args,
                p.filter.clone(),
                vec![],
            ))
        }
        "max_by" | "min_by" if p.args.len() == 2 => Transformed::yes(with(
            super::pick::by(name == "max_by"),
            p.args.clone(),
            p.filter.clone(),
            vec![],
        )),
        _ => Transformed::no(Expr::AggregateFunction(AggregateFunction {
            func: f.func,
            params: p,
        })),
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn try_turns_the_failing_rows_of_datafusions_functions_into_null() {
        let rows = crate::trino::csv_rows(
            "SELECT coalesce(try(chr(x)), 'null') FROM (VALUES (65), (-1), (66), (NULL)) AS t(x)",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["A", "null", "B", "null"]);
        // Without try the query fails, naming the reason.
        let e = crate::trino::csv_rows("SELECT chr(x) FROM (VALUES (65), (-1)) AS t(x)")
            .await
            .unwrap_err();
        assert!(e.contains("invalid Unicode scalar value"), "{e}");
        // Functions planned as other expressions still are inside try.
        let rows = crate::trino::csv_rows(
            "SELECT try(coalesce(x, 1)), try(nullif(x, 4)), try(now()) IS NOT NULL \
             FROM (VALUES (CAST(NULL AS INTEGER)), (4)) AS t(x)",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["1,,true", "4,,true"]);
    }

    /// The table's timestamps (`timestamp(3)`, stored as microseconds at UTC) cast to a coarser
    /// precision round half up, as a zone-less timestamp's do.
    #[tokio::test]
    async fn the_tables_timestamps_round_to_a_coarser_precision() {
        use std::sync::Arc;
        let ctx = crate::session::functions_session().unwrap();
        let times = arrow::array::TimestampMicrosecondArray::from(vec![
            1_763_349_444_766_000,
            1_763_349_444_249_000,
        ])
        .with_timezone("UTC");
        let batch = arrow::array::RecordBatch::try_from_iter([(
            "event_time",
            Arc::new(times) as arrow::array::ArrayRef,
        )])
        .unwrap();
        ctx.register_batch("events", batch).unwrap();
        let sql = "SELECT CAST(event_time AS timestamp(0)) AS s, CAST(event_time AS timestamp(3)) \
                   AS ms FROM events";
        let (schema, batches) = crate::session::run_sql(&ctx, sql).await.unwrap();
        let out = crate::session::render(&schema, &batches, crate::session::Format::Csv).unwrap();
        assert_eq!(
            out,
            "s,ms\n2025-11-17 03:17:25,2025-11-17 03:17:24.766\n\
             2025-11-17 03:17:24,2025-11-17 03:17:24.249\n"
        );
    }
}
