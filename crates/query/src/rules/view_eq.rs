//! `column = 'text'` and `column <> 'text'` over a `Utf8View` column, compared view by view.
//!
//! A view is 16 bytes: the string's length, then the string itself when it has at most 12 bytes,
//! else its first 4 bytes and where the rest lives. Two strings of at most 12 bytes are equal
//! exactly when their views are (the unused bytes are zero), so such a comparison is one 128-bit
//! compare per row; a longer literal first compares length and prefix, and reads the bytes only
//! when those match. arrow's general kernel checks lengths and bytes row by row, which cost a
//! third of `count(*) … WHERE source = 'web'`. A NULL row gives NULL, as `=` does; a column of
//! another type is compared by the expression as written.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};

#[derive(Debug)]
pub struct ViewEq {
    /// The comparison as written: its schema, its display, and the fallback.
    inner: Arc<dyn PhysicalExpr>,
    column: usize,
    text: Vec<u8>,
    /// The literal's own view when it fits in one (at most 12 bytes).
    view: Option<u128>,
    negated: bool,
}

impl ViewEq {
    /// `e` as a view comparison when it is `column =|<> literal` (either side) over strings.
    pub fn of(e: &Arc<dyn PhysicalExpr>) -> Option<Self> {
        let b = e.downcast_ref::<BinaryExpr>()?;
        let negated = match b.op() {
            Operator::Eq => false,
            Operator::NotEq => true,
            _ => return None,
        };
        let (c, l) = match (
            b.left().downcast_ref::<Column>(),
            b.right().downcast_ref::<Literal>(),
        ) {
            (Some(c), Some(l)) => (c, l),
            _ => (
                b.right().downcast_ref::<Column>()?,
                b.left().downcast_ref::<Literal>()?,
            ),
        };
        let text = match l.value() {
            ScalarValue::Utf8View(Some(s)) | ScalarValue::Utf8(Some(s)) => s.as_bytes().to_vec(),
            _ => return None,
        };
        let view = (text.len() <= 12).then(|| {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
            bytes[4..4 + text.len()].copy_from_slice(&text);
            u128::from_le_bytes(bytes)
        });
        Some(Self {
            inner: Arc::clone(e),
            column: c.index(),
            text,
            view,
            negated,
        })
    }
}

impl PartialEq for ViewEq {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_ref() == other.inner.as_ref()
    }
}
impl Eq for ViewEq {}
impl Hash for ViewEq {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for ViewEq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

impl PhysicalExpr for ViewEq {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        // A batch without the column (DataFusion evaluates a CASE's conditions over an empty
        // batch to learn whether its result can be NULL) is the inner expression's to answer.
        let Some(strings) = batch
            .columns()
            .get(self.column)
            .and_then(|c| c.as_string_view_opt())
        else {
            return self.inner.evaluate(batch);
        };
        let views = strings.views();
        let len = self.text.len() as u32;
        let values = match self.view {
            // Length and string, ignoring whatever follows a short string in its view.
            Some(target) => {
                let bits = 32 + 8 * self.text.len();
                let mask = if bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << bits) - 1
                };
                BooleanBuffer::collect_bool(views.len(), |i| views[i] & mask == target)
            }
            None => {
                // Length and the 4-byte prefix sit in the view's low 64 bits.
                let mut head = [0u8; 8];
                head[..4].copy_from_slice(&len.to_le_bytes());
                head[4..].copy_from_slice(&self.text[..4]);
                let head = u64::from_le_bytes(head);
                BooleanBuffer::collect_bool(views.len(), |i| {
                    views[i] as u64 == head && strings.value(i).as_bytes() == self.text
                })
            }
        };
        let values = if self.negated { !&values } else { values };
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            values,
            strings.nulls().cloned(),
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [inner] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("one child expected".to_string())
        })?;
        // A rewrite may have renumbered the column: read it again from the comparison.
        Ok(match Self::of(&inner) {
            Some(v) => Arc::new(v),
            None => inner,
        })
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }

    /// The comparison as written, for what reads a predicate's shape (pruning by statistics).
    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(Arc::clone(&self.inner)))
    }
}

