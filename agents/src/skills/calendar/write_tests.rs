//! Unit tests of event writing.

use super::*;
use crate::skills::calendar::expand::occurrences;
use crate::skills::calendar::times::{self, parse, show};
use chrono_tz::Europe::Berlin;

fn fields(summary: &str, start: &str, end: &str) -> Fields {
    Fields {
        summary: Some(summary.into()),
        start: Some(parse(start, Berlin).unwrap()),
        end: Some(parse(end, Berlin).unwrap()),
        ..Fields::default()
    }
}

#[test]
fn new_timed_recurring_event_reads_back() {
    let mut f = fields("Gym, then\nsauna", "2026-03-16T09:00", "2026-03-16T10:00");
    f.rrule = Some("freq=weekly;count=3".into());
    let text = new_event("u1", &f, Berlin).unwrap();
    assert!(
        text.contains("DTSTART;TZID=Europe/Berlin:20260316T090000\r\n"),
        "{text}"
    );
    assert!(text.contains("RRULE:FREQ=WEEKLY;COUNT=3\r\n"));
    assert!(text.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"));
    let vtz = &text[text.find("BEGIN:VTIMEZONE").unwrap()..text.find("END:VTIMEZONE").unwrap()];
    assert!(!vtz.contains("UID:") && !vtz.contains("DTSTAMP:"), "{vtz}");
    let cal = ics::parse(&text).unwrap();
    let (a, b) = times::parse_range("2026-03-01", "2026-04-30", Berlin).unwrap();
    let occ = occurrences(&cal, Berlin, a, b);
    let got: Vec<String> = occ
        .iter()
        .map(|o| show(o.start.instant(Berlin), Berlin))
        .collect();
    assert_eq!(
        got,
        vec!["2026-03-16 09:00", "2026-03-23 09:00", "2026-03-30 09:00"]
    );
    assert_eq!(occ[0].summary, "Gym, then\nsauna");
}

#[test]
fn all_day_and_errors() {
    let text = new_event("u2", &fields("Trip", "2026-05-01", "2026-05-03"), Berlin).unwrap();
    assert!(text.contains("DTSTART;VALUE=DATE:20260501\r\n"), "{text}");
    assert!(text.contains("DTEND;VALUE=DATE:20260504\r\n"), "{text}");
    assert!(!text.contains("VTIMEZONE"));
    assert!(new_event("u", &fields("", "2026-05-01", "2026-05-03"), Berlin).is_err());
    assert!(new_event(
        "u",
        &fields("x", "2026-05-01T10:00", "2026-05-01T09:00"),
        Berlin
    )
    .is_err());
    assert!(new_event("u", &fields("x", "2026-05-01", "2026-05-01T09:00"), Berlin).is_err());
    let mut f = fields("x", "2026-05-01T10:00", "2026-05-01T11:00");
    f.rrule = Some("FREQ=NEVER".into());
    assert!(matches!(
        new_event("u", &f, Berlin),
        Err(CalendarError::BadArgument(_))
    ));
    let f = Fields {
        summary: Some("d".into()),
        start: Some(parse("2026-05-01T10:00", Berlin).unwrap()),
        duration: Some(Duration::minutes(45)),
        ..Fields::default()
    };
    let text = new_event("u3", &f, Berlin).unwrap();
    assert!(
        text.contains("DTEND;TZID=Europe/Berlin:20260501T104500\r\n"),
        "{text}"
    );
}

#[test]
fn update_keeps_the_rest() {
    let original =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other//EN\r\nBEGIN:VEVENT\r\nUID:u\r\n\
DTSTAMP:20260101T000000Z\r\nDTSTART:20260310T080000Z\r\nDTEND:20260310T090000Z\r\nSUMMARY:Old\r\n\
X-OTHER-CLIENT:keep me\r\nSEQUENCE:4\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\n\
DESCRIPTION:r\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let f = Fields {
        summary: Some("New".into()),
        start: Some(parse("2026-03-11T09:00", Berlin).unwrap()),
        ..Fields::default()
    };
    let text = update_event(original, "u", &f, Berlin).unwrap();
    assert!(text.contains("SUMMARY:New\r\n"));
    assert!(text.contains("X-OTHER-CLIENT:keep me\r\n"));
    assert!(text.contains("SEQUENCE:5\r\n"));
    assert!(text.contains("BEGIN:VALARM\r\n"));
    assert!(
        text.contains("DTSTART;TZID=Europe/Berlin:20260311T090000\r\n"),
        "{text}"
    );
    // The hour it lasted is kept.
    assert!(
        text.contains("DTEND;TZID=Europe/Berlin:20260311T100000\r\n"),
        "{text}"
    );
    let alarm = &text[text.find("BEGIN:VALARM").unwrap()..];
    assert!(!alarm[..alarm.find("END:VALARM").unwrap()].contains("DTSTAMP"));
    assert!(matches!(
        update_event(original, "nope", &f, Berlin),
        Err(CalendarError::NotFound { .. })
    ));
}
