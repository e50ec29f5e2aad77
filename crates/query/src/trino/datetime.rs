//! Athena's date and time functions: the field extractors, `date_add`, `date_diff`,
//! `date_format`/`date_parse` (MySQL specifiers), `format_datetime`/`parse_datetime` (Java
//! patterns), `from_unixtime`, `to_unixtime`, `date`, `from_iso8601_date`, `to_iso8601`,
//! `with_timezone`, `at_timezone`, `from_iso8601_timestamp_nanos`, `last_day_of_month`.
//!
//! A value's fields are those of its wall-clock time: a `timestamp with time zone` is read in
//! its own zone (as Athena does), a `timestamp` and a `date` as they are.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike,
};
use datafusion::common::DataFusionError;

use super::fun::{Call, Fun, Result, arc, arity, text};

/// How a column holds time, and how to give back a wall-clock time in the same type.
#[derive(Debug, Clone)]
pub enum Kind {
    Date,
    Naive(TimeUnit),
    Zoned(TimeUnit, Tz, String),
}

fn unit_per_sec(u: TimeUnit) -> i64 {
    match u {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The UTC wall time of an instant stored in unit `u`.
pub(crate) fn from_epoch(v: i64, u: TimeUnit) -> Option<NaiveDateTime> {
    let per = unit_per_sec(u);
    let secs = v.div_euclid(per);
    let nanos = (v.rem_euclid(per) * (1_000_000_000 / per)) as u32;
    DateTime::from_timestamp(secs, nanos).map(|d| d.naive_utc())
}

/// Whether a timestamp of this zone (none, or UTC) has its stored instant as its wall time.
fn is_utc(tz: Option<&str>) -> bool {
    tz.is_none_or(|z| matches!(z, "UTC" | "+00:00"))
}

/// A timestamp column's stored values (instants, in its unit).
fn stored(a: &ArrayRef) -> Result<Int64Array> {
    let v = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(v.as_any()
        .downcast_ref::<Int64Array>()
        .expect("a cast to Int64")
        .clone())
}

/// The one unit every row names (`date_add('hour', …)`), lower-cased; `None` when a row has
/// another or none.
fn one_unit(units: &StringArray) -> Option<String> {
    let unit = super::fun::same_text(units)?;
    (units.null_count() == 0 && units.iter().all(|u| u == Some(unit)))
        .then(|| unit.to_ascii_lowercase())
}

fn to_epoch(t: NaiveDateTime, u: TimeUnit) -> Option<i64> {
    let utc = t.and_utc();
    let secs = utc.timestamp();
    let sub = i64::from(utc.timestamp_subsec_nanos());
    let per = unit_per_sec(u);
    secs.checked_mul(per)?
        .checked_add(sub / (1_000_000_000 / per))
}

pub fn parse_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name.trim())
        .map_err(|_| DataFusionError::Execution(format!("unknown time zone {name:?}")))
}

/// The wall-clock times of a date or timestamp column.
pub fn wall_times(a: &ArrayRef) -> Result<(Kind, Vec<Option<NaiveDateTime>>)> {
    let midnight = NaiveTime::MIN;
    match a.data_type() {
        DataType::Date32 | DataType::Date64 => {
            let d = arrow::compute::cast(a, &DataType::Date32)?;
            let d = d.as_any().downcast_ref::<Date32Array>().expect("date32");
            Ok((
                Kind::Date,
                (0..d.len())
                    .map(|i| {
                        d.is_valid(i)
                            .then(|| d.value_as_date(i).map(|x| x.and_time(midnight)))
                            .flatten()
                    })
                    .collect(),
            ))
        }
        DataType::Timestamp(u, tz) => {
            let u = *u;
            // The stored values are UTC instants (a cast to a zone-less timestamp would move
            // them to local time).
            let v = stored(a)?;
            let zone = tz.as_ref().map(|z| parse_zone(z)).transpose()?;
            // In UTC the wall time is the instant: no offset to look up per value.
            let utc = is_utc(tz.as_deref());
            let vals = v
                .iter()
                .map(|x| {
                    let t = from_epoch(x?, u)?;
                    Some(match &zone {
                        Some(z) if !utc => z.from_utc_datetime(&t).naive_local(),
                        _ => t,
                    })
                })
                .collect();
            Ok((
                match (zone, tz) {
                    (Some(z), Some(name)) => Kind::Zoned(u, z, name.to_string()),
                    _ => Kind::Naive(u),
                },
                vals,
            ))
        }
        DataType::Null => Ok((Kind::Naive(TimeUnit::Millisecond), vec![None; a.len()])),
        other => Err(DataFusionError::Execution(format!(
            "expected a date or timestamp, not {}",
            super::conditional::trino_type(other)
        ))),
    }
}

/// The UTC instant of a wall-clock time in a zone (the earlier one when the clock went back,
/// the first valid one after a gap when it went forward).
pub fn instant_of(t: NaiveDateTime, z: &Tz) -> NaiveDateTime {
    match z.from_local_datetime(&t) {
        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.naive_utc(),
        LocalResult::None => match z.from_local_datetime(&(t + Duration::hours(1))) {
            LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.naive_utc(),
            LocalResult::None => t,
        },
    }
}

/// A column of `kind` from wall-clock times.
pub fn from_wall_times(kind: &Kind, vals: Vec<Option<NaiveDateTime>>) -> Result<ArrayRef> {
    Ok(match kind {
        Kind::Date => arc(Date32Array::from(
            vals.into_iter()
                .map(|v| {
                    v.map(|t| {
                        (t.date() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days()
                            as i32
                    })
                })
                .collect::<Vec<_>>(),
        )),
        Kind::Naive(u) => {
            let ints = Int64Array::from(
                vals.into_iter()
                    .map(|v| v.and_then(|t| to_epoch(t, *u)))
                    .collect::<Vec<_>>(),
            );
            arrow::compute::cast(&arc(ints), &DataType::Timestamp(*u, None))?
        }
        Kind::Zoned(u, z, name) => {
            let ints = Int64Array::from(
                vals.into_iter()
                    .map(|v| v.and_then(|t| to_epoch(instant_of(t, z), *u)))
                    .collect::<Vec<_>>(),
            );
            arrow::compute::cast(
                &arc(ints),
                &DataType::Timestamp(*u, Some(name.as_str().into())),
            )?
        }
    })
}

fn bigint(_: &str, _: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int64)
}

fn varchar(_: &str, _: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

/// A field of an interval, as Athena reads it: `year` and `month` of a year-to-month
/// interval; `day` (whole days), `hour`, `minute`, `second` and `millisecond` of a day-to-second
/// one (`hour(INTERVAL '90061.234' SECOND)` is 1). None for a field intervals do not have.
fn interval_field(name: &str, a: &ArrayRef) -> Option<Result<ArrayRef>> {
    use arrow::datatypes::{IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit};
    // Each value as (months, milliseconds).
    let parts: Vec<Option<(i64, i64)>> = match a.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => a
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    let ms = i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000;
                    (i64::from(v.months), ms)
                })
            })
            .collect(),
        DataType::Interval(IntervalUnit::DayTime) => a
            .as_primitive::<IntervalDayTimeType>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    (
                        0,
                        i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds),
                    )
                })
            })
            .collect(),
        DataType::Interval(IntervalUnit::YearMonth) => a
            .as_primitive::<arrow::datatypes::IntervalYearMonthType>()
            .iter()
            .map(|v| v.map(|m| (i64::from(m), 0)))
            .collect(),
        DataType::Duration(_) => {
            let ms = match arrow::compute::cast(a, &DataType::Duration(TimeUnit::Millisecond)) {
                Ok(ms) => ms,
                Err(e) => return Some(Err(e.into())),
            };
            ms.as_primitive::<arrow::datatypes::DurationMillisecondType>()
                .iter()
                .map(|v| v.map(|ms| (0, ms)))
                .collect()
        }
        _ => return None,
    };
    let f: fn((i64, i64)) -> i64 = match name {
        "year" => |(m, _)| m / 12,
        "month" => |(m, _)| m % 12,
        "day" => |(_, ms)| ms / 86_400_000,
        "hour" => |(_, ms)| ms / 3_600_000 % 24,
        "minute" => |(_, ms)| ms / 60_000 % 60,
        "second" => |(_, ms)| ms / 1_000 % 60,
        "millisecond" => |(_, ms)| ms % 1_000,
        _ => return None,
    };
    Some(Ok(arc(Int64Array::from(
        parts.into_iter().map(|p| p.map(f)).collect::<Vec<_>>(),
    ))))
}

