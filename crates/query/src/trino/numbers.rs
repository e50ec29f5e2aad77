//! Athena's arithmetic and bitwise functions that DataFusion lacks or means otherwise:
//!
//! - `mod(n, m)`: the remainder with the dividend's sign (`mod(-7, 3)` is -1); integers give an
//!   integer and a zero divisor is an error, doubles a double (NaN for a zero divisor).
//! - `sign(x)`: -1, 0 or 1 in `x`'s type (NaN stays NaN).
//! - `e()`, `infinity()`, `nan()`; `is_nan(x)`, `is_finite(x)`, `is_infinite(x)`.
//! - `bitwise_and`, `bitwise_or`, `bitwise_xor`, `bitwise_not` on bigint two's complement;
//!   `bitwise_left_shift`, `bitwise_right_shift` (zeros shifted in) and
//!   `bitwise_right_shift_arithmetic` (the sign shifted in), a shift of 64 or more giving 0
//!   (or -1 for a negative arithmetic shift); `bit_count(x, bits)`: the 1 bits of `x` as a
//!   `bits`-bit two's complement number.
//! - `from_base(text, radix)`, `to_base(x, radix)`: radix 2 to 36, lower-case digits.
//! - `width_bucket(x, bound1, bound2, n)`: the bucket of `x` among `n` equal ones between the
//!   bounds (0 below, `n + 1` at or above the upper one; descending bounds count down).
//! - `wilson_interval_lower(successes, trials, z)`, `wilson_interval_upper(…)`: the Wilson score
//!   interval of a Bernoulli process at the z-score `z`.
//! - `normal_cdf(mean, sd, v)`: P(N < v) of the normal distribution; `inverse_normal_cdf(mean,
//!   sd, p)`: its inverse; `beta_cdf(a, b, v)` and `inverse_beta_cdf(a, b, p)`: the same for
//!   the beta distribution.
//! - `format_number(x)`: `123K`, `1.23M` (Athena's unit symbols and digits).
//! - `great_circle_distance(lat1, lon1, lat2, lon2)`: kilometres on a sphere of Athena's
//!   radius, 6371.01 km.
//! - `random()` (`rand()`): a double in [0, 1); `random(n)`: an integer in [0, n), of `n`'s type;
//!   `random(m, n)`: one in [m, n). Each row draws its own, literal arguments or not.

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, Int64Builder, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::DataFusionError;
use datafusion::logical_expr::Volatility;

use super::fun::{Call, Fun, Result, arc, arity, ints, text};

fn floats(a: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(a, &DataType::Float64)?
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64")
        .clone())
}

fn numeric(name: &str, t: &DataType) -> Result<()> {
    if t.is_numeric() || t == &DataType::Null {
        Ok(())
    } else {
        Err(DataFusionError::Plan(format!(
            "{name} takes numbers, not {}",
            super::trino_type(t)
        )))
    }
}

/// Integer when every argument is an integer (or NULL), double otherwise.
fn int_or_double(name: &str, types: &[DataType]) -> Result<DataType> {
    for t in types {
        numeric(name, t)?;
    }
    Ok(
        if types.iter().all(|t| t.is_integer() || t == &DataType::Null) {
            DataType::Int64
        } else {
            DataType::Float64
        },
    )
}

fn binary_int(
    call: &Call,
    a: &[ArrayRef],
    f: impl Fn(i64, i64) -> std::result::Result<i64, String>,
) -> Result<ArrayRef> {
    let (x, y) = (ints(&a[0])?, ints(&a[1])?);
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        out.push(if x.is_null(i) || y.is_null(i) {
            None
        } else {
            match f(x.value(i), y.value(i)) {
                Ok(v) => Some(v),
                Err(e) => call.row_err(e)?,
            }
        });
    }
    Ok(arc(Int64Array::from(out)))
}

fn modulo(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    if call.ret == &DataType::Int64 {
        return binary_int(call, a, |x, y| {
            if y == 0 {
                Err("division by zero".to_string())
            } else {
                Ok(x.wrapping_rem(y))
            }
        });
    }
    let (x, y) = (floats(&a[0])?, floats(&a[1])?);
    Ok(arc(arrow::compute::binary::<
        _,
        _,
        _,
        arrow::datatypes::Float64Type,
    >(&x, &y, |x, y| x % y)?))
}

