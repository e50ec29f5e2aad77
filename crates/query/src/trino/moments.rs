//! `skewness(x)` and `kurtosis(x)`, from the central moments of `x` as Athena computes them:
//! with `n` values, their mean and `M2`, `M3`, `M4` (the sums of the 2nd to 4th powers of the
//! deviations from the mean):
//!
//! - `skewness = sqrt(n) * M3 / M2^1.5`, NULL below 3 values;
//! - `kurtosis = (n-1) n (n+1) / ((n-2)(n-3)) * M4 / M2² - 3 (n-1)² / ((n-2)(n-3))`, the excess
//!   kurtosis, NULL below 4 values.
//!
//! NULL inputs are skipped; a constant column divides zero by zero, which is NaN, as in Athena.
//! The moments are kept with the one-pass update per value and merged across partial states
//! with the pairwise formulas, so the result does not depend on how rows were split.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(Moment::new("skewness", Kind::Skewness)),
        AggregateUDF::new_from_impl(Moment::new("kurtosis", Kind::Kurtosis)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Skewness,
    Kurtosis,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Moment {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl Moment {
    fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Moment {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let f = |part: &str, t: DataType| {
            Arc::new(Field::new(format_state_name(args.name, part), t, true))
        };
        Ok(vec![
            f("n", DataType::Int64),
            f("mean", DataType::Float64),
            f("m2", DataType::Float64),
            f("m3", DataType::Float64),
            f("m4", DataType::Float64),
        ])
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Moments {
            kind: self.kind,
            ..Moments::default()
        }))
    }
}

/// The count, mean and sums of powers of deviations of the values seen.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Moments {
    kind: Kind,
    n: i64,
    mean: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            kind: Kind::Skewness,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            m3: 0.0,
            m4: 0.0,
        }
    }
}

impl Moments {
    fn push(&mut self, x: f64) {
        let n1 = self.n as f64;
        self.n += 1;
        let n = self.n as f64;
        let delta = x - self.mean;
        let dn = delta / n;
        let dn2 = dn * dn;
        let term = delta * dn * n1;
        self.mean += dn;
        self.m4 += term * dn2 * (n * n - 3.0 * n + 3.0) + 6.0 * dn2 * self.m2 - 4.0 * dn * self.m3;
        self.m3 += term * dn * (n - 2.0) - 3.0 * dn * self.m2;
        self.m2 += term;
    }

    fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = Moments {
                kind: self.kind,
                ..*o
            };
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let d = o.mean - self.mean;
        let (d2, d3, d4) = (d * d, d * d * d, d * d * d * d);
        let m2 = self.m2 + o.m2 + d2 * na * nb / n;
        let m3 = self.m3
            + o.m3
            + d3 * na * nb * (na - nb) / (n * n)
            + 3.0 * d * (na * o.m2 - nb * self.m2) / n;
        let m4 = self.m4
            + o.m4
            + d4 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * d2 * (na * na * o.m2 + nb * nb * self.m2) / (n * n)
            + 4.0 * d * (na * o.m3 - nb * self.m3) / n;
        self.mean += d * nb / n;
        self.n += o.n;
        (self.m2, self.m3, self.m4) = (m2, m3, m4);
    }

    fn value(&self) -> Option<f64> {
        let n = self.n as f64;
        match self.kind {
            Kind::Skewness if self.n >= 3 => Some(n.sqrt() * self.m3 / self.m2.powf(1.5)),
            Kind::Kurtosis if self.n >= 4 => {
                let k = (n - 2.0) * (n - 3.0);
                Some(
                    (n - 1.0) * n * (n + 1.0) / k * self.m4 / (self.m2 * self.m2)
                        - 3.0 * (n - 1.0) * (n - 1.0) / k,
                )
            }
            _ => None,
        }
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let xs = values[0].as_primitive::<Float64Type>();
        if xs.null_count() == 0 {
            xs.values().iter().for_each(|&x| self.push(x));
        } else {
            xs.iter().flatten().for_each(|x| self.push(x));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let n = states[0].as_primitive::<Int64Type>();
        let [mean, m2, m3, m4] = [1, 2, 3, 4].map(|i| states[i].as_primitive::<Float64Type>());
        for i in 0..n.len() {
            if n.is_null(i) {
                continue;
            }
            self.merge(&Moments {
                kind: self.kind,
                n: n.value(i),
                mean: mean.value(i),
                m2: m2.value(i),
                m3: m3.value(i),
                m4: m4.value(i),
            });
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.n)),
            ScalarValue::Float64(Some(self.mean)),
            ScalarValue::Float64(Some(self.m2)),
            ScalarValue::Float64(Some(self.m3)),
            ScalarValue::Float64(Some(self.m4)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.value()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: Kind, xs: &[f64]) -> Moments {
        let mut m = Moments {
            kind,
            ..Moments::default()
        };
        xs.iter().for_each(|&x| m.push(x));
        m
    }

    /// The definitions, summed directly.
    fn direct(kind: Kind, xs: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let m = |k: i32| xs.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
        match kind {
            Kind::Skewness => n.sqrt() * m(3) / m(2).powf(1.5),
            Kind::Kurtosis => {
                let k = (n - 2.0) * (n - 3.0);
                (n - 1.0) * n * (n + 1.0) / k * m(4) / (m(2) * m(2))
                    - 3.0 * (n - 1.0) * (n - 1.0) / k
            }
        }
    }

    #[test]
    fn one_pass_and_merged_states_agree_with_the_definitions() {
        let xs: Vec<f64> = (0..200)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 + (i % 7) as f64)
            .collect();
        for kind in [Kind::Skewness, Kind::Kurtosis] {
            let want = direct(kind, &xs);
            let whole = of(kind, &xs).value().unwrap();
            assert!((whole - want).abs() < 1e-9, "{kind:?}: {whole} vs {want}");
            for cut in [1, 3, 50, 199] {
                let mut a = of(kind, &xs[..cut]);
                a.merge(&of(kind, &xs[cut..]));
                let merged = a.value().unwrap();
                assert!(
                    (merged - want).abs() < 1e-9,
                    "{kind:?} cut {cut}: {merged} vs {want}"
                );
            }
        }
    }

    #[test]
    fn too_few_values_give_null_and_a_constant_gives_nan() {
        assert_eq!(of(Kind::Skewness, &[1.0, 2.0]).value(), None);
        assert_eq!(of(Kind::Kurtosis, &[1.0, 2.0, 3.0]).value(), None);
        assert!(
            of(Kind::Skewness, &[5.0, 5.0, 5.0])
                .value()
                .unwrap()
                .is_nan()
        );
        assert!(of(Kind::Kurtosis, &[5.0; 4]).value().unwrap().is_nan());
        let mut empty = of(Kind::Skewness, &[]);
        empty.merge(&of(Kind::Skewness, &[1.0, 2.0, 4.0]));
        assert_eq!(empty.value(), of(Kind::Skewness, &[1.0, 2.0, 4.0]).value());
    }
}
