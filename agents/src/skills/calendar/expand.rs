//! Events of a calendar object in a time range, recurring ones expanded with the `rrule`
//! crate: RRULE from a DTSTART in its own zone (local wall time kept across DST), RDATE,
//! EXDATE, and RECURRENCE-ID overrides that replace (move or cancel) the generated
//! occurrence. Done on the client whatever the server did with the range.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, Component, Event};
use rrule::{RRule, RRuleSet, Unvalidated};

use super::ics::{self, IcsTime};
use super::times::Moment;

/// Most occurrences of one event produced for one range.
pub const MAX_PER_EVENT: u16 = 2000;

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The event's UID.
    pub uid: String,
    /// SUMMARY (empty when none).
    pub summary: String,
    /// LOCATION.
    pub location: Option<String>,
    /// Start (a date for all-day events).
    pub start: Moment,
    /// End, exclusive (a date for all-day events).
    pub end: Moment,
    /// Part of a recurring series.
    pub recurring: bool,
    /// Counts as busy time (not `TRANSP:TRANSPARENT`).
    pub busy: bool,
}

impl Occurrence {
    /// Start and end instants in `zone`.
    pub fn span(&self, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start.instant(zone), self.end.instant(zone))
    }
}

/// The occurrences of every event in `cal` that overlap `[from, to)`, sorted by start.
/// Floating and all-day times are read in `zone`.
pub fn occurrences(
    cal: &Calendar,
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Occurrence> {
    let mut by_uid: BTreeMap<String, (Option<&Event>, Vec<&Event>)> = BTreeMap::new();
    for ev in cal.events() {
        let uid = ev.property_value("UID").unwrap_or_default().to_string();
        let entry = by_uid.entry(uid).or_default();
        if ev.properties().contains_key("RECURRENCE-ID") {
            entry.1.push(ev);
        } else if entry.0.is_none() {
            entry.0 = Some(ev);
        }
    }
    let mut out = Vec::new();
    for (uid, (master, overrides)) in by_uid {
        series(&uid, master, &overrides, zone, from, to, &mut out);
    }
    out.retain(|o| overlaps(o, zone, from, to));
    out.sort_by(|a, b| {
        (a.start.instant(zone), &a.summary, &a.uid).cmp(&(
            b.start.instant(zone),
            &b.summary,
            &b.uid,
        ))
    });
    out
}

fn overlaps(o: &Occurrence, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let (s, e) = o.span(zone);
    s < to && (e > from || (e == s && s >= from))
}

fn cancelled(ev: &Event) -> bool {
    ev.property_value("STATUS")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("CANCELLED"))
}

fn base(uid: &str, ev: &Event, recurring: bool, start: Moment, end: Moment) -> Occurrence {
    Occurrence {
        uid: uid.to_string(),
        summary: ics::text(ev, "SUMMARY").unwrap_or_default(),
        location: ics::text(ev, "LOCATION"),
        start,
        end,
        recurring,
        busy: !ev
            .property_value("TRANSP")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("TRANSPARENT")),
    }
}