fn field(name: &str, a: &ArrayRef, f: impl Fn(NaiveDateTime) -> i64) -> Result<ArrayRef> {
    if let Some(out) = interval_field(name, a) {
        return out;
    }
    // A UTC or zone-less timestamp's wall time is its stored instant: read it value by value,
    // without looking up a zone's offset or holding every wall time at once.
    if let DataType::Timestamp(u, tz) = a.data_type()
        && is_utc(tz.as_deref())
    {
        return Ok(arc(stored(a)?
            .iter()
            .map(|x| from_epoch(x?, *u).map(&f))
            .collect::<Int64Array>()));
    }
    let (_, vals) = wall_times(a)?;
    Ok(arc(Int64Array::from(
        vals.into_iter().map(|v| v.map(&f)).collect::<Vec<_>>(),
    )))
}

macro_rules! extractor {
    ($name:expr, $f:expr) => {
        Fun::new($name, bigint, |c, a| field(c.name, &a[0], $f))
    };
}

/// The zone offset's hours or minutes of a timestamp with a time zone.
fn zone_offset(a: &ArrayRef, minutes: bool) -> Result<ArrayRef> {
    let (kind, vals) = wall_times(a)?;
    let Kind::Zoned(_, z, _) = &kind else {
        return Err(DataFusionError::Execution(
            "the time zone of a timestamp without one".into(),
        ));
    };
    Ok(arc(Int64Array::from(
        vals.into_iter()
            .map(|v| {
                v.map(|t| {
                    let secs = i64::from(
                        z.offset_from_utc_datetime(&instant_of(t, z))
                            .fix()
                            .local_minus_utc(),
                    );
                    if minutes {
                        (secs / 60) % 60
                    } else {
                        secs / 3600
                    }
                })
            })
            .collect::<Vec<_>>(),
    )))
}

/// The name of the extractor `extract(field FROM x)` means, when it is one of Athena's fields.
pub fn extract_field(field: &str) -> Option<&'static str> {
    Some(match field.to_ascii_lowercase().as_str() {
        "year" => "year",
        "quarter" => "quarter",
        "month" => "month",
        "week" | "week_of_year" => "week",
        "day" | "day_of_month" => "day",
        "dow" | "day_of_week" => "day_of_week",
        "doy" | "day_of_year" => "day_of_year",
        "yow" | "year_of_week" => "year_of_week",
        "hour" => "hour",
        "minute" => "minute",
        "second" => "second",
        "timezone_hour" => "timezone_hour",
        "timezone_minute" => "timezone_minute",
        _ => return None,
    })
}

/// The field extractors, each `f(date | timestamp) → bigint`.
pub fn extractors() -> Vec<Fun> {
    vec![
        extractor!("year", |t| i64::from(t.year())),
        extractor!("quarter", |t| i64::from((t.month() - 1) / 3 + 1)),
        extractor!("month", |t| i64::from(t.month())),
        extractor!("week", |t| i64::from(t.iso_week().week())).alias("week_of_year"),
        extractor!("year_of_week", |t| i64::from(t.iso_week().year())).alias("yow"),
        extractor!("day", |t| i64::from(t.day())).alias("day_of_month"),
        extractor!("day_of_week", |t| i64::from(
            t.weekday().number_from_monday()
        ))
        .alias("dow"),
        extractor!("day_of_year", |t| i64::from(t.ordinal())).alias("doy"),
        extractor!("hour", |t| i64::from(t.hour())),
        extractor!("minute", |t| i64::from(t.minute())),
        extractor!("second", |t| i64::from(t.second())),
        extractor!("millisecond", |t| i64::from(t.nanosecond() / 1_000_000)),
        Fun::new("timezone_hour", bigint, |_, a| zone_offset(&a[0], false)),
        Fun::new("timezone_minute", bigint, |_, a| zone_offset(&a[0], true)),
    ]
}

fn same_as_third(name: &str, types: &[DataType]) -> Result<DataType> {
    arity(name, types, &[3])?;
    Ok(match &types[2] {
        DataType::Date64 => DataType::Date32,
        t => t.clone(),
    })
}

/// Adds `n` months, keeping the day where the month has it and the month's last day otherwise.
fn add_months(t: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let n32 = u32::try_from(n.unsigned_abs()).ok()?;
    if n >= 0 {
        t.checked_add_months(Months::new(n32))
    } else {
        t.checked_sub_months(Months::new(n32))
    }
}

fn add_unit(
    unit: &str,
    n: i64,
    t: NaiveDateTime,
) -> std::result::Result<Option<NaiveDateTime>, String> {
    Ok(match unit {
        "millisecond" => t.checked_add_signed(Duration::try_milliseconds(n).ok_or("overflow")?),
        "second" => t.checked_add_signed(Duration::try_seconds(n).ok_or("overflow")?),
        "minute" => t.checked_add_signed(Duration::try_minutes(n).ok_or("overflow")?),
        "hour" => t.checked_add_signed(Duration::try_hours(n).ok_or("overflow")?),
        "day" => t.checked_add_signed(Duration::try_days(n).ok_or("overflow")?),
        "week" => t.checked_add_signed(Duration::try_weeks(n).ok_or("overflow")?),
        "month" => add_months(t, n),
        "quarter" => add_months(t, n.checked_mul(3).ok_or("overflow")?),
        "year" => add_months(t, n.checked_mul(12).ok_or("overflow")?),
        other => {
            return Err(format!(
                "{other:?} is not a unit (millisecond, second, minute, hour, day, week, month, quarter, year)"
            ));
        }
    })
}

fn is_time_unit(u: &str) -> bool {
    matches!(u, "millisecond" | "second" | "minute" | "hour")
}

/// `date_add(unit, value, x)`: `x` plus `value` units, in `x`'s type. On a timestamp with a
/// time zone, the hours and smaller units are elapsed time and the days and larger ones move the
/// wall clock, as in Athena.
fn date_add(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let units = text(&a[0])?;
    let n = arrow::compute::cast(&a[1], &DataType::Int64)?;
    let n = n.as_any().downcast_ref::<Int64Array>().expect("int64");
    if let Some(sum) = fixed_date_add(&units, n, &a[2])? {
        return Ok(sum);
    }
    let (kind, vals) = wall_times(&a[2])?;
    let mut out = Vec::with_capacity(vals.len());
    for (i, v) in vals.into_iter().enumerate() {
        let (Some(t), false, false) = (v, units.is_null(i), n.is_null(i)) else {
            out.push(None);
            continue;
        };
        let unit = units.value(i).to_ascii_lowercase();
        if matches!(kind, Kind::Date) && is_time_unit(&unit) {
            out.push(call.row_err(format!("{unit:?} is not a valid unit for a date"))?);
            continue;
        }
        let r = match &kind {
            Kind::Zoned(_, z, _) if is_time_unit(&unit) => {
                add_unit(&unit, n.value(i), instant_of(t, z))
                    .map(|o| o.map(|u| z.from_utc_datetime(&u).naive_local()))
            }
            _ => add_unit(&unit, n.value(i), t),
        };
        match r {
            Ok(Some(t)) => out.push(Some(t)),
            Ok(None) => out.push(call.row_err("the result is out of range")?),
            Err(e) => out.push(call.row_err(e)?),
        }
    }
    from_wall_times(&kind, out)
}

