//! Times as the model writes them and as it is shown them: RFC 3339, a local
//! `YYYY-MM-DDTHH:MM` in the person's zone, or a `YYYY-MM-DD` date (all day).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::error::CalendarError;

/// A point of an event: a whole day, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Moment {
    /// A date (all-day events).
    Date(NaiveDate),
    /// An instant.
    At(DateTime<Utc>),
}

impl Moment {
    /// The instant this moment begins at in `zone` (a date: its local midnight).
    pub fn instant(&self, zone: Tz) -> DateTime<Utc> {
        match self {
            Moment::At(t) => *t,
            Moment::Date(d) => local_midnight(*d, zone),
        }
    }
}

/// The instant of local midnight of `date` in `zone` (the first instant of the day when
/// midnight falls in a DST gap).
pub fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    local_instant(date.and_time(chrono::NaiveTime::MIN), zone)
}

/// The instant of the local time `naive` in `zone`: the earlier one when it is ambiguous
/// (DST ends), and the same wall time an hour later when it does not exist (DST starts).
pub fn local_instant(naive: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let mut n = naive;
    for _ in 0..4 {
        if let Some(t) = zone.from_local_datetime(&n).earliest() {
            return t.with_timezone(&Utc);
        }
        n += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&naive)
}

/// Parse a time argument: RFC 3339, local `YYYY-MM-DDTHH:MM[:SS]` (or with a space) in
/// `zone`, or a date `YYYY-MM-DD`.
pub fn parse(value: &str, zone: Tz) -> Result<Moment, CalendarError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CalendarError::time(value, "empty"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Moment::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(Moment::Date(d));
    }
    let v2 = v.replacen(' ', "T", 1);
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&v2, fmt) {
            if zone.from_local_datetime(&n).earliest().is_none() {
                return Err(CalendarError::time(
                    value,
                    format!("this local time does not exist in {zone} (clocks change)"),
                ));
            }
            return Ok(Moment::At(local_instant(n, zone)));
        }
    }
    Err(CalendarError::time(
        value,
        "use YYYY-MM-DDTHH:MM (local), RFC 3339 with an offset, or YYYY-MM-DD",
    ))
}

/// Parse a range: `from` and `to` (a date `to` means the end of that day).
pub fn parse_range(
    from: &str,
    to: &str,
    zone: Tz,
) -> Result<(DateTime<Utc>, DateTime<Utc>), CalendarError> {
    let start = parse(from, zone)?.instant(zone);
    let end = match parse(to, zone)? {
        Moment::Date(d) => local_midnight(d + Duration::days(1), zone),
        Moment::At(t) => t,
    };
    if end <= start {
        return Err(CalendarError::time(to, "`to` must be after `from`"));
    }
    if end - start > Duration::days(3 * 366) {
        return Err(CalendarError::time(to, "ranges are limited to three years"));
    }
    Ok((start, end))
}

/// An instant as local time in `zone`: `YYYY-MM-DD HH:MM`.
pub fn show(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}

/// A span of an event in `zone`: `2026-03-30 09:00-10:00`, `2026-03-30 22:00 - 2026-03-31
/// 01:00`, `2026-03-30 (all day)` or `2026-03-30 - 2026-04-01 (all day)` (end inclusive).
pub fn show_span(start: Moment, end: Moment, zone: Tz) -> String {
    match (start, end) {
        (Moment::Date(s), Moment::Date(e)) => {
            let last = if e > s { e - Duration::days(1) } else { s };
            if last == s {
                format!("{s} (all day)")
            } else {
                format!("{s} - {last} (all day)")
            }
        }
        _ => {
            let (s, e) = (start.instant(zone), end.instant(zone));
            let (ls, le) = (s.with_timezone(&zone), e.with_timezone(&zone));
            if ls.date_naive() == le.date_naive() {
                format!("{}-{}", show(s, zone), le.format("%H:%M"))
            } else {
                format!("{} - {}", show(s, zone), show(e, zone))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    #[test]
    fn inputs() {
        let t = parse("2026-03-30T09:00", Berlin).unwrap();
        assert_eq!(
            t,
            Moment::At(Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap())
        );
        let t = parse("2026-03-02 09:00", Berlin).unwrap();
        assert_eq!(
            t,
            Moment::At(Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap())
        );
        let t = parse("2026-03-02T09:00:00-05:00", Berlin).unwrap();
        assert_eq!(
            t,
            Moment::At(Utc.with_ymd_and_hms(2026, 3, 2, 14, 0, 0).unwrap())
        );
        assert_eq!(
            parse("2026-03-02", Berlin).unwrap(),
            Moment::Date(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
        );
        assert!(parse("next tuesday", Berlin).is_err());
        assert!(parse("2026-03-29T02:30", Berlin).is_err());
        let (a, b) = parse_range("2026-03-02", "2026-03-02", Berlin).unwrap();
        assert_eq!(b - a, Duration::days(1));
        assert!(parse_range("2026-03-03", "2026-03-02T10:00", Berlin).is_err());
    }

    #[test]
    fn spans() {
        let d = |s: &str| Moment::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(
            show_span(d("2026-03-02"), d("2026-03-03"), Berlin),
            "2026-03-02 (all day)"
        );
        assert_eq!(
            show_span(d("2026-03-02"), d("2026-03-05"), Berlin),
            "2026-03-02 - 2026-03-04 (all day)"
        );
        let a = parse("2026-03-02T09:00", Berlin).unwrap();
        let b = parse("2026-03-02T10:30", Berlin).unwrap();
        assert_eq!(show_span(a, b, Berlin), "2026-03-02 09:00-10:30");
    }
}
