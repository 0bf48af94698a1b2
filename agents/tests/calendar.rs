//! The calendar skill against a real CalDAV server: Radicale from PyPI
//! (`tests/peers/caldav/install.sh`), started once for this test binary on a loopback
//! port with htpasswd auth, and an ICS feed served by a tiny loopback HTTP server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clawos_agents::skills::calendar::caldav::{DavClient, Precondition};
use clawos_agents::skills::calendar::{
    CalendarAccount, CalendarError, CalendarSkill, CalendarSource,
};
use clawos_agents::skills::{Skill, SkillOutput};
use serde_json::json;

const BERLIN: chrono_tz::Tz = chrono_tz::Europe::Berlin;

/// The running Radicale: its base URL and its folder (kept until the binary exits).
struct Radicale {
    url: String,
    _dir: tempfile::TempDir,
    /// The watchdog shell (it ends with this process and stops Radicale).
    _watchdog: std::process::Child,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Start Radicale once. It runs under a shell watchdog that stops it when this test
/// process is gone, however the process ends.
fn radicale() -> &'static Radicale {
    static SERVER: OnceLock<Radicale> = OnceLock::new();
    SERVER.get_or_init(|| {
        let venv = std::env::var("CLAWOS_RADICALE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join(".peers/radicale-venv"));
        let python = venv.join("bin/python");
        assert!(
            python.exists(),
            "no Radicale venv at {}: run tests/peers/caldav/install.sh first",
            venv.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "alice:alice-pass\nbob:bob-pass\ncarol:carol-pass\n").unwrap();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let script = r#"
"$0" -m radicale --server-hosts "127.0.0.1:$1" --storage-filesystem-folder "$2/collections" \
  --auth-type htpasswd --auth-htpasswd-filename "$2/users" --auth-htpasswd-encryption plain \
  --auth-delay 0 --logging-level warning > "$2/radicale.log" 2>&1 < /dev/null &
r=$!
while kill -0 "$3" 2>/dev/null && kill -0 "$r" 2>/dev/null; do sleep 0.2; done
kill "$r" 2>/dev/null
"#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&python)
            .arg(port.to_string())
            .arg(dir.path())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Radicale did not come up: {}",
                std::fs::read_to_string(dir.path().join("radicale.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Radicale {
            url: format!("http://127.0.0.1:{port}/"),
            _dir: dir,
            _watchdog: watchdog,
        }
    })
}

fn dav_account(name: &str, user: &str, pass: &str, url: &str) -> CalendarAccount {
    CalendarAccount {
        name: name.into(),
        source: CalendarSource::CalDav {
            url: url.into(),
            username: Some(user.into()),
            password: Some(pass.into()),
        },
    }
}

/// MKCALENDAR `/user/id/`.
async fn make_calendar(user: &str, id: &str, display: &str) -> DavClient {
    let base = &radicale().url;
    let client =
        DavClient::new(user, base, Some(user.into()), Some(format!("{user}-pass"))).unwrap();
    let url = client.resolve(&format!("/{user}/{id}/")).unwrap();
    client.make_calendar(&url, display).await.unwrap();
    client
}

async fn ok(skill: &CalendarSkill, args: serde_json::Value) -> String {
    let out = skill.call(&args).await;
    assert_eq!(out.exit_status, 0, "{args}: {}", out.output);
    out.output
}

async fn err(skill: &CalendarSkill, args: serde_json::Value) -> SkillOutput {
    let out = skill.call(&args).await;
    assert_ne!(out.exit_status, 0, "{args} succeeded: {}", out.output);
    out
}

fn uid_of(created: &str) -> String {
    let at = created.find("(uid ").expect(created) + 5;
    created[at..].trim_end_matches(')').to_string()
}

#[tokio::test]
async fn discovery_create_update_delete() {
    let alice = make_calendar("alice", "work", "Work").await;
    make_calendar("alice", "home", "Home").await;
    let skill = CalendarSkill::new(
        vec![dav_account("me", "alice", "alice-pass", &radicale().url)],
        BERLIN,
    );

    // Discovery from the server root: principal, home, collections.
    let cals = ok(&skill, json!({"action": "calendars"})).await;
    assert!(cals.contains("me/work \"Work\" (read-write)"), "{cals}");
    assert!(cals.contains("me/home \"Home\" (read-write)"), "{cals}");

    // A write needs a calendar when there are several.
    let e = err(
        &skill,
        json!({"action": "create", "summary": "x", "start": "2026-03-10T14:00"}),
    )
    .await;
    assert!(
        e.output.contains("me/work") && e.output.contains("me/home"),
        "{}",
        e.output
    );

    let created = ok(
        &skill,
        json!({"action": "create", "calendar": "me/work", "summary": "Dentist",
        "start": "2026-03-10T14:00", "end": "2026-03-10T15:00", "location": "Main St 1"}),
    )
    .await;
    let dentist = uid_of(&created);
    // By display name, all day.
    let holiday = uid_of(
        &ok(
            &skill,
            json!({"action": "create", "calendar": "Home",
        "summary": "Holiday", "start": "2026-03-12"}),
        )
        .await,
    );
    // RFC 3339 in another zone, with a duration.
    ok(
        &skill,
        json!({"action": "create", "calendar": "me/work", "summary": "Call NY",
        "start": "2026-03-13T09:00:00-04:00", "duration": 30}),
    )
    .await;

    let listed = ok(
        &skill,
        json!({"action": "events", "from": "2026-03-09", "to": "2026-03-15"}),
    )
    .await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "3 event(s), times in Europe/Berlin:", "{listed}");
    assert_eq!(
        lines[1],
        format!("2026-03-10 14:00-15:00 Dentist @ Main St 1 (uid {dentist}, me/work)")
    );
    assert_eq!(
        lines[2],
        format!("2026-03-12 (all day) Holiday (uid {holiday}, me/home)")
    );
    assert!(
        lines[3].starts_with("2026-03-13 14:00-14:30 Call NY"),
        "{listed}"
    );
    let only_home = ok(&skill, json!({"action": "events", "calendar": "me/home", "from": "2026-03-09", "to": "2026-03-15"})).await;
    assert!(only_home.starts_with("1 event(s)"), "{only_home}");

    // Update: summary and start change, the hour is kept, the etag moves on.
    let url = alice
        .resolve(&format!("/alice/work/{dentist}.ics"))
        .unwrap();
    let before = alice.get(&url).await.unwrap().unwrap();
    ok(
        &skill,
        json!({"action": "update", "calendar": "me/work", "uid": dentist,
        "summary": "Dentist (moved)", "start": "2026-03-11T10:00"}),
    )
    .await;
    let after = alice.get(&url).await.unwrap().unwrap();
    assert_ne!(before.etag, after.etag);
    assert!(after.data.contains("SEQUENCE:1"), "{}", after.data);
    let listed = ok(
        &skill,
        json!({"action": "events", "calendar": "work", "from": "2026-03-09", "to": "2026-03-15"}),
    )
    .await;
    assert!(
        listed.contains("2026-03-11 10:00-11:00 Dentist (moved) @ Main St 1"),
        "{listed}"
    );
    assert!(!listed.contains("2026-03-10 14:00"), "{listed}");

    // A write with the old etag is a conflict.
    let stale = alice
        .put(
            &url,
            &dentist,
            before.data.clone(),
            Precondition::Etag(before.etag.as_deref().unwrap()),
        )
        .await;
    assert!(
        matches!(stale, Err(CalendarError::Conflict(_))),
        "{stale:?}"
    );
    assert!(stale
        .unwrap_err()
        .to_string()
        .contains("changed by someone else"));

    // Delete; again is not found.
    ok(
        &skill,
        json!({"action": "delete", "calendar": "me/work", "uid": dentist}),
    )
    .await;
    let listed = ok(
        &skill,
        json!({"action": "events", "from": "2026-03-09", "to": "2026-03-15"}),
    )
    .await;
    assert!(!listed.contains("Dentist"), "{listed}");
    let e = err(
        &skill,
        json!({"action": "delete", "calendar": "me/work", "uid": dentist}),
    )
    .await;
    assert!(e.output.contains("no event with uid"), "{}", e.output);

    // Unknown calendar: the real ones are listed. Bad dates are explained.
    let e = err(
        &skill,
        json!({"action": "events", "calendar": "gym", "from": "2026-03-09", "to": "2026-03-15"}),
    )
    .await;
    assert!(
        e.output.contains("no calendar `gym`") && e.output.contains("me/work, me/home")
            || e.output.contains("me/home, me/work"),
        "{}",
        e.output
    );
    let e = err(
        &skill,
        json!({"action": "events", "from": "next monday", "to": "2026-03-15"}),
    )
    .await;
    assert!(e.output.contains("bad time `next monday`"), "{}", e.output);
    let e = err(&skill, json!({"action": "create", "calendar": "me/work", "summary": "x", "start": "2026-03-10T14:00", "rrule": "FREQ=FORTNIGHTLY"})).await;
    assert!(e.output.contains("bad rrule"), "{}", e.output);
}

/// A calendar object as another client would write it: weekly at 09:00 Berlin across the
/// March DST change, one date excluded, one occurrence moved, one cancelled.
const STANDUP: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:standup-1\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:20260316T090000\r\nDTEND;TZID=Europe/Berlin:20260316T093000\r\n\
RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE;TZID=Europe/Berlin:20260406T090000\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:standup-1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260330T090000\r\n\
DTSTART;TZID=Europe/Berlin:20260331T140000\r\nDTEND;TZID=Europe/Berlin:20260331T143000\r\n\
SUMMARY:Standup (moved)\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:standup-1\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20260413T070000Z\r\n\
DTSTART;TZID=Europe/Berlin:20260413T090000\r\nDTEND;TZID=Europe/Berlin:20260413T093000\r\nSTATUS:CANCELLED\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

#[tokio::test]
async fn recurring_events_across_dst_and_free_time() {
    let bob = make_calendar("bob", "team", "Team").await;
    let url = bob.resolve("/bob/team/standup.ics").unwrap();
    bob.put(&url, "standup-1", STANDUP.into(), Precondition::Absent)
        .await
        .unwrap();
    // The calendar's own URL: no discovery, the account is the calendar.
    let cal_url = format!("{}bob/team/", radicale().url);
    let skill = CalendarSkill::new(
        vec![dav_account("team", "bob", "bob-pass", &cal_url)],
        BERLIN,
    );
    assert_eq!(
        ok(&skill, json!({"action": "calendars"})).await,
        "team \"Team\" (read-write)"
    );

    let listed = ok(
        &skill,
        json!({"action": "events", "from": "2026-03-01", "to": "2026-04-30"}),
    )
    .await;
    let got: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(
        got,
        vec![
            "2026-03-16 09:00-09:30 Standup [recurring] (uid standup-1, team)",
            "2026-03-23 09:00-09:30 Standup [recurring] (uid standup-1, team)",
            "2026-03-31 14:00-14:30 Standup (moved) [recurring] (uid standup-1, team)",
            "2026-04-20 09:00-09:30 Standup [recurring] (uid standup-1, team)",
        ],
        "{listed}"
    );
    // A narrow range after the DST change is asked of the server and still matches.
    let listed = ok(
        &skill,
        json!({"action": "events", "from": "2026-04-20T08:45", "to": "2026-04-20T09:15"}),
    )
    .await;
    assert!(listed.starts_with("1 event(s)"), "{listed}");

    // A series written by the skill, across the October change: 18:00 stays 18:00.
    let yoga = uid_of(
        &ok(
            &skill,
            json!({"action": "create", "summary": "Yoga", "start": "2026-10-19T18:00",
        "duration": 60, "rrule": "FREQ=WEEKLY;COUNT=3"}),
        )
        .await,
    );
    let listed = ok(
        &skill,
        json!({"action": "events", "from": "2026-10-01", "to": "2026-11-30"}),
    )
    .await;
    let times: Vec<&str> = listed.lines().skip(1).map(|l| &l[..22]).collect();
    assert_eq!(
        times,
        vec![
            "2026-10-19 18:00-19:00",
            "2026-10-26 18:00-19:00",
            "2026-11-02 18:00-19:00"
        ],
        "{listed}"
    );
    let stored = bob
        .find(&bob.resolve("/bob/team/").unwrap(), &yoga)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.data.contains("BEGIN:VTIMEZONE"), "{}", stored.data);