fn end_of(start: &IcsTime, at: DateTime<rrule::Tz>, len: Duration) -> (Moment, Moment) {
    match start {
        IcsTime::Date(_) => {
            let d = at.date_naive();
            (
                Moment::Date(d),
                Moment::Date(d + Duration::days(len.num_days().max(1))),
            )
        }
        _ => {
            let s = at.with_timezone(&Utc);
            (Moment::At(s), Moment::At(s + len))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn series(
    uid: &str,
    master: Option<&Event>,
    overrides: &[&Event],
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut Vec<Occurrence>,
) {
    let mut master_len = None;
    let mut overridden = HashSet::new();
    if let Some(m) = master {
        if cancelled(m) {
            return;
        }
        if let Some((start, len)) = ics::start_and_length(m, zone) {
            master_len = Some(len);
            for o in overrides {
                if let Some(rid) = o
                    .properties()
                    .get("RECURRENCE-ID")
                    .and_then(|p| ics::time_of(p, zone))
                {
                    overridden.insert(like(&start, &rid).timestamp());
                }
            }
            let recurring = m.properties().contains_key("RRULE")
                || m.multi_properties().contains_key("RDATE")
                || !overrides.is_empty();
            let window = (from - len - Duration::days(2), to + Duration::days(2));
            for at in instants(m, &start, zone, window) {
                if overridden.contains(&at.timestamp()) {
                    continue;
                }
                let (s, e) = end_of(&start, at, len);
                out.push(base(uid, m, recurring, s, e));
            }
        }
    }
    for o in overrides {
        if cancelled(o) {
            continue;
        }
        let Some(start) = o
            .properties()
            .get("DTSTART")
            .and_then(|p| ics::time_of(p, zone))
        else {
            continue;
        };
        let len = match ics::start_and_length(o, zone) {
            Some((_, l))
                if o.properties().contains_key("DTEND")
                    || o.properties().contains_key("DURATION") =>
            {
                l
            }
            _ => master_len.unwrap_or_else(|| match start {
                IcsTime::Date(_) => Duration::days(1),
                _ => Duration::zero(),
            }),
        };
        let (s, e) = end_of(&start, start.rrule_dt(), len);
        out.push(base(uid, o, true, s, e));
    }
}

/// `t` in the form the series' start is expanded in (so that EXDATE, RDATE and
/// RECURRENCE-ID values compare with generated instants).
fn like(start: &IcsTime, t: &IcsTime) -> DateTime<rrule::Tz> {
    match (start, t) {
        (IcsTime::Date(_), IcsTime::Date(_)) => t.rrule_dt(),
        (IcsTime::Date(_), IcsTime::Zoned(n, _)) => IcsTime::Date(n.date()).rrule_dt(),
        (IcsTime::Date(_), IcsTime::Utc(u)) => IcsTime::Date(u.date_naive()).rrule_dt(),
        (_, IcsTime::Date(d)) => {
            // A date against a timed series: the occurrence on that day.
            let local = start.rrule_dt();
            let n = d.and_time(local.naive_local().time());
            IcsTime::Zoned(n, start.zone()).rrule_dt()
        }
        _ => {
            let tz = start.rrule_dt().timezone();
            t.rrule_dt().with_timezone(&tz)
        }
    }
}

/// The instants of a master event's occurrences in `window` (before overrides).
fn instants(
    ev: &Event,
    start: &IcsTime,
    zone: Tz,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<DateTime<rrule::Tz>> {
    let dt = start.rrule_dt();
    let tz = dt.timezone();
    let mut set = RRuleSet::new(dt);
    let rule = ev.property_value("RRULE").and_then(|r| {
        let fixed = until_in_utc(r, start);
        match fixed
            .parse::<RRule<Unvalidated>>()
            .and_then(|u| u.validate(dt))
        {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(rule = r, error = %e, "calendar: RRULE ignored");
                None
            }
        }
    });
    if let Some(v) = rule {
        set = set.rrule(v);
    }
    // DTSTART is always the first instance (RFC 5545 3.8.5.3); duplicates are removed below.
    set = set.rdate(dt);
    for p in ev.multi_properties().get("RDATE").into_iter().flatten() {
        for t in ics::times_of(p, zone) {
            set = set.rdate(like(start, &t));
        }
    }
    for p in ev.multi_properties().get("EXDATE").into_iter().flatten() {
        for t in ics::times_of(p, zone) {
            set = set.exdate(like(start, &t));
        }
    }
    let set = set
        .after(window.0.with_timezone(&tz))
        .before(window.1.with_timezone(&tz));
    let mut seen = HashSet::new();
    let mut out: Vec<DateTime<rrule::Tz>> = set
        .all(MAX_PER_EVENT)
        .dates
        .into_iter()
        .filter(|d| seen.insert(d.timestamp()))
        .collect();
    out.sort();
    out
}

/// The RRULE with an UNTIL that is not in UTC rewritten in UTC (the `rrule` crate wants
/// UTC when DTSTART has a zone): a local UNTIL is read in the start's zone, a date UNTIL
/// of a timed series means the end of that day.
pub fn until_in_utc(rule: &str, start: &IcsTime) -> String {
    rule.trim()
        .split(';')
        .map(|part| {
            let Some((k, v)) = part.split_once('=') else {
                return part.to_string();
            };
            if !k.trim().eq_ignore_ascii_case("UNTIL") || v.trim().ends_with(['Z', 'z']) {
                return part.to_string();
            }
            let v = v.trim();
            let utc = if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y%m%d") {
                match start {
                    IcsTime::Date(_) => {
                        Some(Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
                    }
                    _ => d
                        .and_hms_opt(23, 59, 59)
                        .map(|n| super::times::local_instant(n, start.zone())),
                }
            } else if let Ok(n) = chrono::NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S") {
                Some(match start {
                    IcsTime::Date(_) => Utc.from_utc_datetime(&n),
                    _ => super::times::local_instant(n, start.zone()),
                })
            } else {
                None
            };
            match utc {
                Some(u) => format!("UNTIL={}", u.format("%Y%m%dT%H%M%SZ")),
                None => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
