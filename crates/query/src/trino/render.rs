//! Values as Athena prints them: `2001-08-22 03:04:05.321`, `[1, 2]`, `{a=1}`, `1.0E10`. Used
//! by `format('%s', …)` and by the conformance suite to compare with Athena's documented results.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;

/// A double as Java's `Double.toString` writes it.
pub fn double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = x.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:e}");
        let (m, e) = s.split_once('e').expect("exponent");
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

/// Whether Athena prints values of this type other than arrow's CSV writer does: nested
/// values, intervals, timestamps (`2026-11-20 10:00:00.000`, not ISO 8601), doubles
/// (`1.0E10`) and varbinary (`ab cd`).
pub fn differs_from_arrow(t: &DataType) -> bool {
    t.is_nested()
        || matches!(
            t,
            DataType::Duration(_)
                | DataType::Interval(_)
                | DataType::Timestamp(..)
                | DataType::Float64
                | DataType::Float32
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// A column as Athena prints its values; nulls stay null.
pub fn column(a: &ArrayRef) -> arrow::array::StringArray {
    use arrow::array::StringBuilder;
    use std::fmt::Write as _;
    let mut out = StringBuilder::with_capacity(a.len(), a.len() * 16);
    match a.data_type() {
        DataType::Float64 => {
            for x in a.as_primitive::<arrow::datatypes::Float64Type>() {
                out.append_option(x.map(double));
            }
        }
        // The table's timestamps, the values most results hold, and zone-less ones: without a
        // scalar per value. The table's are `timestamp(3)`: milliseconds, rounded down.
        DataType::Timestamp(u, tz) if tz.is_none() || is_table_timestamp(u, tz.as_deref()) => {
            let (unit, digits) = match (tz, u) {
                (Some(_), _) | (None, TimeUnit::Millisecond) => (TimeUnit::Millisecond, 3),
                (None, TimeUnit::Second) => (TimeUnit::Second, 0),
                (None, TimeUnit::Microsecond) => (TimeUnit::Microsecond, 6),
                (None, TimeUnit::Nanosecond) => (TimeUnit::Nanosecond, 9),
            };
            let table = tz.is_some();
            let v = arrow::compute::cast(a, &DataType::Int64).expect("a timestamp as int64");
            for x in v.as_primitive::<arrow::datatypes::Int64Type>() {
                let wall = x.and_then(|x| {
                    let x = if table { x.div_euclid(1_000) } else { x };
                    super::datetime::from_epoch(x, unit)
                });
                match wall {
                    Some(t) => {
                        wall_text(&mut out, t, digits);
                        out.append_value("");
                    }
                    None => out.append_option(x.map(|x| x.to_string())),
                }
            }
        }
        DataType::Date32 => {
            use chrono::Datelike;
            for (i, d) in a
                .as_primitive::<arrow::datatypes::Date32Type>()
                .iter()
                .enumerate()
            {
                let day = d.and_then(|d| chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163));
                match day {
                    Some(d) if (0..=9999).contains(&d.year()) => {
                        let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
                        out.append_value("");
                    }
                    _ => out.append_option(d.map(|_| cell(a, i))),
                }
            }
        }
        _ => {
            for i in 0..a.len() {
                out.append_option(a.is_valid(i).then(|| cell(a, i)));
            }
        }
    }
    out.finish()
}

/// A wall time as Athena prints it (`2001-08-22 03:04:05.321`), with `digits` places of a
/// second (0, 3, 6 or 9).
fn wall_text(out: &mut impl std::fmt::Write, t: chrono::NaiveDateTime, digits: u32) {
    use chrono::{Datelike, Timelike};
    let y = t.year();
    if !(0..=9999).contains(&y) {
        let fraction = match digits {
            0 => "",
            3 => "%.3f",
            6 => "%.6f",
            _ => "%.9f",
        };
        let _ = write!(out, "{}", t.format(&format!("%Y-%m-%d %H:%M:%S{fraction}")));
        return;
    }
    let _ = write!(
        out,
        "{y:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let n = t.nanosecond() % 1_000_000_000;
    let _ = match digits {
        0 => Ok(()),
        3 => write!(out, ".{:03}", n / 1_000_000),
        6 => write!(out, ".{:06}", n / 1_000),
        _ => write!(out, ".{n:09}"),
    };
}

/// A real as Java's `Float.toString` writes it: the shortest digits that read back as the
/// same real (`0.1`, not the double's `0.10000000149011612`).
fn real(x: f32) -> String {
    if !x.is_finite() {
        return double(f64::from(x));
    }
    // The shortest decimal of the real, read as a double, prints the same digits.
    double(format!("{x}").parse::<f64>().unwrap_or(f64::from(x)))
}

/// One value of a column.
pub fn cell(a: &ArrayRef, i: usize) -> String {
    if a.is_null(i) {
        return "NULL".into();
    }
    match a.data_type() {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let l = arrow::compute::cast(
                a,
                &DataType::List(match a.data_type() {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        f.clone()
                    }
                    _ => unreachable!(),
                }),
            )
            .expect("list cast");
            let v = l.as_list::<i32>().value(i);
            let parts: Vec<String> = (0..v.len()).map(|j| cell(&v, j)).collect();
            format!("[{}]", parts.join(", "))
        }
        DataType::Map(..) => {
            let m = a.as_map();
            let e = m.value(i);
            let (k, v) = (e.column(0), e.column(1));
            let parts: Vec<String> = (0..e.len())
                .map(|j| format!("{}={}", cell(k, j), cell(v, j)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Struct(fs) => {
            let s = a.as_struct();
            let parts: Vec<String> = fs
                .iter()
                .enumerate()
                .map(|(j, f)| format!("{}={}", f.name(), cell(s.column(j), i)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => match ScalarValue::try_from_array(a, i) {
            Ok(v) => value(&v),
            Err(e) => format!("<{e}>"),
        },
    }
}

/// One value.
pub fn value(v: &ScalarValue) -> String {
    use ScalarValue as S;
    if v.is_null() {
        return "NULL".into();
    }
    match v {
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) => s.clone(),
        S::Float64(Some(x)) => double(*x),
        S::Float32(Some(x)) => real(*x),
        S::Binary(Some(b)) | S::LargeBinary(Some(b)) | S::BinaryView(Some(b)) => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        S::TimestampSecond(Some(x), tz) => timestamp(*x, TimeUnit::Second, tz.as_deref()),
        S::TimestampMillisecond(Some(x), tz) => timestamp(*x, TimeUnit::Millisecond, tz.as_deref()),
        S::TimestampMicrosecond(Some(x), tz) => timestamp(*x, TimeUnit::Microsecond, tz.as_deref()),
        S::TimestampNanosecond(Some(x), tz) => timestamp(*x, TimeUnit::Nanosecond, tz.as_deref()),
        S::IntervalMonthDayNano(Some(iv)) if iv.months == 0 => {
            day_to_second(i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.nanoseconds))
        }
        S::IntervalMonthDayNano(Some(iv)) if iv.days == 0 && iv.nanoseconds == 0 => {
            year_to_month(iv.months)
        }
        S::IntervalYearMonth(Some(m)) => year_to_month(*m),
        S::IntervalDayTime(Some(iv)) => day_to_second(
            i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.milliseconds) * 1_000_000,
        ),
        S::DurationSecond(Some(x)) => day_to_second(i128::from(*x) * 1_000_000_000),
        S::DurationMillisecond(Some(x)) => day_to_second(i128::from(*x) * 1_000_000),
        S::DurationMicrosecond(Some(x)) => day_to_second(i128::from(*x) * 1_000),
        S::DurationNanosecond(Some(x)) => day_to_second(i128::from(*x)),
        S::Time64Nanosecond(Some(x)) => time_of_day(i128::from(*x)),
        S::Time64Microsecond(Some(x)) => time_of_day(i128::from(*x) * 1_000),
        S::Time32Millisecond(Some(x)) => time_of_day(i128::from(*x) * 1_000_000),
        S::Time32Second(Some(x)) => time_of_day(i128::from(*x) * 1_000_000_000),
        S::List(_) | S::LargeList(_) | S::FixedSizeList(_) | S::Map(_) | S::Struct(_) => {
            match v.to_array() {
                Ok(a) => cell(&a, 0),
                Err(e) => format!("<{e}>"),
            }
        }
        other => other.to_string(),
    }
}

/// An interval day to second as Athena prints it: `2 03:00:00.000`.
fn day_to_second(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let ms = nanos.abs() / 1_000_000;
    let (days, ms) = (ms / 86_400_000, ms % 86_400_000);
    format!(
        "{sign}{days} {:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

/// An interval year to month as Athena prints it: `3-5`.
fn year_to_month(months: i32) -> String {
    let sign = if months < 0 { "-" } else { "" };
    let m = months.unsigned_abs();
    format!("{sign}{}-{}", m / 12, m % 12)
}

/// A time of day as Athena prints `time(3)`: `04:00:00.000`.
fn time_of_day(nanos: i128) -> String {
    let ms = nanos.rem_euclid(86_400_000_000_000) / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

/// The curated table stores `event_time` and `received_at` as UTC microseconds; Glue declares
/// them `timestamp`, which Athena reads as `timestamp(3)` without a zone. Nothing else in a
/// session has this type (Athena's own timestamps are milliseconds here), so it stands for
/// a table column and is shown and typed the way Athena shows it.
pub(crate) fn is_table_timestamp(u: &TimeUnit, tz: Option<&str>) -> bool {
    *u == TimeUnit::Microsecond && tz == Some("UTC")
}

fn timestamp(x: i64, u: TimeUnit, tz: Option<&str>) -> String {
    if is_table_timestamp(&u, tz) {
        let ms = x.div_euclid(1000);
        return timestamp(ms, TimeUnit::Millisecond, None);
    }
    use arrow::array::{
        TimestampMicrosecondArray as Us, TimestampMillisecondArray as Ms,
        TimestampNanosecondArray as Ns, TimestampSecondArray as S,
    };
    // The value is an instant: label it with its zone (a cast would move it).
    let a: ArrayRef = match (u, tz) {
        (TimeUnit::Second, Some(z)) => std::sync::Arc::new(S::from(vec![x]).with_timezone(z)),
        (TimeUnit::Second, None) => std::sync::Arc::new(S::from(vec![x])),
        (TimeUnit::Millisecond, Some(z)) => std::sync::Arc::new(Ms::from(vec![x]).with_timezone(z)),
        (TimeUnit::Millisecond, None) => std::sync::Arc::new(Ms::from(vec![x])),
        (TimeUnit::Microsecond, Some(z)) => std::sync::Arc::new(Us::from(vec![x]).with_timezone(z)),
        (TimeUnit::Microsecond, None) => std::sync::Arc::new(Us::from(vec![x])),
        (TimeUnit::Nanosecond, Some(z)) => std::sync::Arc::new(Ns::from(vec![x]).with_timezone(z)),
        (TimeUnit::Nanosecond, None) => std::sync::Arc::new(Ns::from(vec![x])),
    };
    let Ok((_, vals)) = super::datetime::wall_times(&a) else {
        return x.to_string();
    };
    let Some(t) = vals[0] else {
        return "NULL".into();
    };
    let digits = match u {
        TimeUnit::Second => "",
        TimeUnit::Millisecond => "%.3f",
        TimeUnit::Microsecond => "%.6f",
        TimeUnit::Nanosecond => "%.9f",
    };
    let s = t.format(&format!("%Y-%m-%d %H:%M:%S{digits}")).to_string();
    match tz {
        Some(z) => format!("{s} {z}"),
        None => s,
    }
}