/// Nanoseconds in one `unit` of fixed length: milliseconds to hours, and days and weeks where
/// the clock does not change (`utc`); `None` for any other unit.
fn fixed_unit_nanos(unit: &str, utc: bool) -> Option<i128> {
    const SECOND: i128 = 1_000_000_000;
    Some(match unit {
        "millisecond" => SECOND / 1_000,
        "second" => SECOND,
        "minute" => 60 * SECOND,
        "hour" => 3_600 * SECOND,
        "day" if utc => 86_400 * SECOND,
        "week" if utc => 7 * 86_400 * SECOND,
        _ => return None,
    })
}

/// `date_add` of a unit of fixed length to a timestamp, on its stored values: milliseconds to
/// hours move the instant in any zone; days and weeks do when the timestamp is UTC or without a
/// zone (no daylight saving change to cross). `None` for anything else (dates, other units, a
/// unit that changes from row to row, a result out of range), left to the row-by-row path.
fn fixed_date_add(
    units: &arrow::array::StringArray,
    n: &Int64Array,
    t: &ArrayRef,
) -> Result<Option<ArrayRef>> {
    let (DataType::Timestamp(u, tz), Some(unit)) = (t.data_type(), one_unit(units)) else {
        return Ok(None);
    };
    // The unit in stored units (a millisecond is no whole number of seconds).
    let per_stored = 1_000_000_000 / i128::from(unit_per_sec(*u));
    let length = match fixed_unit_nanos(&unit, is_utc(tz.as_deref())) {
        Some(nanos) if nanos % per_stored == 0 => (nanos / per_stored) as i64,
        _ => return Ok(None),
    };
    let v = stored(t)?;
    let mut out = Vec::with_capacity(v.len());
    for (x, k) in v.iter().zip(n.iter()) {
        out.push(match (x, k) {
            (Some(x), Some(k)) => {
                let Some(y) = k.checked_mul(length).and_then(|d| x.checked_add(d)) else {
                    return Ok(None);
                };
                Some(y)
            }
            _ => None,
        });
    }
    let sum: ArrayRef = arc(Int64Array::from(out));
    Ok(Some(arrow::compute::cast(&sum, t.data_type())?))
}

/// Whole months from `a` to `b`, truncated toward zero.
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    let mut m = i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
    if m > 0 && add_months(a, m).is_some_and(|x| x > b) {
        m -= 1;
    } else if m < 0 && add_months(a, m).is_some_and(|x| x < b) {
        m += 1;
    }
    m
}

/// `date_diff(unit, a, b)`: whole units from `a` to `b` (negative when `b` is earlier).
fn date_diff(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let units = text(&a[0])?;
    if let Some(diffs) = fixed_date_diff(&units, &a[1], &a[2])? {
        return Ok(arc(diffs));
    }
    let (ka, xs) = wall_times(&a[1])?;
    let (kb, ys) = wall_times(&a[2])?;
    let instant = |k: &Kind, t: NaiveDateTime| match k {
        Kind::Zoned(_, z, _) => instant_of(t, z),
        _ => t,
    };
    let mut out = Vec::with_capacity(xs.len());
    for (i, (x, y)) in xs.into_iter().zip(ys).enumerate() {
        let (Some(x), Some(y), false) = (x, y, units.is_null(i)) else {
            out.push(None);
            continue;
        };
        let unit = units.value(i).to_ascii_lowercase();
        let elapsed = instant(&kb, y) - instant(&ka, x);
        let v = match unit.as_str() {
            "millisecond" => Some(elapsed.num_milliseconds()),
            "second" => Some(elapsed.num_seconds()),
            "minute" => Some(elapsed.num_minutes()),
            "hour" => Some(elapsed.num_hours()),
            // Days and longer count on the wall clock of the first value's zone.
            "day" => Some((y - x).num_days()),
            "week" => Some((y - x).num_days() / 7),
            "month" => Some(months_between(x, y)),
            "quarter" => Some(months_between(x, y) / 3),
            "year" => Some(months_between(x, y) / 12),
            other => call.row_err(format!("{other:?} is not a unit"))?,
        };
        out.push(v);
    }
    Ok(arc(Int64Array::from(out)))
}

/// `date_diff` in one unit of fixed length over two timestamps, from their stored values: the
/// same whole units, truncated toward zero, as the difference of their instants read row by
/// row, without reading each one's wall time. Milliseconds to hours are the instants'
/// difference in any zone; days and weeks are when both are UTC or without a zone (no
/// daylight saving change between them). `None` for anything else (dates, other units, a unit
/// that changes from row to row, other zones).
fn fixed_date_diff(
    units: &arrow::array::StringArray,
    x: &ArrayRef,
    y: &ArrayRef,
) -> Result<Option<Int64Array>> {
    let Some(unit) = one_unit(units) else {
        return Ok(None);
    };
    // Two dates: their days apart.
    if let (DataType::Date32, DataType::Date32) = (x.data_type(), y.data_type()) {
        let days = match unit.as_str() {
            "day" => 1,
            "week" => 7,
            _ => return Ok(None),
        };
        let (xs, ys) = (
            x.as_primitive::<arrow::datatypes::Date32Type>(),
            y.as_primitive::<arrow::datatypes::Date32Type>(),
        );
        return Ok(Some(
            xs.iter()
                .zip(ys.iter())
                .map(|(x, y)| Some((i64::from(y?) - i64::from(x?)) / days))
                .collect(),
        ));
    }
    let (DataType::Timestamp(ux, zx), DataType::Timestamp(uy, zy)) = (x.data_type(), y.data_type())
    else {
        return Ok(None);
    };
    let utc = is_utc(zx.as_deref()) && is_utc(zy.as_deref());
    let Some(length) = fixed_unit_nanos(&unit, utc) else {
        return Ok(None);
    };
    // Nanoseconds per stored unit.
    let (px, py) = (
        1_000_000_000 / i128::from(unit_per_sec(*ux)),
        1_000_000_000 / i128::from(unit_per_sec(*uy)),
    );
    let (xs, ys) = (stored(x)?, stored(y)?);
    Ok(Some(
        xs.iter()
            .zip(ys.iter())
            .map(|(x, y)| {
                let (x, y) = (x?, y?);
                i64::try_from((y as i128 * py - x as i128 * px) / length).ok()
            })
            .collect(),
    ))
}

/// One item of a format: text as it is, or a field.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Lit(String),
    /// A chrono specifier (`%Y`), for formatting and parsing.
    Chrono(&'static str),
    /// Fraction of a second with this many digits (`%f` is 6, Java's `SSS` is 3).
    Fraction(usize),
    /// A Java pattern letter chrono cannot express, with its count.
    Java(char, usize),
}

/// MySQL-style specifiers (`date_format`, `date_parse`).
fn mysql_items(fmt: &str) -> std::result::Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut chars = fmt.chars();
    let mut lit = String::new();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let Some(s) = chars.next() else {
            lit.push('%');
            break;
        };
        let item = match s {
            'a' => Item::Chrono("%a"),
            'b' => Item::Chrono("%b"),
            'c' => Item::Chrono("%-m"),
            'd' => Item::Chrono("%d"),
            'e' => Item::Chrono("%-d"),
            'f' => Item::Fraction(6),
            'H' => Item::Chrono("%H"),
            'h' | 'I' => Item::Chrono("%I"),
            'i' => Item::Chrono("%M"),
            'j' => Item::Chrono("%j"),
            'k' => Item::Chrono("%-H"),
            'l' => Item::Chrono("%-I"),
            'M' => Item::Chrono("%B"),
            'm' => Item::Chrono("%m"),
            'p' => Item::Chrono("%p"),
            'r' => Item::Chrono("%I:%M:%S %p"),
            'S' | 's' => Item::Chrono("%S"),
            'T' => Item::Chrono("%H:%M:%S"),
            'v' => Item::Chrono("%V"),
            'W' => Item::Chrono("%A"),
            'x' => Item::Chrono("%G"),
            'Y' => Item::Chrono("%Y"),
            'y' => Item::Chrono("%y"),
            '%' => {
                lit.push('%');
                continue;
            }
            'D' | 'U' | 'u' | 'V' | 'w' | 'X' => {
                return Err(format!(
                    "the specifier %{s} is not supported (as in Athena)"
                ));
            }
            other => {
                lit.push(other);
                continue;
            }
        };
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(&mut lit)));
        }
        items.push(item);
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

