//! Reading iCalendar data with the `icalendar` crate: parse a calendar object, resolve
//! DATE / DATE-TIME values (`TZID`, UTC, floating, `VALUE=DATE`, comma lists) into
//! [`IcsTime`], and read an event's text fields and duration.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, Event, Property};

use super::error::CalendarError;
use super::times::{local_instant, Moment};

/// Parse calendar data (one or more VCALENDAR objects are accepted; a feed is usually one).
pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
    let text = text.trim_start_matches('\u{feff}');
    text.parse::<Calendar>()
        .map_err(|e| CalendarError::BadIcs(first_line(&e)))
}

fn first_line(s: &str) -> String {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s);
    line.chars().take(200).collect()
}

/// A resolved DATE or DATE-TIME value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsTime {
    /// `VALUE=DATE`.
    Date(NaiveDate),
    /// A local time in a zone (`TZID=...`, or floating, which is the person's zone).
    Zoned(NaiveDateTime, Tz),
    /// A UTC time (`...Z`).
    Utc(DateTime<Utc>),
}

impl IcsTime {
    /// As a [`Moment`] (dates stay dates).
    pub fn moment(&self) -> Moment {
        match self {
            IcsTime::Date(d) => Moment::Date(*d),
            IcsTime::Zoned(n, tz) => Moment::At(local_instant(*n, *tz)),
            IcsTime::Utc(t) => Moment::At(*t),
        }
    }

    /// As a date-time for the `rrule` crate: in its zone, so that a rule keeps the local
    /// wall time across DST changes. Dates are expanded as midnight UTC (no DST at all)
    /// and read back as dates.
    pub fn rrule_dt(&self) -> DateTime<rrule::Tz> {
        match self {
            IcsTime::Date(d) => {
                rrule::Tz::UTC.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
            }
            IcsTime::Zoned(n, tz) => local_instant(*n, *tz).with_timezone(&rrule::Tz::Tz(*tz)),
            IcsTime::Utc(t) => t.with_timezone(&rrule::Tz::UTC),
        }
    }

    /// The zone local times of this value are read in (UTC for dates and UTC values).
    pub fn zone(&self) -> Tz {
        match self {
            IcsTime::Zoned(_, tz) => *tz,
            _ => chrono_tz::UTC,
        }
    }
}

/// A zone from a `TZID`: an IANA name, or one with a prefix (`/mozilla.org/.../Europe/Berlin`);
/// anything else is taken as `fallback` (the person's zone).
pub fn resolve_tzid(tzid: &str, fallback: Tz) -> Tz {
    let t = tzid.trim().trim_matches('"');
    if let Ok(tz) = t.parse::<Tz>() {
        return tz;
    }
    for (i, c) in t.char_indices() {
        if c == '/' {
            if let Ok(tz) = t[i + 1..].parse::<Tz>() {
                return tz;
            }
        }
    }
    match t {
        "UTC" | "GMT" | "Z" | "Etc/UTC" => chrono_tz::UTC,
        _ => fallback,
    }
}

/// Every value of a property (EXDATE and RDATE may hold comma-separated lists), resolved;
/// values that cannot be read are skipped. Floating values are in `zone`.
pub fn times_of(prop: &Property, zone: Tz) -> Vec<IcsTime> {
    if prop
        .params()
        .get("VALUE")
        .is_some_and(|v| v.value().eq_ignore_ascii_case("PERIOD"))
    {
        // RDATE;VALUE=PERIOD:start/end: the starts.
        return prop
            .value()
            .split(',')
            .filter_map(|p| p.split('/').next())
            .filter_map(|v| one_time(prop, v, zone))
            .collect();
    }
    prop.value()
        .split(',')
        .filter_map(|v| one_time(prop, v, zone))
        .collect()
}

/// The (first) value of a property, resolved.
pub fn time_of(prop: &Property, zone: Tz) -> Option<IcsTime> {
    times_of(prop, zone).into_iter().next()
}

