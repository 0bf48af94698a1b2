//! Writing events with the `icalendar` crate: a new VEVENT (times in the person's zone
//! with TZID and a VTIMEZONE, all-day as dates), and changes to an existing calendar
//! object's master VEVENT, everything else in the object kept.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, CalendarComponent, CalendarDateTime, Component, Event, EventLike};
use rrule::{RRule, Unvalidated};

use super::error::CalendarError;
use super::expand::until_in_utc;
use super::ics::{self, IcsTime};
use super::times::Moment;
use super::vtimezone::vtimezone;

/// Years of zone transitions written into a VTIMEZONE (a series may go on for long).
const ZONE_YEARS: i32 = 10;

/// What create and update set; `None` leaves a field as it is, `Some("")` removes a text
/// field or the rule.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// SUMMARY.
    pub summary: Option<String>,
    /// Start.
    pub start: Option<Moment>,
    /// End (a date end is the last day, inclusive).
    pub end: Option<Moment>,
    /// Length, instead of an end.
    pub duration: Option<Duration>,
    /// LOCATION.
    pub location: Option<String>,
    /// DESCRIPTION.
    pub description: Option<String>,
    /// RRULE (`FREQ=WEEKLY;COUNT=5`).
    pub rrule: Option<String>,
}

/// Start and exclusive end from the fields, `old` filling what is not given.
fn span(
    f: &Fields,
    old: Option<(Moment, Duration)>,
    zone: Tz,
) -> Result<(Moment, Moment), CalendarError> {
    let start = match (f.start, old) {
        (Some(s), _) => s,
        (None, Some((s, _))) => s,
        (None, None) => return Err(CalendarError::BadArgument("`start` is needed".into())),
    };
    let end = match (start, f.end, f.duration) {
        (Moment::Date(s), Some(Moment::Date(e)), _) => {
            Moment::Date(e + Duration::days(1)).max(Moment::Date(s + Duration::days(1)))
        }
        (Moment::At(_), Some(Moment::At(e)), _) => Moment::At(e),
        (_, Some(_), _) => {
            return Err(CalendarError::BadArgument(
                "`start` and `end` must both be dates (all day) or both times".into(),
            ))
        }
        (Moment::Date(s), None, Some(d)) => {
            Moment::Date(s + Duration::days(((d.num_minutes() + 1439) / 1440).max(1)))
        }
        (Moment::At(s), None, Some(d)) => Moment::At(s + d),
        (s, None, None) => match old {
            Some((_, len))
                if matches!(
                    (s, old.map(|o| o.0)),
                    (Moment::Date(_), Some(Moment::Date(_))) | (Moment::At(_), Some(Moment::At(_)))
                ) =>
            {
                match s {
                    Moment::Date(d) => Moment::Date(d + Duration::days(len.num_days().max(1))),
                    Moment::At(t) => Moment::At(t + len),
                }
            }
            _ => match s {
                Moment::Date(d) => Moment::Date(d + Duration::days(1)),
                Moment::At(t) => Moment::At(t + Duration::hours(1)),
            },
        },
    };
    if end.instant(zone) <= start.instant(zone) {
        return Err(CalendarError::BadArgument(
            "the end must be after the start".into(),
        ));
    }
    Ok((start, end))
}

/// A moment as an iCalendar value: a date, UTC when the zone is UTC or the local time is
/// ambiguous, else the local time with TZID.
fn value(m: Moment, zone: Tz) -> (icalendar::DatePerhapsTime, Option<Tz>) {
    match m {
        Moment::Date(d) => (d.into(), None),
        Moment::At(t) => {
            let local = t.with_timezone(&zone).naive_local();
            if zone == chrono_tz::UTC || zone.from_local_datetime(&local).single().is_none() {
                (CalendarDateTime::Utc(t).into(), None)
            } else {
                (
                    CalendarDateTime::WithTimezone {
                        date_time: local,
                        tzid: zone.name().to_string(),
                    }
                    .into(),
                    Some(zone),
                )
            }
        }
    }
}