/// Teradata's format (`to_char`, `to_date`, `to_timestamp`), as Athena reads it: `yyyy`, `yy`,
/// `mm`, `dd`, `hh24`, `hh` (the hour of the half day, 0 to 11), `mi`, `ss`, in lower case,
/// and spaces and `- / , . ; :` as they are; anything else is an error, as on Athena.
fn teradata_items(fmt: &str, parse: bool) -> std::result::Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = fmt;
    while let Some(c) = rest.chars().next() {
        let fields = [
            ("yyyy", Item::Chrono("%Y")),
            ("yy", Item::Chrono("%y")),
            ("mm", Item::Chrono("%m")),
            ("mi", Item::Chrono("%M")),
            ("dd", Item::Chrono("%d")),
            ("hh24", Item::Chrono("%H")),
            // Parsed as a clock hour of the morning (no format has a meridiem).
            (
                "hh",
                if parse {
                    Item::Chrono("%I")
                } else {
                    Item::Java('K', 2)
                },
            ),
            ("ss", Item::Chrono("%S")),
        ];
        if let Some((token, item)) = fields.into_iter().find(|(t, _)| rest.starts_with(t)) {
            items.push(item);
            rest = &rest[token.len()..];
            continue;
        }
        if !matches!(
            c,
            ' ' | '\r' | '\n' | '\t' | '-' | '/' | ',' | '.' | ';' | ':'
        ) {
            return Err(format!(
                "the format {fmt:?} has {c:?} at offset {}: it takes yyyy, yy, mm, dd, hh24, hh, \
                 mi, ss (in lower case), spaces and - / , . ; :",
                fmt.len() - rest.len()
            ));
        }
        match items.last_mut() {
            Some(Item::Lit(l)) => l.push(c),
            _ => items.push(Item::Lit(c.to_string())),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(items)
}

/// Java (Joda) patterns (`format_datetime`, `parse_datetime`).
fn java_items(fmt: &str) -> std::result::Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let cs: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut lit = String::new();
    while i < cs.len() {
        let c = cs[i];
        if c == '\'' {
            // A quoted literal; '' is a quote.
            if cs.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            while j < cs.len() {
                if cs[j] == '\'' {
                    if cs.get(j + 1) == Some(&'\'') {
                        lit.push('\'');
                        j += 2;
                        continue;
                    }
                    break;
                }
                lit.push(cs[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            lit.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while cs.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let item = match (c, n) {
            ('y' | 'Y' | 'u', 2) => Item::Chrono("%y"),
            ('y' | 'Y' | 'u', _) => Item::Chrono("%Y"),
            ('x', 2) => Item::Chrono("%g"),
            ('x', _) => Item::Chrono("%G"),
            ('w', 1) => Item::Java('w', 1),
            ('w', _) => Item::Chrono("%V"),
            ('M', 1) => Item::Chrono("%-m"),
            ('M', 2) => Item::Chrono("%m"),
            ('M', 3) => Item::Chrono("%b"),
            ('M', _) => Item::Chrono("%B"),
            ('d', 1) => Item::Chrono("%-d"),
            ('d', _) => Item::Chrono("%d"),
            ('D', 1) => Item::Java('D', 1),
            ('D', _) => Item::Chrono("%j"),
            ('e', _) => Item::Chrono("%u"),
            ('E', 1..=3) => Item::Chrono("%a"),
            ('E', _) => Item::Chrono("%A"),
            ('a', _) => Item::Chrono("%p"),
            ('H', 1) => Item::Chrono("%-H"),
            ('H', _) => Item::Chrono("%H"),
            ('k', _) => Item::Java('k', n),
            ('K', _) => Item::Java('K', n),
            ('h', 1) => Item::Chrono("%-I"),
            ('h', _) => Item::Chrono("%I"),
            ('m', 1) => Item::Chrono("%-M"),
            ('m', _) => Item::Chrono("%M"),
            ('s', 1) => Item::Chrono("%-S"),
            ('s', _) => Item::Chrono("%S"),
            ('S', n) => Item::Fraction(n.min(9)),
            ('Z', 1) => Item::Chrono("%z"),
            ('Z', 2) => Item::Chrono("%:z"),
            ('Z', _) => Item::Java('Z', 3),
            ('z', _) => Item::Java('z', n),
            ('G', _) => Item::Java('G', n),
            ('C', _) => Item::Java('C', n),
            (other, _) => return Err(format!("the pattern letter {other:?} is not supported")),
        };
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(&mut lit)));
        }
        items.push(item);
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

/// Writes `n` with at least `width` digits (zero-padded), as chrono's `%Y`, `%m`… do for
/// non-negative values.
fn push_padded(s: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    for _ in digits..width {
        s.push('0');
    }
    s.push_str(std::str::from_utf8(&buf[i..]).expect("ascii digits"));
}

#[cfg(test)]
fn render(items: &[Item], t: NaiveDateTime, zone: Option<(&Tz, &str)>) -> String {
    let mut s = String::new();
    render_into(&mut s, items, t, zone);
    s
}

fn render_into(s: &mut String, items: &[Item], t: NaiveDateTime, zone: Option<(&Tz, &str)>) {
    use std::fmt::Write as _;
    for it in items {
        match it {
            Item::Lit(l) => s.push_str(l),
            Item::Chrono(f) => match (f, zone) {
                (&"%z" | &"%:z", Some((z, _))) => {
                    let off = z.offset_from_utc_datetime(&instant_of(t, z));
                    let d =
                        chrono::DateTime::<Tz>::from_naive_utc_and_offset(instant_of(t, z), off);
                    let _ = write!(s, "{}", d.format(f));
                }
                (&"%z", None) => s.push_str("+0000"),
                (&"%:z", None) => s.push_str("+00:00"),
                // The specifiers of nearly every format, without parsing `f` for each row.
                (&"%Y", _) if (0..=9999).contains(&t.year()) => push_padded(s, t.year() as u32, 4),
                (&"%m", _) => push_padded(s, t.month(), 2),
                (&"%d", _) => push_padded(s, t.day(), 2),
                (&"%H", _) => push_padded(s, t.hour(), 2),
                (&"%M", _) => push_padded(s, t.minute(), 2),
                (&"%S", _) => push_padded(s, t.second(), 2),
                _ => {
                    let _ = write!(s, "{}", t.format(f));
                }
            },
            Item::Fraction(n) => {
                let digits = format!("{:09}", t.nanosecond() % 1_000_000_000);
                s.push_str(&digits[..*n]);
            }
            Item::Java(c, n) => match c {
                'w' => s.push_str(&t.iso_week().week().to_string()),
                'D' => s.push_str(&t.ordinal().to_string()),
                'k' => s.push_str(&format!(
                    "{:0n$}",
                    if t.hour() == 0 { 24 } else { t.hour() },
                    n = *n
                )),
                'K' => s.push_str(&format!("{:0n$}", t.hour() % 12, n = *n)),
                'Z' | 'z' => s.push_str(zone.map_or("UTC", |(_, name)| name)),
                'G' => s.push_str(if t.year() > 0 { "AD" } else { "BC" }),
                'C' => s.push_str(&(t.year() / 100).to_string()),
                _ => {}
            },
        }
    }
}

/// A chrono parse format for the items, or why they cannot be parsed.
fn parse_format(items: &[Item]) -> std::result::Result<String, String> {
    let mut f = String::new();
    let mut iter = items.iter().peekable();
    while let Some(it) = iter.next() {
        match it {
            Item::Lit(l) => {
                // `.` then a fraction is chrono's `%.f`.
                if l.ends_with('.') && matches!(iter.peek(), Some(Item::Fraction(_))) {
                    f.push_str(&l[..l.len() - 1].replace('%', "%%"));
                    f.push_str("%.f");
                    iter.next();
                } else {
                    f.push_str(&l.replace('%', "%%"));
                }
            }
            Item::Chrono(c) => f.push_str(&c.replace('-', "")),
            Item::Fraction(_) => f.push_str("%f"),
            Item::Java(c, _) => return Err(format!("cannot parse with the pattern letter {c:?}")),
        }
    }
    Ok(f)
}

/// Parses `s` with a chrono format into a wall-clock time and, when the text has one, an offset.
fn parse_with(s: &str, f: &str) -> Option<(NaiveDateTime, Option<chrono::FixedOffset>)> {
    if let Ok(d) = DateTime::parse_from_str(s, f) {
        return Some((d.naive_utc(), Some(*d.offset())));
    }
    let mut p = chrono::format::Parsed::new();
    chrono::format::parse(&mut p, s, chrono::format::StrftimeItems::new(f)).ok()?;
    // Athena fills what the format leaves out with 1970-01-01 00:00:00.000.
    // A two-digit year is 1970 to 2069, as in Athena.
    if let (None, Some(yy)) = (p.year(), p.year_mod_100()) {
        let _ = p.set_year(i64::from(if yy < 70 { 2000 + yy } else { 1900 + yy }));
    }
    if p.year().is_none() && p.isoyear().is_none() {
        let _ = p.set_year(1970);
    }
    if p.month().is_none() && p.ordinal().is_none() && p.isoweek().is_none() {
        let _ = p.set_month(1);
    }
    if p.day().is_none() && p.ordinal().is_none() && p.weekday().is_none() {
        let _ = p.set_day(1);
    }
    if p.hour_div_12().is_none() {
        let _ = p.set_ampm(false);
    }
    if p.hour_mod_12().is_none() {
        let _ = p.set_hour12(12);
    }
    if p.minute().is_none() {
        let _ = p.set_minute(0);
    }
    if p.second().is_none() {
        let _ = p.set_second(0);
    }
    let date = p.to_naive_date().ok()?;
    let time = p.to_naive_time().ok()?;
    Some((date.and_time(time), None))
}

fn ms_naive() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

fn ms_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The coarsest step, in seconds, within which a format's text cannot change: 86,400 when it
/// shows nothing finer than a day, 3,600 for hours, 60 for minutes, 1 for seconds. `None` when
/// it shows a fraction of a second or a field this does not know.
fn format_step(items: &[Item]) -> Option<i64> {
    let mut step = 86_400;
    for it in items {
        let finest = match it {
            Item::Lit(_) => 86_400,
            Item::Chrono(f) => {
                let mut finest = 86_400;
                for spec in f.split('%').skip(1) {
                    let letter = spec.trim_start_matches(['-', ':']).chars().next()?;
                    finest = finest.min(match letter {
                        'S' => 1,
                        'M' => 60,
                        'H' | 'I' | 'p' | 'P' => 3_600,
                        'a' | 'A' | 'b' | 'B' | 'd' | 'e' | 'j' | 'm' | 'V' | 'G' | 'g' | 'u'
                        | 'Y' | 'y' | 'z' => 86_400,
                        _ => return None,
                    });
                }
                finest
            }
            Item::Fraction(_) => return None,
            Item::Java(c, _) => match c {
                'k' | 'K' => 3_600,
                'w' | 'D' | 'G' | 'C' | 'Z' | 'z' => 86_400,
                _ => return None,
            },
        };
        step = step.min(finest);
    }
    Some(step)
}

/// `format_rows` for UTC or zone-less timestamps and one format: a row in the same step of the
/// format (the same hour, for `%Y-%m-%d %H:00`) as the row before it repeats that row's text,
/// without finding its calendar fields again. `None` when this does not apply.
fn format_same_step(
    a: &ArrayRef,
    fmts: &StringArray,
    items_of: fn(&str) -> std::result::Result<Vec<Item>, String>,
) -> Result<Option<ArrayRef>> {
    let DataType::Timestamp(u, tz) = a.data_type() else {
        return Ok(None);
    };
    if !is_utc(tz.as_deref()) || fmts.null_count() > 0 {
        return Ok(None);
    }
    let Some(f) = super::fun::same_text(fmts) else {
        return Ok(None);
    };
    if (0..fmts.len()).any(|i| fmts.value(i) != f) {
        return Ok(None);
    }
    let Ok(items) = items_of(f) else {
        return Ok(None);
    };
    let Some(step) = format_step(&items) else {
        return Ok(None);
    };
    let zone = match tz {
        Some(name) => Some((parse_zone(name)?, name.to_string())),
        None => None,
    };
    let step = step * unit_per_sec(*u);
    let v = stored(a)?;
    let mut out = arrow::array::StringBuilder::with_capacity(v.len(), v.len() * 16);
    let mut buf = String::new();
    let mut last: Option<i64> = None;
    for x in v.iter() {
        let Some(x) = x else {
            out.append_null();
            continue;
        };
        let key = x.div_euclid(step);
        if last != Some(key) {
            let Some(t) = from_epoch(x, *u) else {
                return Ok(None);
            };
            buf.clear();
            render_into(
                &mut buf,
                &items,
                t,
                zone.as_ref().map(|(z, n)| (z, n.as_str())),
            );
            last = Some(key);
        }
        out.append_value(&buf);
    }
    Ok(Some(arc(out.finish())))
}

/// Formats with a per-row format text and a translation of it.
fn format_rows(
    call: &Call,
    a: &[ArrayRef],
    items_of: fn(&str) -> std::result::Result<Vec<Item>, String>,
) -> Result<ArrayRef> {
    let fmts = text(&a[1])?;
    if let Some(out) = format_same_step(&a[0], &fmts, items_of)? {
        return Ok(out);
    }
    let (kind, vals) = wall_times(&a[0])?;
    let mut cache: Option<(String, Vec<Item>)> = None;
    let mut out = arrow::array::StringBuilder::with_capacity(vals.len(), vals.len() * 16);
    let mut buf = String::new();
    for (i, v) in vals.into_iter().enumerate() {
        let (Some(t), false) = (v, fmts.is_null(i)) else {
            out.append_null();
            continue;
        };
        let f = fmts.value(i);
        if cache.as_ref().is_none_or(|(k, _)| k != f) {
            match items_of(f) {
                Ok(items) => cache = Some((f.to_string(), items)),
                Err(e) => {
                    out.append_option(call.row_err::<String>(e)?);
                    continue;
                }
            }
        }
        let items = &cache.as_ref().expect("cached").1;
        let zone = match &kind {
            Kind::Zoned(_, z, name) => Some((z, name.as_str())),
            _ => None,
        };
        buf.clear();
        render_into(&mut buf, items, t, zone);
        out.append_value(&buf);
    }
    Ok(arc(out.finish()))
}

fn parse_rows(
    call: &Call,
    a: &[ArrayRef],
    items_of: fn(&str) -> std::result::Result<Vec<Item>, String>,
    zoned: bool,
) -> Result<ArrayRef> {
    let texts = text(&a[0])?;
    let fmts = text(&a[1])?;
    let mut out: Vec<Option<i64>> = Vec::with_capacity(texts.len());
    let mut zone_of_first: Option<String> = None;
    for i in 0..texts.len() {
        if texts.is_null(i) || fmts.is_null(i) {
            out.push(None);
            continue;
        }
        let f = match items_of(fmts.value(i)).and_then(|items| parse_format(&items)) {
            Ok(f) => f,
            Err(e) => {
                out.push(call.row_err(e)?);
                continue;
            }
        };
        let s = texts.value(i);
        match parse_with(s, &f) {
            Some((t, off)) => {
                if let (Some(o), true) = (off, zoned) {
                    zone_of_first.get_or_insert_with(|| o.to_string());
                }
                out.push(Some(t.and_utc().timestamp_millis()));
            }
            None => out.push(call.row_err(format!(
                "invalid value {s:?} for format {:?}",
                fmts.value(i)
            ))?),
        }
    }
    let arr = TimestampMillisecondArray::from(out);
    Ok(if zoned {
        arc(arr.with_timezone(zone_of_first.unwrap_or_else(|| "UTC".into())))
    } else {
        arc(arr)
    })
}

/// `from_unixtime(seconds[, zone | hours, minutes])`: the zone is in the result's type.
fn unixtime(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let secs = arrow::compute::cast(&a[0], &DataType::Float64)?;
    let secs = secs.as_any().downcast_ref::<Float64Array>().expect("f64");
    let out: Vec<Option<i64>> = secs
        .iter()
        .map(|s| s.map(|s| (s * 1000.0).floor() as i64))
        .collect();
    Ok(arrow::compute::cast(&arc(Int64Array::from(out)), call.ret)?)
}

fn to_unixtime(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    // A timestamp's stored value is its instant, in any zone.
    if let DataType::Timestamp(u, _) = a[0].data_type() {
        let per = unit_per_sec(*u);
        return Ok(arc(stored(&a[0])?
            .iter()
            .map(|x| {
                x.map(|x| {
                    let nanos = x.rem_euclid(per) * (1_000_000_000 / per);
                    x.div_euclid(per) as f64 + nanos as f64 / 1e9
                })
            })
            .collect::<Float64Array>()));
    }
    let (kind, vals) = wall_times(&a[0])?;
    Ok(arc(Float64Array::from(
        vals.into_iter()
            .map(|v| {
                v.map(|t| {
                    let u = match &kind {
                        Kind::Zoned(_, z, _) => instant_of(t, z),
                        _ => t,
                    }
                    .and_utc();
                    u.timestamp() as f64 + f64::from(u.timestamp_subsec_nanos()) / 1e9
                })
            })
            .collect::<Vec<_>>(),
    )))
}

/// `date(x)`: the date of a timestamp (in its zone), or a `YYYY-MM-DD` text.
fn date(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    if super::fun::is_string(a[0].data_type()) {
        let t = text(&a[0])?;
        let mut out = Vec::with_capacity(t.len());
        for s in t.iter() {
            out.push(match s {
                None => None,
                Some(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                    Ok(d) => Some(d.and_time(NaiveTime::MIN)),
                    Err(_) => call.row_err(format!("{s:?} is not a date (YYYY-MM-DD)"))?,
                },
            });
        }
        return from_wall_times(&Kind::Date, out);
    }
    let (_, vals) = wall_times(&a[0])?;
    from_wall_times(
        &Kind::Date,
        vals.into_iter()
            .map(|v| v.map(|t| t.date().and_time(NaiveTime::MIN)))
            .collect(),
    )
}

/// `from_iso8601_date`: `2020-05-11`, `2020-W10`, `2020-W10-2`, `2020-123`, `2020-05`, `2020`.
fn from_iso8601_date(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let t = text(&a[0])?;
    let mut out = Vec::with_capacity(t.len());
    for s in t.iter() {
        out.push(match s {
            None => None,
            Some(s) => match iso_date(s.trim()) {
                Some(d) => Some(d.and_time(NaiveTime::MIN)),
                None => call.row_err(format!("{s:?} is not an ISO 8601 date"))?,
            },
        });
    }
    from_wall_times(&Kind::Date, out)
}

fn iso_date(s: &str) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    if let Some((y, w)) = s.split_once("-W") {
        let y: i32 = y.parse().ok()?;
        let (w, d) = match w.split_once('-') {
            Some((w, d)) => (w.parse().ok()?, d.parse::<u32>().ok()?),
            None => (w.parse().ok()?, 1),
        };
        let wd = chrono::Weekday::try_from(u8::try_from(d.checked_sub(1)?).ok()?).ok()?;
        return NaiveDate::from_isoywd_opt(y, w, wd);
    }
    if let Some((y, rest)) = s.split_once('-') {
        let y: i32 = y.parse().ok()?;
        if rest.len() == 3 {
            return NaiveDate::from_yo_opt(y, rest.parse().ok()?);
        }
        return NaiveDate::from_ymd_opt(y, rest.parse().ok()?, 1);
    }
    if s.len() == 4 {
        return NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1);
    }
    None
}

fn to_iso8601(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (kind, vals) = wall_times(&a[0])?;
    // A table's `event_time` or `received_at` is Athena's `timestamp(3)`, without a zone to
    // write (its values are UTC wall times).
    let kind = match (a[0].data_type(), kind) {
        (DataType::Timestamp(u, tz), Kind::Zoned(..))
            if super::render::is_table_timestamp(u, tz.as_deref()) =>
        {
            Kind::Naive(*u)
        }
        (_, kind) => kind,
    };
    let out: Vec<Option<String>> = vals
        .into_iter()
        .map(|v| {
            v.map(|t| match &kind {
                Kind::Date => t.format("%Y-%m-%d").to_string(),
                Kind::Naive(_) => t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
                Kind::Zoned(_, z, name) => {
                    let u = instant_of(t, z);
                    let off = z.offset_from_utc_datetime(&u);
                    let d = DateTime::<Tz>::from_naive_utc_and_offset(u, off);
                    let o = d.format("%:z").to_string();
                    let o = if o == "+00:00" && (name == "UTC" || name == "Z") {
                        "Z".to_string()
                    } else {
                        o
                    };
                    format!("{}{o}", t.format("%Y-%m-%dT%H:%M:%S%.3f"))
                }
            })
        })
        .collect();
    Ok(arc(StringArray::from(out)))
}

/// `with_timezone(timestamp, zone)`: the wall-clock time read in `zone`.
fn with_timezone(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (_, vals) = wall_times(&a[0])?;
    let zones = text(&a[1])?;
    let Some(name) = super::fun::same_text(&zones) else {
        return Ok(arrow::array::new_null_array(call.ret, vals.len()));
    };
    let name = zone_name(name);
    let z = parse_zone(&name)?;
    let u = match call.ret {
        DataType::Timestamp(u, _) => *u,
        _ => TimeUnit::Millisecond,
    };
    from_wall_times(&Kind::Zoned(u, z, name), vals)
}

/// `at_timezone(t, zone)`: the same instant in another zone (Athena's `t AT TIME ZONE zone`); a
/// `timestamp` without a zone is read in the session's zone, UTC.
fn at_timezone(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let DataType::Timestamp(u, _) = call.ret else {
        return Err(DataFusionError::Plan(format!(
            "{}: expected a timestamp",
            call.name
        )));
    };
    let utc = match a[0].data_type() {
        DataType::Timestamp(_, Some(_)) => Arc::clone(&a[0]),
        DataType::Timestamp(tu, None) => {
            arrow::compute::cast(&a[0], &DataType::Timestamp(*tu, Some("UTC".into())))?
        }
        DataType::Date32 | DataType::Date64 => {
            arrow::compute::cast(&a[0], &DataType::Timestamp(*u, Some("UTC".into())))?
        }
        other => {
            return Err(DataFusionError::Plan(format!(
                "{}: expected a timestamp, not {}",
                call.name,
                super::trino_type(other)
            )));
        }
    };
    Ok(arrow::compute::cast(&utc, call.ret)?)
}

/// `from_iso8601_timestamp_nanos(text)`: as `from_iso8601_timestamp`, to the nanosecond.
fn from_iso8601_timestamp_nanos(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let texts = text(&a[0])?;
    let out = super::iso8601_instants(
        texts.len(),
        |i| (!texts.is_null(i)).then(|| texts.value(i)),
        |t| t.timestamp_nanos_opt(),
        |v| call.row_err(format!("{v:?} is not an ISO 8601 timestamp")),
    )?;
    Ok(arc(
        arrow::array::TimestampNanosecondArray::from(out).with_timezone(super::zone_of(call.ret))
    ))
}

fn last_day_of_month(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (_, vals) = wall_times(&a[0])?;
    from_wall_times(
        &Kind::Date,
        vals.into_iter()
            .map(|v| {
                v.and_then(|t| {
                    let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1)?;
                    let next = first.checked_add_months(Months::new(1))?;
                    Some((next - Duration::days(1)).and_time(NaiveTime::MIN))
                })
            })
            .collect(),
    )
}