    // Free time around the standup and a lunch that overlaps a call.
    for (s, e, what) in [
        ("2026-03-16T12:00", "2026-03-16T13:00", "Lunch"),
        ("2026-03-16T12:30", "2026-03-16T13:30", "Call"),
    ] {
        ok(
            &skill,
            json!({"action": "create", "summary": what, "start": s, "end": e}),
        )
        .await;
    }
    let free = ok(&skill, json!({"action": "free", "from": "2026-03-16T08:00", "to": "2026-03-16T17:00", "min_minutes": 45})).await;
    assert_eq!(
        free.lines().collect::<Vec<_>>(),
        vec![
            "3 free slot(s) of at least 45 min, times in Europe/Berlin:",
            "2026-03-16 08:00-09:00 (60 min)",
            "2026-03-16 09:30-12:00 (150 min)",
            "2026-03-16 13:30-17:00 (210 min)",
        ],
        "{free}"
    );
}

#[tokio::test]
async fn wrong_password_and_server_down() {
    make_calendar("carol", "main", "Main").await;
    let skill = CalendarSkill::new(
        vec![dav_account("carol", "carol", "wrong", &radicale().url)],
        BERLIN,
    );
    let e = err(
        &skill,
        json!({"action": "events", "from": "2026-03-01", "to": "2026-03-02"}),
    )
    .await;
    assert!(
        e.output
            .contains("refused the username or password (HTTP 401"),
        "{}",
        e.output
    );
    let e = err(&skill, json!({"action": "calendars"})).await;
    assert!(e.output.contains("HTTP 401"), "{}", e.output);

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = CalendarSkill::new(
        vec![dav_account(
            "down",
            "x",
            "y",
            &format!("http://127.0.0.1:{closed}/"),
        )],
        BERLIN,
    );
    let e = err(&down, json!({"action": "calendars"})).await;
    assert!(
        e.output.contains("cannot reach") && e.output.contains("is the server running"),
        "{}",
        e.output
    );
}