fn as_ics(m: Moment, zone: Tz) -> IcsTime {
    match m {
        Moment::Date(d) => IcsTime::Date(d),
        Moment::At(t) => IcsTime::Zoned(t.with_timezone(&zone).naive_local(), zone),
    }
}

/// A checked RRULE value: uppercase, without `RRULE:`, valid for this start; a local
/// UNTIL of a timed event is written in UTC.
fn checked_rule(rule: &str, start: Moment, zone: Tz) -> Result<String, CalendarError> {
    let r = rule.trim();
    let r = r
        .strip_prefix("RRULE:")
        .or_else(|| r.strip_prefix("rrule:"))
        .unwrap_or(r)
        .to_ascii_uppercase();
    let s = as_ics(start, zone);
    let r = match s {
        IcsTime::Date(_) => r,
        _ => until_in_utc(&r, &s),
    };
    let probe = until_in_utc(&r, &s);
    probe
        .parse::<RRule<Unvalidated>>()
        .and_then(|u| u.validate(s.rrule_dt()))
        .map_err(|e| CalendarError::BadArgument(format!("bad rrule `{rule}`: {e}")))?;
    Ok(r)
}

fn set_text(ev: &mut Event, key: &str, v: &Option<String>) {
    match v.as_deref().map(str::trim) {
        None => {}
        Some("") => {
            ev.remove_property(key);
        }
        Some(t) => {
            ev.add_property(key, t);
        }
    }
}

/// Set DTSTART/DTEND; the zone whose VTIMEZONE the object needs, if any.
fn set_times(ev: &mut Event, start: Moment, end: Moment, zone: Tz) -> Option<Tz> {
    let (s, tz) = value(start, zone);
    let (e, tz2) = value(end, zone);
    ev.remove_property("DURATION");
    ev.starts(s);
    ev.ends(e);
    tz.or(tz2)
}

fn has_vtimezone(cal: &Calendar, zone: Tz) -> bool {
    cal.components.iter().any(|c| {
        matches!(c, CalendarComponent::Other(o)
            if o.component_kind() == "VTIMEZONE" && o.property_value("TZID") == Some(zone.name()))
    })
}

fn add_vtimezone(
    cal: &mut Calendar,
    zone: Tz,
    around: DateTime<Utc>,
    years: i32,
) -> Result<(), CalendarError> {
    if has_vtimezone(cal, zone) {
        return Ok(());
    }
    let tz: CalendarComponent = vtimezone(zone, around, years)
        .parse()
        .map_err(|e: String| CalendarError::BadIcs(e))?;
    // VTIMEZONEs go before the events (clients read them first).
    cal.components.insert(0, tz);
    Ok(())
}

fn stamp(ev: &mut Event) {
    let now = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    ev.add_property("DTSTAMP", now.clone());
    ev.add_property("LAST-MODIFIED", now);
}

/// The calendar object of a new event `uid`.
pub fn new_event(uid: &str, f: &Fields, zone: Tz) -> Result<String, CalendarError> {
    let summary = f.summary.as_deref().map(str::trim).unwrap_or("");
    if summary.is_empty() {
        return Err(CalendarError::BadArgument("`summary` is needed".into()));
    }
    let (start, end) = span(f, None, zone)?;
    let mut ev = Event::new();
    ev.uid(uid);
    ev.add_property("CREATED", Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    stamp(&mut ev);
    ev.add_property("SEQUENCE", "0");
    set_text(&mut ev, "SUMMARY", &f.summary);
    set_text(&mut ev, "LOCATION", &f.location);
    set_text(&mut ev, "DESCRIPTION", &f.description);
    let rule = match f.rrule.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => Some(checked_rule(r, start, zone)?),
        _ => None,
    };
    if let Some(r) = &rule {
        ev.add_property("RRULE", r.as_str());
    }
    let tz = set_times(&mut ev, start, end, zone);
    let mut cal = Calendar::empty();
    cal.append_property(icalendar::Property::new("VERSION", "2.0"));
    cal.append_property(icalendar::Property::new(
        "PRODID",
        "-//clawos//calendar//EN",
    ));
    cal.push(ev);
    if let Some(z) = tz {
        add_vtimezone(&mut cal, z, start.instant(zone), ZONE_YEARS)?;
    }
    Ok(tidy(&cal.to_string()))
}