/// A time zone given as a literal, checked; a zone that is not a literal is an error (the zone
/// is part of the result's type).
/// The resolution of a timestamp argument (milliseconds for a date, and for the table's
/// timestamps, which Athena reads as `timestamp(3)`).
fn timestamp_unit(t: &DataType) -> TimeUnit {
    match t {
        DataType::Timestamp(u, tz) if !super::render::is_table_timestamp(u, tz.as_deref()) => *u,
        _ => TimeUnit::Millisecond,
    }
}

fn zone_literal(v: Option<&Option<&datafusion::common::ScalarValue>>) -> Result<String> {
    use datafusion::common::ScalarValue as S;
    match v {
        Some(Some(S::Utf8(Some(z)) | S::Utf8View(Some(z)) | S::LargeUtf8(Some(z)))) => {
            let z = zone_name(z);
            parse_zone(&z)?;
            Ok(z)
        }
        _ => Err(DataFusionError::Plan(
            "the time zone must be a literal, e.g. 'America/New_York'".into(),
        )),
    }
}

/// A zone as Athena prints it: `+07:09` for an offset.
fn zone_name(z: &str) -> String {
    if let Some(rest) = z.strip_prefix(['+', '-']) {
        let sign = &z[..1];
        let digits: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() <= 2 {
            return format!("{sign}{digits:0>2}:00");
        }
        if digits.len() == 4 {
            return format!("{sign}{}:{}", &digits[..2], &digits[2..]);
        }
    }
    z.to_string()
}

