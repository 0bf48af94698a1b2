//! Free time: the gaps between busy occurrences (overlaps merged) inside a range.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::expand::Occurrence;

/// The free slots of `[from, to)` at least `min` long, given the occurrences (those not
/// busy are ignored).
pub fn free_slots(
    occurrences: &[Occurrence],
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = occurrences
        .iter()
        .filter(|o| o.busy)
        .map(|o| o.span(zone))
        .map(|(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .collect();
    busy.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (s, e) in busy {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    let mut cursor = from;
    for (s, e) in merged {
        if s - cursor >= min && s > cursor {
            out.push((cursor, s));
        }
        cursor = cursor.max(e);
    }
    if to - cursor >= min && to > cursor {
        out.push((cursor, to));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::calendar::times::{parse, parse_range, show, Moment};
    use chrono_tz::Europe::Berlin;

    fn occ(a: &str, b: &str, busy: bool) -> Occurrence {
        Occurrence {
            uid: "x".into(),
            summary: "x".into(),
            location: None,
            start: parse(a, Berlin).unwrap(),
            end: parse(b, Berlin).unwrap(),
            recurring: false,
            busy,
        }
    }

    #[test]
    fn gaps_between_merged_busy_time() {
        let (from, to) = parse_range("2026-03-02T08:00", "2026-03-02T18:00", Berlin).unwrap();
        let events = vec![
            occ("2026-03-02T07:00", "2026-03-02T09:00", true),
            occ("2026-03-02T10:00", "2026-03-02T11:00", true),
            occ("2026-03-02T10:30", "2026-03-02T12:00", true),
            occ("2026-03-02T12:10", "2026-03-02T13:00", true),
            occ("2026-03-02T14:00", "2026-03-02T16:00", false),
        ];
        let slots: Vec<String> = free_slots(&events, Berlin, from, to, Duration::minutes(30))
            .iter()
            .map(|(a, b)| format!("{} - {}", show(*a, Berlin), show(*b, Berlin)))
            .collect();
        assert_eq!(
            slots,
            vec![
                "2026-03-02 09:00 - 2026-03-02 10:00",
                "2026-03-02 13:00 - 2026-03-02 18:00"
            ]
        );
        // An all-day event blocks its whole local day.
        let day = Occurrence {
            start: Moment::Date(chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            end: Moment::Date(chrono::NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()),
            ..occ("2026-03-02T07:00", "2026-03-02T09:00", true)
        };
        assert!(free_slots(&[day], Berlin, from, to, Duration::minutes(1)).is_empty());
    }
}