const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//feed//EN\r\nX-WR-CALNAME:Holidays\r\n\
BEGIN:VEVENT\r\nUID:h1@feed\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260406\r\nDTEND;VALUE=DATE:20260407\r\n\
SUMMARY:Easter Monday\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:h2@feed\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260401T160000Z\r\nDTEND:20260401T170000Z\r\n\
SUMMARY:Webinar\r\nLOCATION:Online\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// Serve `body` to every GET on a loopback port; the URL.
async fn serve(body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}/holidays.ics")
}

#[tokio::test]
async fn ics_feeds_are_read_only() {
    let url = serve(FEED).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.ics");
    std::fs::write(&path, FEED).unwrap();
    let skill = CalendarSkill::new(
        vec![
            CalendarAccount {
                name: "holidays".into(),
                source: CalendarSource::Ics { url },
            },
            CalendarAccount {
                name: "file".into(),
                source: CalendarSource::Ics {
                    url: format!("file://{}", path.display()),
                },
            },
        ],
        BERLIN,
    );
    let cals = ok(&skill, json!({"action": "calendars"})).await;
    assert_eq!(
        cals,
        "holidays (ICS feed, read-only)\nfile (ICS feed, read-only)"
    );
    let listed = ok(&skill, json!({"action": "events", "calendar": "holidays", "from": "2026-04-01", "to": "2026-04-30"})).await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        vec![
            "2 event(s), times in Europe/Berlin:",
            "2026-04-01 18:00-19:00 Webinar @ Online (uid h2@feed, holidays)",
            "2026-04-06 (all day) Easter Monday (uid h1@feed, holidays)",
        ]
    );
    let listed = ok(
        &skill,
        json!({"action": "events", "calendar": "file", "from": "2026-04-01", "to": "2026-04-30"}),
    )
    .await;
    assert!(listed.starts_with("2 event(s)"), "{listed}");
    // The transparent holiday does not take time.
    let free = ok(&skill, json!({"action": "free", "calendar": "holidays", "from": "2026-04-06T09:00", "to": "2026-04-06T17:00"})).await;
    assert!(free.contains("2026-04-06 09:00-17:00 (480 min)"), "{free}");
    for args in [
        json!({"action": "create", "calendar": "holidays", "summary": "x", "start": "2026-04-02T10:00"}),
        json!({"action": "update", "calendar": "file", "uid": "h1@feed", "summary": "x"}),
        json!({"action": "delete", "calendar": "holidays", "uid": "h1@feed"}),
    ] {
        let e = err(&skill, args).await;
        assert!(e.output.contains("is read-only"), "{}", e.output);
    }
}