fn one_time(prop: &Property, value: &str, zone: Tz) -> Option<IcsTime> {
    let mut single = Property::new(prop.key(), value.trim());
    for param in prop.params().values() {
        if !param.key().eq_ignore_ascii_case("VALUE") || param.value().eq_ignore_ascii_case("DATE")
        {
            single.append_parameter(param.clone());
        }
    }
    Some(match DatePerhapsTime::from_property(&single)? {
        DatePerhapsTime::Date(d) => IcsTime::Date(d),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => IcsTime::Utc(t),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(n)) => IcsTime::Zoned(n, zone),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            IcsTime::Zoned(date_time, resolve_tzid(&tzid, zone))
        }
    })
}

/// A text property (already unescaped by the parser), trimmed; `None` when empty.
pub fn text(ev: &Event, key: &str) -> Option<String> {
    ev.property_value(key)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A DURATION value (`PT1H30M`, `P1D`, `P1W`), read with the crate's ISO 8601 parser.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let v = value.trim().trim_start_matches('+');
    if v.starts_with('-') {
        return None;
    }
    // The crate reads durations for REFRESH-INTERVAL; borrow that parser.
    let mut probe = Calendar::empty();
    probe.append_property(Property::new("REFRESH-INTERVAL", v));
    probe.get_ttl()
}

/// The start of an event and how long it lasts: DTEND - DTSTART, else DURATION, else a
/// day for a date and nothing for a date-time (RFC 5545 3.6.1).
pub fn start_and_length(ev: &Event, zone: Tz) -> Option<(IcsTime, Duration)> {
    let start = time_of(ev.properties().get("DTSTART")?, zone)?;
    let end = ev.properties().get("DTEND").and_then(|p| time_of(p, zone));
    let length = match (start, end) {
        (IcsTime::Date(s), Some(IcsTime::Date(e))) => e - s,
        (s, Some(e)) => e.moment().instant(zone) - s.moment().instant(zone),
        (s, None) => match ev.property_value("DURATION").and_then(parse_duration) {
            Some(d) => d,
            None if matches!(s, IcsTime::Date(_)) => Duration::days(1),
            None => Duration::zero(),
        },
    };
    Some((start, length.max(Duration::zero())))
}

/// The master event of `uid` (the one without RECURRENCE-ID).
pub fn master<'a>(cal: &'a Calendar, uid: &str) -> Option<&'a Event> {
    cal.events().find(|e| {
        e.property_value("UID") == Some(uid) && !e.properties().contains_key("RECURRENCE-ID")
    })
}

/// The uids of the events in `cal`, in order, without repeats.
pub fn uids(cal: &Calendar) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in cal.events() {
        if let Some(uid) = e.property_value("UID") {
            if !out.iter().any(|u| u == uid) {
                out.push(uid.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    const SAMPLE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n\
DTSTART;TZID=/mozilla.org/20050126_1/America/New_York:20260310T090000\r\n\
DURATION:PT1H30M\r\nSUMMARY:Call\\, then lunch\r\n\
EXDATE;TZID=America/New_York:20260317T090000,20260324T090000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20260310\r\nSUMMARY:Day\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn values_resolve() {
        let cal = parse(SAMPLE).unwrap();
        let a = master(&cal, "a").unwrap();
        assert_eq!(text(a, "SUMMARY").as_deref(), Some("Call, then lunch"));
        let (start, len) = start_and_length(a, Berlin).unwrap();
        assert_eq!(start.zone(), chrono_tz::America::New_York);
        assert_eq!(
            start.moment(),
            Moment::At(Utc.with_ymd_and_hms(2026, 3, 10, 13, 0, 0).unwrap())
        );
        assert_eq!(len, Duration::minutes(90));
        let ex = a.multi_properties().get("EXDATE").unwrap();
        let all: Vec<_> = ex.iter().flat_map(|p| times_of(p, Berlin)).collect();
        assert_eq!(all.len(), 2);
        let b = master(&cal, "b").unwrap();
        let (start, len) = start_and_length(b, Berlin).unwrap();
        assert!(matches!(start, IcsTime::Date(_)));
        assert_eq!(len, Duration::days(1));
        assert_eq!(uids(&cal), vec!["a", "b"]);
        assert!(parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n").is_err());
    }
}