fn sign(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    if call.ret == &DataType::Float64 {
        let x = floats(&a[0])?;
        return Ok(arc(x.unary::<_, arrow::datatypes::Float64Type>(|v| {
            if v.is_nan() || v == 0.0 {
                v
            } else {
                v.signum()
            }
        })));
    }
    let x = ints(&a[0])?;
    Ok(arc(x.unary::<_, arrow::datatypes::Int64Type>(i64::signum)))
}

fn float_test(a: &[ArrayRef], f: fn(f64) -> bool) -> Result<ArrayRef> {
    let x = floats(&a[0])?;
    Ok(arc(x.iter().map(|v| v.map(f)).collect::<BooleanArray>()))
}

fn constant(a: &[ArrayRef], v: f64) -> Result<ArrayRef> {
    let n = a.first().map_or(1, |a| a.len());
    Ok(arc(Float64Array::from(vec![v; n])))
}

fn shift(call: &Call, a: &[ArrayRef], f: fn(i64, u32) -> i64) -> Result<ArrayRef> {
    binary_int(call, a, |x, s| {
        if s < 0 {
            Err(format!("shift must not be negative, got {s}"))
        } else {
            Ok(f(x, s.min(64) as u32))
        }
    })
}

fn bit_count(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    binary_int(call, a, |x, bits| {
        if !(2..=64).contains(&bits) {
            return Err(format!(
                "bits specified in bit_count must be between 2 and 64, got {bits}"
            ));
        }
        let low = if bits == 64 {
            x
        } else {
            x & ((1_i64 << bits) - 1)
        };
        if bits < 64 {
            let (min, max) = (-(1_i64 << (bits - 1)), (1_i64 << (bits - 1)) - 1);
            if x < min || x > max {
                return Err(format!(
                    "number must be representable with the bits specified. {x} cannot be represented with {bits} bits"
                ));
            }
        }
        Ok(i64::from(low.count_ones()))
    })
}

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn radix(call: &Call, r: i64) -> Result<Option<u32>> {
    if (2..=36).contains(&r) {
        Ok(Some(r as u32))
    } else {
        call.row_err(format!("radix must be between 2 and 36, got {r}"))
    }
}

fn from_base(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (s, r) = (text(&a[0])?, ints(&a[1])?);
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || r.is_null(i) {
            out.push(None);
            continue;
        }
        let Some(base) = radix(call, r.value(i))? else {
            out.push(None);
            continue;
        };
        out.push(match i64::from_str_radix(s.value(i), base) {
            Ok(v) => Some(v),
            Err(_) => call.row_err(format!("not a valid base-{base} number: {}", s.value(i)))?,
        });
    }
    Ok(arc(Int64Array::from(out)))
}

fn to_base(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (x, r) = (ints(&a[0])?, ints(&a[1])?);
    let mut out: Vec<Option<String>> = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || r.is_null(i) {
            out.push(None);
            continue;
        }
        let Some(base) = radix(call, r.value(i))? else {
            out.push(None);
            continue;
        };
        let v = x.value(i);
        let mut n = v.unsigned_abs();
        let mut digits = Vec::new();
        loop {
            digits.push(DIGITS[(n % u64::from(base)) as usize]);
            n /= u64::from(base);
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            digits.push(b'-');
        }
        digits.reverse();
        out.push(Some(String::from_utf8(digits).expect("ASCII digits")));
    }
    Ok(arc(StringArray::from(out)))
}

