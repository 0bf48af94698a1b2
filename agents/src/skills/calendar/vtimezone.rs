//! A VTIMEZONE for an IANA zone, from `chrono-tz`'s offsets (RFC 5545 3.6.5): the
//! transitions over the years an event needs, as STANDARD / DAYLIGHT observances with
//! their onsets listed as RDATEs. Written so that clients and servers that do not know
//! the zone by name still read TZID times right.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

/// A change of offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transition {
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    name: String,
    daylight: bool,
}

fn offset_secs(zone: Tz, t: DateTime<Utc>) -> i32 {
    zone.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

fn observance(zone: Tz, t: DateTime<Utc>) -> (String, bool) {
    let o = zone.offset_from_utc_datetime(&t.naive_utc());
    (
        o.abbreviation().unwrap_or(zone.name()).to_string(),
        !o.dst_offset().is_zero(),
    )
}

/// Offset changes of `zone` in `[from, to)`, found day by day then to the second.
fn transitions(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut t = from;
    let mut before = offset_secs(zone, t);
    while t < to {
        let next = t + Duration::days(1);
        let after = offset_secs(zone, next);
        if after != before {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_secs(zone, mid) == before {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let (name, daylight) = observance(zone, hi);
            out.push(Transition {
                at: hi,
                from: before,
                to: after,
                name,
                daylight,
            });
        }
        before = after;
        t = next;
    }
    out
}

fn fmt_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    if a % 60 != 0 {
        format!("{sign}{:02}{:02}{:02}", a / 3600, a / 60 % 60, a % 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
    }
}

fn local(t: DateTime<Utc>, offset: i32) -> NaiveDateTime {
    t.naive_utc() + Duration::seconds(i64::from(offset))
}

/// The VTIMEZONE of `zone` covering `years` years from the year before `around`.
pub fn vtimezone(zone: Tz, around: DateTime<Utc>, years: i32) -> String {
    let y0 = around.year() - 1;
    let start = Utc
        .with_ymd_and_hms(y0, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(around);
    let end = Utc
        .with_ymd_and_hms(y0 + years.max(1) + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(around + Duration::days(800));
    let trans = transitions(zone, start, end);
    let mut s = format!("BEGIN:VTIMEZONE\r\nTZID:{}\r\n", zone.name());
    // Group transitions of the same kind, offsets and name into one observance.
    let mut groups: Vec<(Transition, Vec<NaiveDateTime>)> = Vec::new();
    if trans.is_empty() {
        let off = offset_secs(zone, start);
        let (name, daylight) = observance(zone, start);
        let t = Transition {
            at: start,
            from: off,
            to: off,
            name,
            daylight,
        };
        groups.push((t, vec![local(start, off)]));
    }
    for t in trans {
        let onset = local(t.at, t.from);
        match groups.iter_mut().find(|(g, _)| {
            g.from == t.from && g.to == t.to && g.name == t.name && g.daylight == t.daylight
        }) {
            Some((_, onsets)) => onsets.push(onset),
            None => groups.push((t, vec![onset])),
        }
    }
    for (t, onsets) in groups {
        let kind = if t.daylight { "DAYLIGHT" } else { "STANDARD" };
        s.push_str(&format!("BEGIN:{kind}\r\n"));
        for (i, o) in onsets.iter().enumerate() {
            let key = if i == 0 { "DTSTART" } else { "RDATE" };
            s.push_str(&format!("{key}:{}\r\n", o.format("%Y%m%dT%H%M%S")));
        }
        s.push_str(&format!(
            "TZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\nTZNAME:{}\r\nEND:{kind}\r\n",
            fmt_offset(t.from),
            fmt_offset(t.to),
            t.name
        ));
    }
    s.push_str("END:VTIMEZONE\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_has_both_observances() {
        let around = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let v = vtimezone(chrono_tz::Europe::Berlin, around, 2);
        assert!(v.contains("TZID:Europe/Berlin\r\n"));
        assert!(
            v.contains("BEGIN:DAYLIGHT\r\nDTSTART:20250330T020000\r\nRDATE:20260329T020000\r\n"),
            "{v}"
        );
        assert!(v.contains("TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"));
        assert!(
            v.contains("BEGIN:STANDARD\r\nDTSTART:20251026T030000\r\n"),
            "{v}"
        );
        let tokyo = vtimezone(chrono_tz::Asia::Tokyo, around, 2);
        assert!(
            tokyo.contains("TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\n"),
            "{tokyo}"
        );
        assert_eq!(fmt_offset(-(3 * 3600 + 1800)), "-0330");
    }
}
