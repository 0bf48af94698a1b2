//! The tool's actions over the accounts: each reads its arguments, does its work and
//! answers with short text lines for the model.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::accounts::{Accounts, Cal, Target};
use super::caldav::{object_name, Precondition};
use super::error::CalendarError;
use super::expand::{occurrences, Occurrence};
use super::free::free_slots;
use super::times::{self, show_span, Moment};
use super::write::{new_event, update_event, Fields};
use super::{feed, ics};

/// Most events listed.
pub const MAX_EVENTS: usize = 300;

fn arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(|v| v.as_str())
}

fn need<'a>(args: &'a Value, key: &str, action: &str) -> Result<&'a str, CalendarError> {
    arg(args, key)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| CalendarError::BadArgument(format!("{action} needs `{key}`")))
}

fn minutes(args: &Value, key: &str) -> Result<Option<i64>, CalendarError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|m| *m > 0 && *m <= 60 * 24 * 366)
            .map(Some)
            .ok_or_else(|| CalendarError::BadArgument(format!("`{key}` is a number of minutes"))),
    }
}

/// `calendars`: every calendar, with its display name and whether it is read-only.
pub async fn calendars(acc: &Accounts) -> Result<String, CalendarError> {
    let (cals, errors) = acc.all(true).await;
    if cals.is_empty() {
        return Err(CalendarError::BadArgument(match errors.is_empty() {
            true => "no calendars are configured".into(),
            false => format!(
                "no calendar could be read: {}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }));
    }
    let mut out: Vec<String> = cals
        .iter()
        .map(|c| {
            let kind = match (&c.target, c.read_only) {
                (Target::Ics { .. }, _) => "ICS feed, read-only",
                (_, true) => "read-only",
                _ => "read-write",
            };
            match &c.display {
                Some(d) => format!("{} \"{d}\" ({kind})", c.name),
                None => format!("{} ({kind})", c.name),
            }
        })
        .collect();
    out.extend(errors.iter().map(|e| format!("unavailable: {e}")));
    Ok(out.join("\n"))
}

/// The occurrences of `cal` in `[from, to)`.
async fn read(
    acc: &Accounts,
    cal: &Cal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Occurrence>, CalendarError> {
    let zone = acc.zone;
    let texts: Vec<String> = match &cal.target {
        Target::Dav { client, url } => {
            // A day either side: floating and all-day times are the server's guess.
            let objs = client
                .query(url, from - Duration::days(1), to + Duration::days(1))
                .await?;
            objs.into_iter().map(|o| o.data).collect()
        }
        Target::Ics { account, url } => vec![feed::fetch(account, url).await?],
    };
    let mut out = Vec::new();
    for t in texts {
        match ics::parse(&t) {
            Ok(c) => out.extend(occurrences(&c, zone, from, to)),
            Err(e) if matches!(cal.target, Target::Ics { .. }) => return Err(e),
            Err(e) => tracing::warn!(calendar = %cal.name, error = %e, "calendar: object skipped"),
        }
    }
    Ok(out)
}

/// Occurrences of the selected calendars, sorted, with their calendar names; the notes on
/// calendars that could not be read.
async fn gather(
    acc: &Accounts,
    args: &Value,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<(Occurrence, String)>, Vec<String>), CalendarError> {
    let name = arg(args, "calendar");
    let (cals, errors) = acc.select(name).await?;
    let mut notes: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let mut all = Vec::new();
    let mut read_any = false;
    let mut first_err = None;
    for cal in &cals {
        match read(acc, cal, from, to).await {
            Ok(occ) => {
                read_any = true;
                all.extend(occ.into_iter().map(|o| (o, cal.name.clone())));
            }
            Err(e) => {
                notes.push(format!("{}: {e}", cal.name));
                first_err.get_or_insert(e);
            }
        }
    }
    if !read_any {
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    let zone = acc.zone;
    all.sort_by(|(a, ca), (b, cb)| {
        (a.start.instant(zone), &a.summary, ca).cmp(&(b.start.instant(zone), &b.summary, cb))
    });
    Ok((all, notes))
}

/// `events {from, to, calendar?}`.
pub async fn events(acc: &Accounts, args: &Value) -> Result<String, CalendarError> {
    let zone = acc.zone;
    let (from, to) = times::parse_range(
        need(args, "from", "events")?,
        need(args, "to", "events")?,
        zone,
    )?;
    let (all, notes) = gather(acc, args, from, to).await?;
    let mut out = vec![format!("{} event(s), times in {zone}:", all.len())];
    for (o, cal) in all.iter().take(MAX_EVENTS) {
        let mut line = format!("{} {}", show_span(o.start, o.end, zone), o.summary);
        if o.recurring {
            line.push_str(" [recurring]");
        }
        if let Some(l) = &o.location {
            line.push_str(&format!(" @ {l}"));
        }
        line.push_str(&format!(" (uid {}, {cal})", o.uid));
        out.push(line);
    }
    if all.len() > MAX_EVENTS {
        out.push(format!(
            "[{} more not shown; ask for a shorter range]",
            all.len() - MAX_EVENTS
        ));
    }
    out.extend(notes.iter().map(|n| format!("could not read {n}")));
    Ok(out.join("\n"))
}

fn fields(acc: &Accounts, args: &Value) -> Result<Fields, CalendarError> {
    let zone = acc.zone;
    let time = |k: &str| arg(args, k).map(|v| times::parse(v, zone)).transpose();
    Ok(Fields {
        summary: arg(args, "summary").map(String::from),
        start: time("start")?,
        end: time("end")?,
        duration: minutes(args, "duration")?.map(Duration::minutes),
        location: arg(args, "location").map(String::from),
        description: arg(args, "description").map(String::from),
        rrule: arg(args, "rrule").map(String::from),
    })
}

fn dav(cal: &Cal) -> Result<(&super::caldav::DavClient, &reqwest::Url), CalendarError> {
    match &cal.target {
        Target::Dav { client, url } => Ok((client, url)),
        Target::Ics { .. } => Err(CalendarError::ReadOnly(cal.name.clone())),
    }
}

fn describe(f: &Fields, zone: chrono_tz::Tz) -> String {
    match (f.start, f.end) {
        (Some(s), Some(e)) => {
            let e = match e {
                Moment::Date(d) => Moment::Date(d + Duration::days(1)),
                e => e,
            };
            show_span(s, e, zone)
        }
        (Some(s), None) => show_span(s, s, zone),
        _ => String::new(),
    }
}

/// `create {calendar, summary, start, end | duration, location?, description?, rrule?}`.
pub async fn create(acc: &Accounts, args: &Value) -> Result<String, CalendarError> {
    need(args, "summary", "create")?;
    need(args, "start", "create")?;
    let f = fields(acc, args)?;
    let cal = acc.writable(arg(args, "calendar")).await?;
    let (client, url) = dav(&cal)?;
    let uid = uuid::Uuid::new_v4().to_string();
    let data = new_event(&uid, &f, acc.zone)?;
    let target = url
        .join(&object_name(&uid))
        .map_err(|e| CalendarError::BadArgument(e.to_string()))?;
    client
        .put(&target, &uid, data, Precondition::Absent)
        .await?;
    Ok(format!(
        "created \"{}\" {} in {} (uid {uid})",
        f.summary.unwrap_or_default().trim(),
        describe(
            &Fields {
                duration: None,
                ..fields(acc, args)?
            },
            acc.zone
        ),
        cal.name
    ))
}

/// `update {calendar, uid, ...fields}`: GET, change, PUT with If-Match.
pub async fn update(acc: &Accounts, args: &Value) -> Result<String, CalendarError> {
    let uid = need(args, "uid", "update")?;
    let f = fields(acc, args)?;
    let cal = acc.writable(arg(args, "calendar")).await?;
    let (client, url) = dav(&cal)?;
    let not_found = || CalendarError::NotFound {
        uid: uid.to_string(),
        calendar: cal.name.clone(),
    };
    let obj = client.find(url, uid).await?.ok_or_else(not_found)?;
    let data = update_event(&obj.data, uid, &f, acc.zone).map_err(|e| match e {
        CalendarError::NotFound { .. } => not_found(),
        e => e,
    })?;
    let pre = match &obj.etag {
        Some(e) => Precondition::Etag(e),
        None => Precondition::Etag("*"),
    };
    client.put(&obj.url, uid, data, pre).await?;
    Ok(format!("updated event {uid} in {}", cal.name))
}

/// `delete {calendar, uid}` with If-Match.
pub async fn delete(acc: &Accounts, args: &Value) -> Result<String, CalendarError> {
    let uid = need(args, "uid", "delete")?;
    let cal = acc.writable(arg(args, "calendar")).await?;
    let (client, url) = dav(&cal)?;
    let obj = client
        .find(url, uid)
        .await?
        .ok_or_else(|| CalendarError::NotFound {
            uid: uid.to_string(),
            calendar: cal.name.clone(),
        })?;
    client.delete(&obj.url, uid, obj.etag.as_deref()).await?;
    Ok(format!("deleted event {uid} from {}", cal.name))
}

/// `free {from, to, min_minutes?, calendar?}`.
pub async fn free(acc: &Accounts, args: &Value) -> Result<String, CalendarError> {
    let zone = acc.zone;
    let (from, to) =
        times::parse_range(need(args, "from", "free")?, need(args, "to", "free")?, zone)?;
    let min = Duration::minutes(minutes(args, "min_minutes")?.unwrap_or(30));
    let (all, notes) = gather(acc, args, from, to).await?;
    let occ: Vec<Occurrence> = all.into_iter().map(|(o, _)| o).collect();
    let slots = free_slots(&occ, zone, from, to, min);
    let mut out = vec![format!(
        "{} free slot(s) of at least {} min, times in {zone}:",
        slots.len(),
        min.num_minutes()
    )];
    for (a, b) in slots {
        out.push(format!(
            "{} ({} min)",
            show_span(Moment::At(a), Moment::At(b), zone),
            (b - a).num_minutes()
        ));
    }
    out.extend(notes.iter().map(|n| format!("could not read {n}")));
    Ok(out.join("\n"))
}
