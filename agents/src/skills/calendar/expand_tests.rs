//! Unit tests of recurrence expansion.

use super::*;
use crate::skills::calendar::times::{self, show};
use chrono_tz::Europe::Berlin;

fn cal(body: &str) -> Calendar {
    let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}END:VCALENDAR\r\n");
    ics::parse(&text.replace('\n', "\r\n").replace("\r\r\n", "\r\n")).unwrap()
}

fn range(a: &str, b: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    times::parse_range(a, b, Berlin).unwrap()
}

const WEEKLY: &str = "BEGIN:VEVENT
UID:standup
DTSTART;TZID=Europe/Berlin:20260316T090000
DTEND;TZID=Europe/Berlin:20260316T093000
RRULE:FREQ=WEEKLY;UNTIL=20260420T090000
EXDATE;TZID=Europe/Berlin:20260406T090000
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:standup
RECURRENCE-ID;TZID=Europe/Berlin:20260330T090000
DTSTART;TZID=Europe/Berlin:20260331T140000
DTEND;TZID=Europe/Berlin:20260331T143000
SUMMARY:Standup (moved)
END:VEVENT
BEGIN:VEVENT
UID:standup
RECURRENCE-ID:20260413T070000Z
STATUS:CANCELLED
DTSTART;TZID=Europe/Berlin:20260413T090000
SUMMARY:Standup
END:VEVENT
";

#[test]
fn weekly_across_dst_with_exdate_and_overrides() {
    let c = cal(WEEKLY);
    let (a, b) = range("2026-03-01", "2026-05-01");
    let got: Vec<String> = occurrences(&c, Berlin, a, b)
        .iter()
        .map(|o| format!("{} {}", show(o.start.instant(Berlin), Berlin), o.summary))
        .collect();
    assert_eq!(
        got,
        vec![
            "2026-03-16 09:00 Standup",
            "2026-03-23 09:00 Standup",
            // 29 March: DST starts; 09:00 stays 09:00 local. 30 March moved to the 31st.
            "2026-03-31 14:00 Standup (moved)",
            // 6 April excluded, 13 April cancelled, 20 April is UNTIL (inclusive).
            "2026-04-20 09:00 Standup",
        ]
    );
    let occ = occurrences(&c, Berlin, a, b);
    assert!(occ.iter().all(|o| o.recurring));
    assert_eq!(
        occ[0].start,
        Moment::At(Utc.with_ymd_and_hms(2026, 3, 16, 8, 0, 0).unwrap())
    );
    assert_eq!(
        occ[3].start,
        Moment::At(Utc.with_ymd_and_hms(2026, 4, 20, 7, 0, 0).unwrap())
    );
    // A range that holds only the moved occurrence's original slot finds nothing there.
    let (a, b) = range("2026-03-30T08:00", "2026-03-30T10:00");
    assert!(occurrences(&c, Berlin, a, b).is_empty());
}

#[test]
fn autumn_dst_and_other_zones() {
    let c = cal("BEGIN:VEVENT
UID:w
DTSTART;TZID=Europe/Berlin:20261019T090000
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:W
END:VEVENT
BEGIN:VEVENT
UID:ny
DTSTART;TZID=America/New_York:20261020T090000
DTEND;TZID=America/New_York:20261020T100000
SUMMARY:NY
END:VEVENT
BEGIN:VEVENT
UID:utc
DTSTART:20261021T120000Z
DTEND:20261021T130000Z
SUMMARY:U
END:VEVENT
");
    let (a, b) = range("2026-10-01", "2026-11-30");
    let got: Vec<String> = occurrences(&c, Berlin, a, b)
        .iter()
        .map(|o| format!("{} {}", show(o.start.instant(Berlin), Berlin), o.summary))
        .collect();
    assert_eq!(
        got,
        vec![
            "2026-10-19 09:00 W",
            "2026-10-20 15:00 NY",
            "2026-10-21 14:00 U",
            "2026-10-26 09:00 W",
            "2026-11-02 09:00 W",
        ]
    );
}

#[test]
fn all_day_and_rdate() {
    let c = cal("BEGIN:VEVENT
UID:d
DTSTART;VALUE=DATE:20260301
DTEND;VALUE=DATE:20260302
RRULE:FREQ=DAILY;UNTIL=20260304
EXDATE;VALUE=DATE:20260302
RDATE;VALUE=DATE:20260310
SUMMARY:Day
END:VEVENT
BEGIN:VEVENT
UID:trip
DTSTART;VALUE=DATE:20260305
DTEND;VALUE=DATE:20260308
TRANSP:TRANSPARENT
SUMMARY:Trip
END:VEVENT
");
    let (a, b) = range("2026-03-01", "2026-03-31");
    let occ = occurrences(&c, Berlin, a, b);
    let got: Vec<String> = occ
        .iter()
        .map(|o| format!("{} {}", times::show_span(o.start, o.end, Berlin), o.summary))
        .collect();
    assert_eq!(
        got,
        vec![
            "2026-03-01 (all day) Day",
            "2026-03-03 (all day) Day",
            "2026-03-04 (all day) Day",
            "2026-03-05 - 2026-03-07 (all day) Trip",
            "2026-03-10 (all day) Day",
        ]
    );
    assert!(!occ[3].busy && occ[0].busy && !occ[3].recurring && occ[0].recurring);
    // A trip that started before the range still shows.
    let (a, b) = range("2026-03-06", "2026-03-06");
    assert_eq!(occurrences(&c, Berlin, a, b).len(), 1);
}

#[test]
fn bad_rules_do_not_break_the_rest() {
    let c = cal("BEGIN:VEVENT
UID:x
DTSTART:20260301T100000Z
RRULE:FREQ=SOMETIMES
SUMMARY:X
END:VEVENT
BEGIN:VEVENT
UID:y
DTSTART:20260301T110000
SUMMARY:Floating
END:VEVENT
");
    let (a, b) = range("2026-03-01", "2026-03-02");
    let occ = occurrences(&c, Berlin, a, b);
    assert_eq!(occ.len(), 2);
    assert_eq!(
        show(occ[1].start.instant(Berlin), Berlin),
        "2026-03-01 11:00"
    );
}

#[test]
fn until_rewritten() {
    let s = IcsTime::Zoned(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        Berlin,
    );
    assert_eq!(
        until_in_utc("FREQ=WEEKLY;UNTIL=20260330T090000", &s),
        "FREQ=WEEKLY;UNTIL=20260330T070000Z"
    );
    assert_eq!(until_in_utc("FREQ=DAILY;COUNT=2", &s), "FREQ=DAILY;COUNT=2");
}