/// The rows of `n` float columns where none is NULL, through `f`, which may refuse a row.
fn floats_n(
    call: &Call,
    a: &[ArrayRef],
    f: impl Fn(&[f64]) -> std::result::Result<f64, String>,
) -> Result<ArrayRef> {
    let cols = a.iter().map(floats).collect::<Result<Vec<_>>>()?;
    let rows = cols.first().map_or(0, Array::len);
    let mut args = vec![0.0; cols.len()];
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        if cols.iter().any(|c| c.is_null(i)) {
            out.push(None);
            continue;
        }
        for (v, c) in args.iter_mut().zip(&cols) {
            *v = c.value(i);
        }
        out.push(match f(&args) {
            Ok(v) => Some(v),
            Err(e) => call.row_err(e)?,
        });
    }
    Ok(arc(Float64Array::from(out)))
}

fn width_bucket(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (x, b1, b2, n) = (floats(&a[0])?, floats(&a[1])?, floats(&a[2])?, ints(&a[3])?);
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || b1.is_null(i) || b2.is_null(i) || n.is_null(i) {
            out.push(None);
            continue;
        }
        let (x, b1, b2, n) = (x.value(i), b1.value(i), b2.value(i), n.value(i));
        let refused = if n <= 0 {
            Some("bucketCount must be greater than 0")
        } else if x.is_nan() {
            Some("operand must not be NaN")
        } else if !b1.is_finite() {
            Some("first bound must be finite")
        } else if !b2.is_finite() {
            Some("second bound must be finite")
        } else if b1 == b2 {
            Some("bounds cannot equal each other")
        } else {
            None
        };
        if let Some(e) = refused {
            out.push(call.row_err(e)?);
            continue;
        }
        let (lower, upper) = (b1.min(b2), b1.max(b2));
        let bucket = if x < lower {
            0
        } else if x >= upper {
            match n.checked_add(1) {
                Some(b) => b,
                None => {
                    out.push(call.row_err(format!("Bucket for value {x} is out of range"))?);
                    continue;
                }
            }
        } else {
            (n as f64 * (x - lower) / (upper - lower) + 1.0) as i64
        };
        out.push(Some(if b1 > b2 { n - bucket + 1 } else { bucket }));
    }
    Ok(arc(Int64Array::from(out)))
}

fn wilson(args: &[f64], side: f64) -> std::result::Result<f64, String> {
    let (successes, trials, z) = (args[0], args[1], args[2]);
    if successes < 0.0 {
        return Err("number of successes must not be negative".into());
    }
    if trials <= 0.0 {
        return Err("number of trials must be positive".into());
    }
    if successes > trials {
        return Err("number of successes must not be larger than number of trials".into());
    }
    if z < 0.0 {
        return Err("z-score must not be negative".into());
    }
    let (p, n) = (successes / trials, trials);
    Ok(
        (p + z * z / (2.0 * n) + side * z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt())
            / (1.0 + z * z / n),
    )
}

/// P(N < x) of the standard normal distribution, accurate in both tails.
fn std_normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The `x` with P(N < x) = `p` of the standard normal distribution, 0 < p < 1: a rational
/// first guess (Abramowitz and Stegun 26.2.23, within 5e-4), then Halley steps on the exact CDF.
fn std_normal_quantile(p: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    let q = p.min(1.0 - p);
    let t = (-2.0 * q.ln()).sqrt();
    let guess = t
        - (2.515517 + 0.802853 * t + 0.010328 * t * t)
            / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    let mut x = if p < 0.5 { -guess } else { guess };
    for _ in 0..4 {
        let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        if density == 0.0 {
            break;
        }
        let e = (std_normal_cdf(x) - p) / density;
        x -= e / (1.0 + 0.5 * x * e);
    }
    x
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), on the side of `x` where it converges fast.
fn regularized_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front =
        libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - regularized_beta(b, a, 1.0 - x);
    }
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        for step in [even, odd] {
            d = 1.0 + step * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + step / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    ln_front.exp() * h / a
}

fn beta_shape(a: f64, b: f64) -> std::result::Result<(), String> {
    if a > 0.0 && b > 0.0 {
        Ok(())
    } else {
        Err(format!("a, b must be > 0, not {a} and {b}"))
    }
}