/// `e` with every string equality against a literal over a `Utf8View` column compared by views.
/// Without a `schema` (a scan's predicate, whose columns the reader renumbers) the column's type
/// is checked on each batch instead. Expressions already evaluated once per value are left as
/// they are.
pub fn rewrite(
    e: &Arc<dyn PhysicalExpr>,
    schema: Option<&Schema>,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    rewrite_at(e, schema, false)
}

/// As [`rewrite`], for a filter's predicate: its conjuncts that are equalities stay as written,
/// since the plan reads them (`event_type = 'purchase'` makes `event_type` a constant that a
/// sort above may already have dropped from its keys).
pub fn rewrite_predicate(
    e: &Arc<dyn PhysicalExpr>,
    schema: Option<&Schema>,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    rewrite_at(e, schema, true)
}

fn rewrite_at(
    e: &Arc<dyn PhysicalExpr>,
    schema: Option<&Schema>,
    conjunct: bool,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    if e.downcast_ref::<ViewEq>().is_some()
        || e.downcast_ref::<super::per_value::OncePerValue>().is_some()
    {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    let op = e.downcast_ref::<BinaryExpr>().map(|b| *b.op());
    if conjunct && op == Some(Operator::Eq) {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    // Below an AND, still a conjunct; anywhere else, not.
    let conjunct = conjunct && op == Some(Operator::And);
    if let Some(v) = ViewEq::of(e)
        && schema.is_none_or(|s| {
            s.fields().get(v.column).map(|f| f.data_type()) == Some(&DataType::Utf8View)
        })
    {
        return Ok(Transformed::yes(Arc::new(v)));
    }
    super::per_value::map_children(e, |c| rewrite_at(c, schema, conjunct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewArray;
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    fn batch(values: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringViewArray::from(values))]).unwrap()
    }

    #[test]
    fn the_same_answers_as_the_comparison_as_written() {
        let rows = vec![
            Some("web"),
            None,
            Some(""),
            Some("webx"),
            Some("a string well over twelve bytes"),
            Some("a string well over twelve bytez"),
            Some("a st"),
            Some("web"),
        ];
        let b = batch(rows);
        let schema = b.schema();
        for text in [
            "web",
            "",
            "a string well over twelve bytes",
            "a st",
            "nothing",
        ] {
            for op in [Operator::Eq, Operator::NotEq] {
                let e = binary(
                    col("s", &schema).unwrap(),
                    op,
                    lit(ScalarValue::Utf8View(Some(text.to_string()))),
                    &schema,
                )
                .unwrap();
                let fast = rewrite(&e, Some(&schema)).unwrap();
                assert!(fast.transformed, "{e}");
                let want = e.evaluate(&b).unwrap().into_array(b.num_rows()).unwrap();
                let got = fast
                    .data
                    .evaluate(&b)
                    .unwrap()
                    .into_array(b.num_rows())
                    .unwrap();
                assert_eq!(got.as_ref(), want.as_ref(), "{e}");
            }
        }
    }

    #[test]
    fn a_filters_equalities_stay_as_written_where_the_plan_reads_them() {
        let b = batch(vec![Some("web")]);
        let schema = b.schema();
        let eq = |text: &str| {
            binary(
                col("s", &schema).unwrap(),
                Operator::Eq,
                lit(ScalarValue::Utf8View(Some(text.to_string()))),
                &schema,
            )
            .unwrap()
        };
        let and = binary(eq("a"), Operator::And, eq("b"), &schema).unwrap();
        assert!(!rewrite_predicate(&and, Some(&schema)).unwrap().transformed);
        let or = binary(eq("a"), Operator::Or, eq("b"), &schema).unwrap();
        let inside = binary(eq("c"), Operator::And, or, &schema).unwrap();
        let t = rewrite_predicate(&inside, Some(&schema)).unwrap();
        assert!(t.transformed);
        // The top conjunct kept its BinaryExpr; the OR's equalities became view comparisons.
        let top = t.data.downcast_ref::<BinaryExpr>().unwrap();
        assert!(top.left().downcast_ref::<BinaryExpr>().is_some());
        let or = top.right().downcast_ref::<BinaryExpr>().unwrap();
        assert!(or.left().downcast_ref::<ViewEq>().is_some());
    }
}
