//! Athena's map aggregates: `histogram(x)` (each value and how many rows have it),
//! `map_agg(k, v)` (a map from the rows' keys to their values; a key seen twice keeps its first
//! value) and `multimap_agg(k, v)` (each key and the array of all its values). Rows whose key is
//! NULL are left out, as on Athena.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Histogram,
    MapAgg,
    MultimapAgg,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MapAggregate {
    kind: Kind,
    signature: Signature,
}

/// The three aggregates, to register on a session.
pub fn aggregates() -> Vec<AggregateUDF> {
    [Kind::Histogram, Kind::MapAgg, Kind::MultimapAgg]
        .into_iter()
        .map(|kind| {
            AggregateUDF::new_from_impl(MapAggregate {
                kind,
                signature: Signature::any(
                    if kind == Kind::Histogram { 1 } else { 2 },
                    Volatility::Immutable,
                ),
            })
        })
        .collect()
}

/// `map(key, value)` as arrow types it.
fn map_type(key: &DataType, value: &DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", key.clone(), false),
                Field::new("value", value.clone(), true),
            ])),
            false,
        )),
        false,
    )
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t.clone(), true)))
}

impl MapAggregate {
    /// The type of one value of the result map.
    fn value_type(&self, args: &[DataType]) -> DataType {
        match self.kind {
            Kind::Histogram => DataType::Int64,
            Kind::MapAgg => args[1].clone(),
            Kind::MultimapAgg => list_of(&args[1]),
        }
    }
}

impl AggregateUDFImpl for MapAggregate {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Histogram => "histogram",
            Kind::MapAgg => "map_agg",
            Kind::MultimapAgg => "multimap_agg",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(map_type(&args[0], &self.value_type(args)))
    }

    fn accumulator(&self, a: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let DataType::Map(entries, _) = a.return_field.data_type() else {
            return Err(DataFusionError::Internal(format!(
                "{} returns a map",
                self.name()
            )));
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return Err(DataFusionError::Internal("map entries are a struct".into()));
        };
        Ok(Box::new(MapAcc {
            kind: self.kind,
            key_type: fields[0].data_type().clone(),
            value_type: fields[1].data_type().clone(),
            map_type: a.return_field.data_type().clone(),
            index: HashMap::new(),
            keys: Vec::new(),
            values: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let DataType::Map(entries, _) = args.return_field.data_type() else {
            return Err(DataFusionError::Internal("a map".into()));
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return Err(DataFusionError::Internal("map entries are a struct".into()));
        };
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_keys", args.name),
                list_of(fields[0].data_type()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_values", args.name),
                list_of(fields[1].data_type()),
                true,
            )),
        ])
    }
}

/// The entries so far, in the order their keys were first seen.
#[derive(Debug)]
struct MapAcc {
    kind: Kind,
    key_type: DataType,
    value_type: DataType,
    map_type: DataType,
    index: HashMap<ScalarValue, usize>,
    keys: Vec<ScalarValue>,
    /// Histogram: the count; map_agg: the value; multimap_agg: the values (a list).
    values: Vec<ScalarValue>,
}

impl MapAcc {
    fn slot(&mut self, key: ScalarValue, first: impl FnOnce() -> ScalarValue) -> (usize, bool) {
        if let Some(&i) = self.index.get(&key) {
            return (i, false);
        }
        let i = self.keys.len();
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        self.values.push(first());
        (i, true)
    }

    /// Adds one row (or, when merging, one partial entry) to the entries.
    fn add(&mut self, key: ScalarValue, value: ScalarValue, merging: bool) -> Result<()> {
        if key.is_null() {
            return Ok(());
        }
        match self.kind {
            Kind::Histogram => {
                let n = if merging {
                    match value {
                        ScalarValue::Int64(Some(n)) => n,
                        _ => 0,
                    }
                } else {
                    1
                };
                let (i, _) = self.slot(key, || ScalarValue::Int64(Some(0)));
                if let ScalarValue::Int64(Some(c)) = &mut self.values[i] {
                    *c += n;
                }
            }
            Kind::MapAgg => {
                self.slot(key, || value);
            }
            Kind::MultimapAgg => {
                let vt = match &self.value_type {
                    DataType::List(f) => f.data_type().clone(),
                    t => t.clone(),
                };
                let added: Vec<ScalarValue> = if merging {
                    match value {
                        ScalarValue::List(l) if !l.is_null(0) => {
                            let inner = l.value(0);
                            (0..inner.len())
                                .map(|j| ScalarValue::try_from_array(&inner, j))
                                .collect::<Result<_>>()?
                        }
                        _ => Vec::new(),
                    }
                } else {
                    vec![value]
                };
                let (i, _) = self.slot(key, || ScalarValue::new_null_list(vt.clone(), true, 0));
                let mut all: Vec<ScalarValue> = match &self.values[i] {
                    ScalarValue::List(l) if !l.is_null(0) && l.len() == 1 => {
                        let inner = l.value(0);
                        (0..inner.len())
                            .map(|j| ScalarValue::try_from_array(&inner, j))
                            .collect::<Result<_>>()?
                    }
                    _ => Vec::new(),
                };
                all.extend(added);
                self.values[i] = ScalarValue::List(ScalarValue::new_list(&all, &vt, true));
            }
        }
        Ok(())
    }

    fn list(items: &[ScalarValue], t: &DataType) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list(items, t, true))
    }
}

impl Accumulator for MapAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for i in 0..values[0].len() {
            let key = ScalarValue::try_from_array(&values[0], i)?;
            let value = match values.get(1) {
                Some(v) => ScalarValue::try_from_array(v, i)?,
                None => ScalarValue::Null,
            };
            self.add(key, value, false)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let keys = states[0].as_list::<i32>();
        let values = states[1].as_list::<i32>();
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let (k, v) = (keys.value(row), values.value(row));
            for j in 0..k.len() {
                self.add(
                    ScalarValue::try_from_array(&k, j)?,
                    ScalarValue::try_from_array(&v, j)?,
                    true,
                )?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            Self::list(&self.keys, &self.key_type),
            Self::list(&self.values, &self.value_type),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let DataType::Map(entries, sorted) = &self.map_type else {
            return Err(DataFusionError::Internal("a map".into()));
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return Err(DataFusionError::Internal("map entries are a struct".into()));
        };
        let keys = if self.keys.is_empty() {
            arrow::array::new_empty_array(&self.key_type)
        } else {
            ScalarValue::iter_to_array(self.keys.iter().cloned())?
        };
        let values = if self.values.is_empty() {
            arrow::array::new_empty_array(&self.value_type)
        } else {
            ScalarValue::iter_to_array(self.values.iter().cloned())?
        };
        let n = keys.len();
        let entries_array = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
        let map = MapArray::try_new(
            Arc::clone(entries),
            OffsetBuffer::new(vec![0i32, n as i32].into()),
            entries_array,
            None,
            *sorted,
        )?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .keys
                .iter()
                .chain(&self.values)
                .map(ScalarValue::size)
                .sum::<usize>()
            + self.index.capacity() * 64
    }
}