/// The calendar object `data` with the master event `uid` changed by `f`.
pub fn update_event(data: &str, uid: &str, f: &Fields, zone: Tz) -> Result<String, CalendarError> {
    let mut cal = ics::parse(data)?;
    let mut need_tz = None;
    let mut found = false;
    for c in cal.components.iter_mut() {
        let CalendarComponent::Event(ev) = c else {
            continue;
        };
        if ev.property_value("UID") != Some(uid) || ev.properties().contains_key("RECURRENCE-ID") {
            continue;
        }
        found = true;
        let old = ics::start_and_length(ev, zone).map(|(s, l)| (s.moment(), l));
        if f.summary.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(CalendarError::BadArgument(
                "`summary` cannot be empty".into(),
            ));
        }
        set_text(ev, "SUMMARY", &f.summary);
        set_text(ev, "LOCATION", &f.location);
        set_text(ev, "DESCRIPTION", &f.description);
        let timing = f.start.is_some() || f.end.is_some() || f.duration.is_some();
        if timing {
            let (start, end) = span(f, old, zone)?;
            need_tz = set_times(ev, start, end, zone).map(|z| (z, start));
        }
        match f.rrule.as_deref().map(str::trim) {
            None => {}
            Some("") => {
                ev.remove_property("RRULE");
            }
            Some(r) => {
                let Some(start) = f.start.or(old.map(|o| o.0)) else {
                    return Err(CalendarError::BadIcs(format!(
                        "event `{uid}` has no DTSTART"
                    )));
                };
                let dtstart = ev
                    .properties()
                    .get("DTSTART")
                    .and_then(|p| ics::time_of(p, zone));
                let r = match dtstart {
                    Some(IcsTime::Zoned(_, z)) if !timing => checked_rule(r, start, z)?,
                    _ => checked_rule(r, start, zone)?,
                };
                ev.add_property("RRULE", r);
                if let Some(IcsTime::Zoned(_, z)) = dtstart {
                    if z.name() == zone.name() && need_tz.is_none() {
                        need_tz = Some((z, start));
                    }
                }
            }
        }
        let seq = ev
            .property_value("SEQUENCE")
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        ev.add_property("SEQUENCE", (seq + 1).to_string());
        stamp(ev);
    }
    if !found {
        return Err(CalendarError::NotFound {
            uid: uid.to_string(),
            calendar: String::new(),
        });
    }
    if let Some((z, start)) = need_tz {
        add_vtimezone(&mut cal, z, start.instant(zone), ZONE_YEARS)?;
    }
    Ok(tidy(&cal.to_string()))
}

/// Undo what `icalendar`'s writer adds to every component: DTSTAMP and UID inside
/// VTIMEZONE, STANDARD and DAYLIGHT, and DTSTAMP inside VALARM.
pub fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut stack: Vec<String> = Vec::new();
    let mut dropping = false;
    for line in text.split_inclusive('\n') {
        if dropping && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        dropping = false;
        let l = line.trim_end_matches(['\r', '\n']);
        if let Some(name) = l.strip_prefix("BEGIN:") {
            stack.push(name.to_ascii_uppercase());
        } else if l.starts_with("END:") {
            stack.pop();
        } else {
            let top = stack.last().map(String::as_str).unwrap_or("");
            let key = l
                .split([':', ';'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let tz_part = matches!(top, "VTIMEZONE" | "STANDARD" | "DAYLIGHT");
            if (tz_part && (key == "DTSTAMP" || key == "UID"))
                || (top == "VALARM" && key == "DTSTAMP")
            {
                dropping = true;
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
