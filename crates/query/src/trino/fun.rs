//! The shape most of Athena's scalar functions share here: a name, a rule for the result type,
//! and a body over whole columns. Literals are expanded to columns, and a call made only of
//! literals gives a literal back.
//!
//! Each function also has a lenient form, used inside `try(…)`: where Athena's `try` turns an
//! error into NULL, the lenient body gives NULL for that row instead of failing.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub type Result<T> = datafusion::error::Result<T>;

/// What a body sees besides its arguments.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub name: &'static str,
    pub types: &'a [DataType],
    pub ret: &'a DataType,
    /// Inside `try(…)`: a row's error becomes NULL.
    pub lenient: bool,
    /// Rows the call answers: what a body without arguments makes (`random()`).
    pub rows: usize,
}

impl Call<'_> {
    /// An error for one row: NULL inside `try`, the error otherwise.
    pub fn row_err<T>(&self, msg: impl std::fmt::Display) -> Result<Option<T>> {
        if self.lenient {
            Ok(None)
        } else {
            Err(DataFusionError::Execution(format!("{}: {msg}", self.name)))
        }
    }
}

pub type Ret = fn(&str, &[DataType]) -> Result<DataType>;
pub type Body = fn(&Call, &[ArrayRef]) -> Result<ArrayRef>;
/// A result type that depends on the literal arguments (a time zone's name).
pub type RetLit = fn(&str, &[DataType], &[Option<&ScalarValue>]) -> Result<DataType>;

/// One function: see the module's documentation.
#[derive(Debug)]
pub struct Fun {
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
    ret: Ret,
    ret_lit: Option<RetLit>,
    body: Body,
    lenient: bool,
}

impl PartialEq for Fun {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.lenient == other.lenient
    }
}
impl Eq for Fun {}
impl std::hash::Hash for Fun {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.lenient.hash(state);
    }
}

impl Fun {
    pub fn new(name: &'static str, ret: Ret, body: Body) -> Self {
        Self {
            name,
            aliases: Vec::new(),
            signature: Signature::variadic_any(Volatility::Immutable),
            ret,
            ret_lit: None,
            body,
            lenient: false,
        }
    }

    /// The result type also depends on literal arguments.
    pub fn literal_type(mut self, f: RetLit) -> Self {
        self.ret_lit = Some(f);
        self
    }

    /// Takes no argument (`variadic_any` needs one).
    pub fn nullary(mut self, volatility: Volatility) -> Self {
        self.signature = Signature::nullary(volatility);
        self
    }

    /// Answers differently from call to call (`shuffle`), so it is never folded as a constant,
    /// and from row to row even when its arguments are literals.
    pub fn volatile(mut self) -> Self {
        self.signature = Signature::variadic_any(Volatility::Volatile);
        self
    }

    /// As [`Fun::volatile`], and may also be called without arguments (`random()`).
    pub fn volatile_or_nullary(mut self) -> Self {
        use datafusion::logical_expr::TypeSignature;
        self.signature = Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Volatile,
        );
        self
    }

    pub fn alias(mut self, a: &str) -> Self {
        self.aliases.push(a.to_string());
        self
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    /// The same function with row errors as NULL, for `try(…)`.
    pub fn lenient(&self) -> Self {
        Self {
            name: self.name,
            aliases: self.aliases.clone(),
            signature: self.signature.clone(),
            ret: self.ret,
            ret_lit: self.ret_lit,
            body: self.body,
            lenient: true,
        }
    }
}

impl ScalarUDFImpl for Fun {
    fn name(&self) -> &str {
        self.name
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(self.name, arg_types)
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<arrow::datatypes::FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = match self.ret_lit {
            Some(f) => f(self.name, &types, args.scalar_arguments)?,
            None => (self.ret)(self.name, &types)?,
        };
        Ok(Arc::new(arrow::datatypes::Field::new(self.name, t, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // A volatile call answers each row afresh, whatever its arguments.
        let all_scalar = self.signature.volatility != Volatility::Volatile
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let types: Vec<DataType> = arrays.iter().map(|a| a.data_type().clone()).collect();
        let ret = args.return_field.data_type().clone();
        let call = Call {
            name: self.name,
            types: &types,
            ret: &ret,
            lenient: self.lenient,
            rows,
        };
        let out = (self.body)(&call, &arrays)?;
        let out = if out.data_type() != &ret {
            arrow::compute::cast(&out, &ret)?
        } else {
            out
        };
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// Checks the number of arguments at planning.
pub fn arity(name: &str, types: &[DataType], allowed: &[usize]) -> Result<()> {
    if allowed.contains(&types.len()) {
        Ok(())
    } else {
        let want: Vec<String> = allowed.iter().map(|n| n.to_string()).collect();
        Err(DataFusionError::Plan(format!(
            "{name} takes {} argument(s), not {}",
            want.join(" or "),
            types.len()
        )))
    }
}

/// A string argument read where it is, without copying it to another string type (a table's
/// columns are `Utf8View`; copying them cost more than the function itself).
pub enum Texts {
    Utf8(StringArray),
    Large(arrow::array::LargeStringArray),
    View(arrow::array::StringViewArray),
}

impl Texts {
    pub fn of(a: &ArrayRef) -> Result<Self> {
        use arrow::array::AsArray;
        Ok(match a.data_type() {
            DataType::Utf8View => Texts::View(a.as_string_view().clone()),
            DataType::LargeUtf8 => Texts::Large(a.as_string::<i64>().clone()),
            _ => Texts::Utf8(text(a)?),
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Texts::Utf8(x) => x.len(),
            Texts::Large(x) => x.len(),
            Texts::View(x) => x.len(),
        }
    }

    pub fn is_null(&self, i: usize) -> bool {
        match self {
            Texts::Utf8(x) => x.is_null(i),
            Texts::Large(x) => x.is_null(i),
            Texts::View(x) => x.is_null(i),
        }
    }

    pub fn value(&self, i: usize) -> &str {
        match self {
            Texts::Utf8(x) => x.value(i),
            Texts::Large(x) => x.value(i),
            Texts::View(x) => x.value(i),
        }
    }

    /// Each row's text, `None` for NULL.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| (!self.is_null(i)).then(|| self.value(i)))
    }
}

/// An argument as UTF-8 strings (any string or literal NULL type is cast).
pub fn text(a: &ArrayRef) -> Result<StringArray> {
    let c = arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// An integer argument as bigint (any integer or literal NULL type is cast).
pub fn ints(a: &ArrayRef) -> Result<arrow::array::Int64Array> {
    use arrow::array::AsArray;
    Ok(arrow::compute::cast(a, &DataType::Int64)?
        .as_primitive::<arrow::datatypes::Int64Type>()
        .clone())
}

/// The value of a string argument that must be the same on every row (a unit, a format): its
/// first non-NULL value, or None when every row is NULL.
pub fn same_text(a: &StringArray) -> Option<&str> {
    (0..a.len()).find(|&i| a.is_valid(i)).map(|i| a.value(i))
}

pub fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
    )
}

pub fn arc(a: impl Array + 'static) -> ArrayRef {
    Arc::new(a)
}