/// `TIMESTAMP '2001-08-22 03:04:05.321 America/Los_Angeles'` (the SQL is rewritten to call
/// this): the wall-clock time in that zone, typed with the zone.
fn timestamp_literal(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let t = text(&a[0])?;
    let mut out = Vec::with_capacity(t.len());
    for v in t.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let Some((when, zone)) = super::json_types::literal_zone(v) else {
            out.push(call.row_err(format!("{v:?} is not a timestamp with a time zone"))?);
            continue;
        };
        let z = parse_zone(&zone_name(zone))?;
        let local = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
            .iter()
            .find_map(|f| {
                NaiveDateTime::parse_from_str(when, f).ok().or_else(|| {
                    NaiveDate::parse_from_str(when, f)
                        .ok()
                        .map(|d| d.and_time(NaiveTime::MIN))
                })
            });
        match local {
            Some(t) => out.push(Some(instant_of(t, &z).and_utc().timestamp_millis())),
            None => out.push(call.row_err(format!("{v:?} is not a timestamp"))?),
        }
    }
    let zone = call.ret.clone();
    Ok(arrow::compute::cast(&arc(Int64Array::from(out)), &zone)?)
}

/// The date and time functions above.
pub fn functions() -> Vec<Fun> {
    let mut v = extractors();
    v.extend([
        // The session's zone: the local engine, like Athena's default, works in UTC.
        Fun::new(
            "current_timezone",
            |_, _| Ok(DataType::Utf8),
            |_, a| {
                let n = a.first().map_or(1, |a| a.len());
                Ok(arc(arrow::array::StringArray::from(vec!["UTC"; n])))
            },
        )
        .nullary(datafusion::logical_expr::Volatility::Stable),
        Fun::new(
            "timestamp_with_zone_literal",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(ms_utc())
            },
            timestamp_literal,
        )
        .literal_type(|n, t, lits| {
            use datafusion::common::ScalarValue as S;
            arity(n, t, &[1])?;
            let zone = match lits.first() {
                Some(Some(S::Utf8(Some(v)) | S::Utf8View(Some(v)) | S::LargeUtf8(Some(v)))) => {
                    super::json_types::literal_zone(v).map(|(_, z)| zone_name(z))
                }
                _ => None,
            };
            let zone = zone.unwrap_or_else(|| "UTC".into());
            parse_zone(&zone)?;
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some(zone.into()),
            ))
        }),
        Fun::new("date_add", same_as_third, date_add),
        Fun::new(
            "date_diff",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(DataType::Int64)
            },
            date_diff,
        ),
        Fun::new(
            "date_format",
            |n, t| {
                arity(n, t, &[2])?;
                varchar(n, t)
            },
            |c, a| format_rows(c, a, mysql_items),
        ),
        Fun::new(
            "format_datetime",
            |n, t| {
                arity(n, t, &[2])?;
                varchar(n, t)
            },
            |c, a| format_rows(c, a, java_items),
        ),
        // Teradata's forms, which Athena has: DataFusion's functions of these names read
        // chrono's `%Y-%m-%d` and printed `to_char(t, 'yyyy-mm-dd')` as `yyyy-mm-dd`.
        Fun::new(
            "to_char",
            |n, t| {
                arity(n, t, &[2])?;
                varchar(n, t)
            },
            |c, a| format_rows(c, a, |f| teradata_items(f, false)),
        ),
        Fun::new(
            "to_timestamp",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(ms_naive())
            },
            |c, a| parse_rows(c, a, |f| teradata_items(f, true), false),
        ),
        Fun::new(
            "to_date",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Date32)
            },
            |c, a| {
                let t = parse_rows(c, a, |f| teradata_items(f, true), false)?;
                Ok(arrow::compute::cast(&t, &DataType::Date32)?)
            },
        ),
        Fun::new(
            "date_parse",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(ms_naive())
            },
            |c, a| parse_rows(c, a, mysql_items, false),
        ),
        Fun::new(
            "parse_datetime",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(ms_utc())
            },
            |c, a| parse_rows(c, a, java_items, true),
        ),
        Fun::new(
            "from_unixtime",
            |n, t| {
                arity(n, t, &[1, 2, 3])?;
                Ok(ms_utc())
            },
            unixtime,
        )
        .literal_type(|n, t, lits| {
            use datafusion::common::ScalarValue as S;
            arity(n, t, &[1, 2, 3])?;
            let int = |v: Option<&Option<&S>>| match v {
                Some(Some(v)) => match v.cast_to(&DataType::Int64) {
                    Ok(S::Int64(Some(x))) => Ok(x),
                    _ => Err(DataFusionError::Plan(
                        "the offset must be integer literals".into(),
                    )),
                },
                _ => Err(DataFusionError::Plan(
                    "the offset must be integer literals".into(),
                )),
            };
            let zone = match t.len() {
                2 => zone_literal(lits.get(1))?,
                3 => {
                    let (h, m) = (int(lits.get(1))?, int(lits.get(2))?);
                    let total = h * 60 + if h < 0 { -m.abs() } else { m.abs() };
                    let sign = if total < 0 { '-' } else { '+' };
                    format!("{sign}{:02}:{:02}", total.abs() / 60, total.abs() % 60)
                }
                _ => "UTC".into(),
            };
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some(zone.into()),
            ))
        }),
        Fun::new(
            "to_unixtime",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Float64)
            },
            to_unixtime,
        ),
        Fun::new(
            "date",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Date32)
            },
            date,
        ),
        Fun::new(
            "from_iso8601_date",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Date32)
            },
            from_iso8601_date,
        ),
        Fun::new(
            "to_iso8601",
            |n, t| {
                arity(n, t, &[1])?;
                varchar(n, t)
            },
            to_iso8601,
        ),
        Fun::new(
            "with_timezone",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Timestamp(
                    timestamp_unit(&t[0]),
                    Some("UTC".into()),
                ))
            },
            with_timezone,
        )
        .literal_type(|n, t, lits| {
            arity(n, t, &[2])?;
            Ok(DataType::Timestamp(
                timestamp_unit(&t[0]),
                Some(zone_literal(lits.get(1))?.into()),
            ))
        }),
        Fun::new(
            "at_timezone",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Timestamp(
                    timestamp_unit(&t[0]),
                    Some("UTC".into()),
                ))
            },
            at_timezone,
        )
        .literal_type(|n, t, lits| {
            arity(n, t, &[2])?;
            Ok(DataType::Timestamp(
                timestamp_unit(&t[0]),
                Some(zone_literal(lits.get(1))?.into()),
            ))
        }),
        Fun::new(
            "from_iso8601_timestamp_nanos",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Timestamp(
                    TimeUnit::Nanosecond,
                    Some("UTC".into()),
                ))
            },
            from_iso8601_timestamp_nanos,
        )
        .literal_type(|n, t, lits| {
            arity(n, t, &[1])?;
            Ok(DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some(super::iso8601_literal_zone(lits.first()).into()),
            ))
        }),
        Fun::new(
            "last_day_of_month",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Date32)
            },
            last_day_of_month,
        ),
    ]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn month_arithmetic_clamps_and_counts_whole_months() {
        assert_eq!(
            add_months(dt("2020-01-31 00:00:00"), 1),
            Some(dt("2020-02-29 00:00:00"))
        );
        assert_eq!(
            months_between(dt("2020-01-31 00:00:00"), dt("2020-02-29 00:00:00")),
            1
        );
        assert_eq!(
            months_between(dt("2020-01-15 00:00:00"), dt("2020-02-14 00:00:00")),
            0
        );
        assert_eq!(
            months_between(dt("2020-02-14 00:00:00"), dt("2020-01-15 00:00:00")),
            0
        );
        assert_eq!(
            months_between(dt("2019-01-01 00:00:00"), dt("2020-01-01 00:00:00")) / 12,
            1
        );
    }

    #[tokio::test]
    async fn teradata_formats_as_athena_reads_them() {
        let t = dt("1988-04-08 14:03:04");
        let f = |fmt: &str| render(&teradata_items(fmt, false).unwrap(), t, None);
        assert_eq!(f("yyyy/mm/dd hh24:mi:ss"), "1988/04/08 14:03:04");
        assert_eq!(f("yy.mm.dd hh"), "88.04.08 02");
        assert_eq!(f("dd-mm-yyyy;mi:ss"), "08-04-1988;03:04");
        for bad in ["YYYY", "yyyy-mm-dd x", "yyy", "mmm"] {
            assert!(teradata_items(bad, false).is_err(), "{bad}");
        }
        let rows = crate::trino::csv_rows(
            "SELECT to_timestamp('1988/4/8 2:3:4', 'yyyy/mm/dd hh24:mi:ss'), \
             to_date('2020/12/04', 'yyyy/mm/dd'), \
             to_char(TIMESTAMP '2020-12-18 15:20:05', 'yyyy/mmdd hh24:mi:ss'), \
             try(to_date('2020-13-01', 'yyyy-mm-dd'))",
        )
        .await
        .unwrap();
        assert_eq!(
            rows,
            ["1988-04-08 02:03:04.000,2020-12-04,2020/1218 15:20:05,"]
        );
    }

    /// A row in the same step of its format as the row before repeats that row's text: the
    /// texts are those of formatting each row on its own, for sorted and unsorted rows around
    /// step boundaries, before the epoch, NULLs, with and without a zone.
    #[test]
    fn formats_repeated_within_a_step_match_each_rows_own() {
        assert_eq!(
            format_step(&mysql_items("%Y-%m-%d %H:00").unwrap()),
            Some(3_600)
        );
        assert_eq!(format_step(&mysql_items("%Y-%m").unwrap()), Some(86_400));
        assert_eq!(format_step(&mysql_items("%r").unwrap()), Some(1));
        assert_eq!(format_step(&mysql_items("%H:%i:%s.%f").unwrap()), None);
        assert_eq!(
            format_step(&java_items("yyyy-MM-dd HH:mm").unwrap()),
            Some(60)
        );
        assert_eq!(format_step(&java_items("HH:mm:ss.SSS").unwrap()), None);
        let hour = 3_600_000_i64;
        let mut ms: Vec<Option<i64>> = Vec::new();
        for h in -30..30 {
            for extra in [-1, 0, 1, 59_999, 60_000, hour / 2] {
                ms.push(Some(h * hour + extra));
            }
            if h % 7 == 0 {
                ms.push(None);
            }
        }
        let unsorted: Vec<Option<i64>> = ms.iter().rev().step_by(3).cloned().collect();
        ms.extend(unsorted);
        let mysql: [&str; 5] = [
            "%Y-%m-%d %H:00",
            "%Y-%m-%d",
            "%a %W %b %e %l%p",
            "%T",
            "%i:%s",
        ];
        let java: [&str; 4] = [
            "yyyy-MM-dd HH:mm",
            "EEE D w kk KK",
            "yyyy-MM-dd'T'HH:mm:ss z",
            "Z",
        ];
        for tz in [None, Some("UTC")] {
            let a: ArrayRef = Arc::new(
                TimestampMillisecondArray::from(ms.clone()).with_timezone_opt(tz.map(Arc::from)),
            );
            let (kind, vals) = wall_times(&a).unwrap();
            let zone = match &kind {
                Kind::Zoned(_, z, name) => Some((z, name.as_str())),
                _ => None,
            };
            let cases = mysql
                .iter()
                .map(|f| (*f, mysql_items as fn(&str) -> _))
                .chain(java.iter().map(|f| (*f, java_items as fn(&str) -> _)));
            for (f, items_of) in cases {
                let fmts = StringArray::from(vec![f; ms.len()]);
                let got = format_same_step(&a, &fmts, items_of).unwrap().expect(f);
                let got = got.as_string::<i32>();
                let items = items_of(f).unwrap();
                for (i, v) in vals.iter().enumerate() {
                    let want = v.map(|t| render(&items, t, zone));
                    assert_eq!(
                        got.is_valid(i).then(|| got.value(i).to_string()),
                        want,
                        "{f} {tz:?} row {i}"
                    );
                }
            }
        }
        // A fraction of a second, a zone other than UTC and a date take the general path.
        let fmts = StringArray::from(vec!["%f"; ms.len()]);
        let a: ArrayRef = Arc::new(TimestampMillisecondArray::from(ms.clone()));
        assert!(format_same_step(&a, &fmts, mysql_items).unwrap().is_none());
        let a: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(ms.clone()).with_timezone("Europe/Paris"));
        let fmts = StringArray::from(vec!["%H"; ms.len()]);
        assert!(format_same_step(&a, &fmts, mysql_items).unwrap().is_none());
    }

    #[test]
    fn mysql_and_java_formats() {
        let t = dt("2001-08-22 03:04:05");
        let f = |fmt: &str| render(&mysql_items(fmt).unwrap(), t, None);
        assert_eq!(f("%Y-%m-%d %H:%i:%s"), "2001-08-22 03:04:05");
        assert_eq!(f("%W %M %e %l%p %%"), "Wednesday August 22 3AM %");
        let j = |fmt: &str| render(&java_items(fmt).unwrap(), t, None);
        assert_eq!(j("yyyy-MM-dd'T'HH:mm:ss.SSS"), "2001-08-22T03:04:05.000");
        assert_eq!(j("EEE, d MMM yyyy"), "Wed, 22 Aug 2001");
        let p = parse_format(&mysql_items("%Y-%m-%d %H:%i:%s.%f").unwrap()).unwrap();
        let q = parse_format(&mysql_items("%d-%b-%y %l.%i.%s.%f %p").unwrap()).unwrap();
        assert_eq!(
            parse_with("31-MAY-69 04.59.59.999000 AM", &q).map(|x| x.0),
            Some(dt("2069-05-31 04:59:59") + Duration::milliseconds(999))
        );
        assert_eq!(
            parse_with("2001-08-22 03:04:05.321", &p).map(|x| x.0.and_utc().timestamp_millis()),
            Some(dt("2001-08-22 03:04:05").and_utc().timestamp_millis() + 321)
        );
    }
}