/// The `x` with I_x(a, b) = `p`, by bisection to the last representable step.
fn beta_quantile(a: f64, b: f64, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if regularized_beta(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// `v` with `decimals` digits after the point, a half rounded away from zero (on the exact
/// binary value), without trailing zeros.
fn half_up(v: f64, decimals: usize) -> String {
    // Exact: a double below 1e16 has at most 52 binary digits after its point, and as many
    // decimal ones.
    let exact = format!("{:.60}", v.abs());
    let (int, frac) = exact.split_once('.').unwrap_or((&exact, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(decimals)).collect();
    if frac.as_bytes().get(decimals).is_some_and(|&d| d >= b'5') {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - decimals;
    let mut out = String::from_utf8(digits[..split].to_vec()).expect("digits");
    let frac = String::from_utf8(digits[split..].to_vec()).expect("digits");
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if v < 0.0 && out.bytes().any(|d| d != b'0' && d != b'.') {
        out.insert(0, '-');
    }
    out
}

/// `format_number(x)`: `x` (a double truncated to an integer) in thousands (K), millions (M),
/// billions (B), trillions (T) or quadrillions (Q), with two decimals below 10, one below 100
/// (a negative number always keeps two, as in Athena).
fn format_number(x: i64) -> String {
    const UNITS: [&str; 6] = ["", "K", "M", "B", "T", "Q"];
    let mut v = x as f64;
    let mut unit = 0;
    while v.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let decimals = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{}{}", half_up(v, decimals), UNITS[unit])
}

/// Athena's mean radius of the Earth, in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.01;

/// The great-circle distance between two points given in degrees, in kilometres.
fn great_circle_distance(v: &[f64]) -> std::result::Result<f64, String> {
    let (lat1, lon1, lat2, lon2) = (v[0], v[1], v[2], v[3]);
    for lat in [lat1, lat2] {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!("Latitude must be between -90 and 90, not {lat}"));
        }
    }
    for lon in [lon1, lon2] {
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!("Longitude must be between -180 and 180, not {lon}"));
        }
    }
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = lon1.to_radians() - lon2.to_radians();
    let (s1, c1, s2, c2) = (p1.sin(), p1.cos(), p2.sin(), p2.cos());
    // Vincenty's formula on a sphere: well conditioned for near and antipodal points alike.
    let t1 = c2 * dl.sin();
    let t2 = c1 * s2 - s1 * c2 * dl.cos();
    let t3 = s1 * s2 + c1 * c2 * dl.cos();
    Ok((t1 * t1 + t2 * t2).sqrt().atan2(t3) * EARTH_RADIUS_KM)
}

/// `random()`, `random(n)` or `random(m, n)` (see the module's documentation).
fn random(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use rand::Rng;
    let mut rng = rand::rng();
    if a.is_empty() {
        return Ok(arc(Float64Array::from_iter_values(
            (0..call.rows).map(|_| rng.random::<f64>()),
        )));
    }
    let low = if a.len() == 2 {
        Some(ints(&a[0])?)
    } else {
        None
    };
    let high = ints(&a[a.len() - 1])?;
    let mut out = Int64Builder::with_capacity(high.len());
    for i in 0..high.len() {
        if high.is_null(i) || low.as_ref().is_some_and(|l| l.is_null(i)) {
            out.append_null();
            continue;
        }
        let h = high.value(i);
        let l = low.as_ref().map_or(0, |l| l.value(i));
        if l >= h {
            call.row_err::<()>(match &low {
                None => format!("the bound must be positive, not {h}"),
                Some(_) => format!("the stop value ({h}) must be greater than the start ({l})"),
            })?;
            out.append_null();
            continue;
        }
        out.append_value(rng.random_range(l..h));
    }
    Ok(arc(out.finish()))
}

/// The type `random(…)` answers in: a double without arguments, else its integers' type.
fn random_type(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[0, 1, 2])?;
    if t.is_empty() {
        return Ok(DataType::Float64);
    }
    if let Some(x) = t.iter().find(|x| !x.is_integer() && **x != DataType::Null) {
        return Err(DataFusionError::Plan(format!(
            "{n} takes integers, not {}",
            super::conditional::trino_type(x)
        )));
    }
    Ok(match t {
        [x] | [x, _] if x.is_integer() && t.iter().all(|y| y == x) => x.clone(),
        _ => DataType::Int64,
    })
}

pub fn functions() -> Vec<Fun> {
    fn two_ints(n: &str, t: &[DataType]) -> Result<DataType> {
        arity(n, t, &[2])?;
        for x in t {
            numeric(n, x)?;
        }
        Ok(DataType::Int64)
    }
    fn one_double_test(n: &str, t: &[DataType]) -> Result<DataType> {
        arity(n, t, &[1])?;
        numeric(n, &t[0])?;
        Ok(DataType::Boolean)
    }
    fn doubles(n: &str, t: &[DataType], count: usize) -> Result<DataType> {
        arity(n, t, &[count])?;
        for x in t {
            numeric(n, x)?;
        }
        Ok(DataType::Float64)
    }
    vec![
        Fun::new("random", random_type, random)
            .alias("rand")
            .volatile_or_nullary(),
        Fun::new(
            "width_bucket",
            |n, t| {
                arity(n, t, &[4])?;
                for x in t {
                    numeric(n, x)?;
                }
                Ok(DataType::Int64)
            },
            width_bucket,
        ),
        Fun::new(
            "wilson_interval_lower",
            |n, t| doubles(n, t, 3),
            |c, a| floats_n(c, a, |v| wilson(v, -1.0)),
        ),
        Fun::new(
            "wilson_interval_upper",
            |n, t| doubles(n, t, 3),
            |c, a| floats_n(c, a, |v| wilson(v, 1.0)),
        ),
        Fun::new(
            "normal_cdf",
            |n, t| doubles(n, t, 3),
            |c, a| {
                floats_n(c, a, |v| {
                    let (mean, sd, x) = (v[0], v[1], v[2]);
                    if sd > 0.0 {
                        Ok(0.5 * (1.0 + libm::erf((x - mean) / (sd * std::f64::consts::SQRT_2))))
                    } else {
                        Err("standardDeviation must be > 0".into())
                    }
                })
            },
        ),
        Fun::new(
            "inverse_normal_cdf",
            |n, t| doubles(n, t, 3),
            |c, a| {
                floats_n(c, a, |v| {
                    let (mean, sd, p) = (v[0], v[1], v[2]);
                    if !(p > 0.0 && p < 1.0) {
                        Err(format!("p must be 0 > p > 1, not {p}"))
                    } else if sd.is_nan() || sd <= 0.0 {
                        Err("sd must be > 0".into())
                    } else {
                        Ok(mean + sd * std_normal_quantile(p))
                    }
                })
            },
        ),
        Fun::new(
            "beta_cdf",
            |n, t| doubles(n, t, 3),
            |c, a| {
                floats_n(c, a, |v| {
                    let (a, b, x) = (v[0], v[1], v[2]);
                    beta_shape(a, b)?;
                    if !(0.0..=1.0).contains(&x) {
                        return Err(format!("value must be 0 >= v >= 1, not {x}"));
                    }
                    Ok(regularized_beta(a, b, x))
                })
            },
        ),
        Fun::new(
            "inverse_beta_cdf",
            |n, t| doubles(n, t, 3),
            |c, a| {
                floats_n(c, a, |v| {
                    let (a, b, p) = (v[0], v[1], v[2]);
                    beta_shape(a, b)?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(format!("p must be 0 >= p >= 1, not {p}"));
                    }
                    Ok(beta_quantile(a, b, p))
                })
            },
        ),
        Fun::new(
            "format_number",
            |n, t| {
                arity(n, t, &[1])?;
                numeric(n, &t[0])?;
                Ok(DataType::Utf8)
            },
            |_, a| {
                let whole = if a[0].data_type().is_floating() || a[0].data_type().is_decimal() {
                    // Athena truncates a double toward zero first (NaN is 0).
                    let f = floats(&a[0])?;
                    f.iter()
                        .map(|v| v.map(|v| v as i64))
                        .collect::<Int64Array>()
                } else {
                    ints(&a[0])?
                };
                Ok(arc(StringArray::from_iter(
                    whole.iter().map(|v| v.map(format_number)),
                )))
            },
        ),
        Fun::new(
            "great_circle_distance",
            |n, t| doubles(n, t, 4),
            |c, a| floats_n(c, a, great_circle_distance),
        ),
        Fun::new(
            "mod",
            |n, t| {
                arity(n, t, &[2])?;
                int_or_double(n, t)
            },
            modulo,
        ),
        Fun::new(
            "sign",
            |n, t| {
                arity(n, t, &[1])?;
                int_or_double(n, t)
            },
            sign,
        ),
        Fun::new(
            "e",
            |_, _| Ok(DataType::Float64),
            |_, a| constant(a, std::f64::consts::E),
        )
        .nullary(Volatility::Immutable),
        Fun::new(
            "infinity",
            |_, _| Ok(DataType::Float64),
            |_, a| constant(a, f64::INFINITY),
        )
        .nullary(Volatility::Immutable),
        Fun::new(
            "nan",
            |_, _| Ok(DataType::Float64),
            |_, a| constant(a, f64::NAN),
        )
        .nullary(Volatility::Immutable),
        Fun::new("is_nan", one_double_test, |_, a| float_test(a, f64::is_nan)),
        Fun::new("is_finite", one_double_test, |_, a| {
            float_test(a, f64::is_finite)
        }),
        Fun::new("is_infinite", one_double_test, |_, a| {
            float_test(a, f64::is_infinite)
        }),
        Fun::new("bitwise_and", two_ints, |c, a| {
            binary_int(c, a, |x, y| Ok(x & y))
        }),
        Fun::new("bitwise_or", two_ints, |c, a| {
            binary_int(c, a, |x, y| Ok(x | y))
        }),
        Fun::new("bitwise_xor", two_ints, |c, a| {
            binary_int(c, a, |x, y| Ok(x ^ y))
        }),
        Fun::new(
            "bitwise_not",
            |n, t| {
                arity(n, t, &[1])?;
                numeric(n, &t[0])?;
                Ok(DataType::Int64)
            },
            |_, a| {
                Ok(arc(
                    ints(&a[0])?.unary::<_, arrow::datatypes::Int64Type>(|x| !x)
                ))
            },
        ),
        Fun::new("bitwise_left_shift", two_ints, |c, a| {
            shift(c, a, |x, s| if s >= 64 { 0 } else { x << s })
        }),
        Fun::new("bitwise_right_shift", two_ints, |c, a| {
            shift(
                c,
                a,
                |x, s| if s >= 64 { 0 } else { ((x as u64) >> s) as i64 },
            )
        }),
        Fun::new("bitwise_right_shift_arithmetic", two_ints, |c, a| {
            shift(c, a, |x, s| x >> s.min(63))
        }),
        Fun::new("bit_count", two_ints, bit_count),
        Fun::new(
            "from_base",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Int64)
            },
            from_base,
        ),
        Fun::new(
            "to_base",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Utf8)
            },
            to_base,
        ),
    ]
}

#[cfg(test)]
mod tests {
    /// `random` and `shuffle` answer each row afresh, though their arguments are literals, which
    /// other functions answer once for a whole batch.
    #[tokio::test]
    async fn random_and_shuffle_draw_for_each_row() {
        let rows = crate::trino::csv_rows(&format!(
            "SELECT count(DISTINCT random(1000000000)), count(DISTINCT random()), \
             min(random(5, 8)), max(random(5, 8)), \
             count(DISTINCT array_join(shuffle(ARRAY[1, 2, 3, 4, 5]), ',')) FROM {}",
            crate::trino::MANY_ROWS
        ))
        .await
        .unwrap();
        let v: Vec<u64> = rows[0].split(',').map(|x| x.parse().unwrap()).collect();
        // 200,000 rows: a few draws of 10^9 values collide, none of the doubles do.
        assert!(v[0] > 199_000, "{rows:?}");
        assert_eq!(v[1], 200_000, "{rows:?}");
        assert_eq!((v[2], v[3]), (5, 7), "{rows:?}");
        // All 120 orders of five elements turn up.
        assert_eq!(v[4], 120, "{rows:?}");
    }
}
