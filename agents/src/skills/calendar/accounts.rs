//! The configured accounts and their calendars, named `account/calendar` (CalDAV; the
//! calendar part is the collection's last path segment) or `account` (an ICS feed, or a
//! CalDAV account's only calendar). Discovery is cached until `calendars` is asked again
//! or a name is not found.

use std::sync::Arc;

use chrono_tz::Tz;
use reqwest::Url;
use tokio::sync::Mutex;

use super::caldav::{DavCalendar, DavClient};
use super::error::CalendarError;

/// Where an account's calendars are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    /// A CalDAV server: `url` is a calendar collection, or a server, principal or
    /// calendar-home URL from which the calendars are discovered.
    CalDav {
        /// The URL.
        url: String,
        /// Basic auth user name.
        username: Option<String>,
        /// Basic auth password.
        password: Option<String>,
    },
    /// A read-only ICS feed: an `http(s)://` URL, a `file://` URL or a path.
    Ics {
        /// The URL or path.
        url: String,
    },
}

/// One configured calendar account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarAccount {
    /// Its name (the first part of calendar names: `work/personal`).
    pub name: String,
    /// Where its calendars are.
    pub source: CalendarSource,
}

/// Where a calendar's events are.
#[derive(Debug, Clone)]
pub enum Target {
    /// A CalDAV collection.
    Dav {
        /// The account's client.
        client: Arc<DavClient>,
        /// The collection.
        url: Url,
    },
    /// An ICS feed.
    Ics {
        /// Account name.
        account: String,
        /// URL or path.
        url: String,
    },
}

/// One calendar.
#[derive(Debug, Clone)]
pub struct Cal {
    /// `account/id`, or the account name for a feed.
    pub name: String,
    /// The account it belongs to.
    pub account: String,
    /// Display name.
    pub display: Option<String>,
    /// Writes are refused.
    pub read_only: bool,
    /// Where it is.
    pub target: Target,
}

enum Kind {
    Dav {
        client: Result<Arc<DavClient>, String>,
        cache: Mutex<Option<Vec<DavCalendar>>>,
    },
    Ics {
        url: String,
    },
}

struct Account {
    name: String,
    kind: Kind,
}

/// Every configured account.
pub struct Accounts {
    list: Vec<Account>,
    /// The person's zone.
    pub zone: Tz,
}

impl Accounts {
    /// From the configuration.
    pub fn new(accounts: Vec<CalendarAccount>, zone: Tz) -> Self {
        let list = accounts
            .into_iter()
            .map(|a| {
                let kind = match a.source {
                    CalendarSource::CalDav {
                        url,
                        username,
                        password,
                    } => Kind::Dav {
                        client: DavClient::new(&a.name, &url, username, password)
                            .map(Arc::new)
                            .map_err(|e| e.to_string()),
                        cache: Mutex::new(None),
                    },
                    CalendarSource::Ics { url } => Kind::Ics { url },
                };
                Account { name: a.name, kind }
            })
            .collect();
        Accounts { list, zone }
    }

    /// Every calendar (discovering when `refresh` or not yet done), and the accounts that
    /// failed.
    pub async fn all(&self, refresh: bool) -> (Vec<Cal>, Vec<CalendarError>) {
        let mut cals = Vec::new();
        let mut errors = Vec::new();
        for a in &self.list {
            match &a.kind {
                Kind::Ics { url } => cals.push(Cal {
                    name: a.name.clone(),
                    account: a.name.clone(),
                    display: None,
                    read_only: true,
                    target: Target::Ics {
                        account: a.name.clone(),
                        url: url.clone(),
                    },
                }),
                Kind::Dav { client, cache } => {
                    let client = match client {
                        Ok(c) => c,
                        Err(e) => {
                            errors.push(CalendarError::BadArgument(e.clone()));
                            continue;
                        }
                    };
                    let mut cached = cache.lock().await;
                    if refresh || cached.is_none() {
                        match client.discover().await {
                            Ok(found) => *cached = Some(found),
                            Err(e) => {
                                errors.push(e);
                                continue;
                            }
                        }
                    }
                    let found = cached.clone().unwrap_or_default();
                    let single = found.len() == 1;
                    for c in found {
                        cals.push(Cal {
                            name: if single && c.url == *client.base() {
                                a.name.clone()
                            } else {
                                format!("{}/{}", a.name, c.id)
                            },
                            account: a.name.clone(),
                            display: c.display_name.clone(),
                            read_only: c.read_only,
                            target: Target::Dav {
                                client: Arc::clone(client),
                                url: c.url.clone(),
                            },
                        });
                    }
                }
            }
        }
        (cals, errors)
    }

    /// The calendars `name` picks (all of them for `None`), and the accounts that failed.
    /// A name is `account/id`, an id, a display name, or an account (all its calendars).
    pub async fn select(
        &self,
        name: Option<&str>,
    ) -> Result<(Vec<Cal>, Vec<CalendarError>), CalendarError> {
        let (cals, mut errors) = self.all(false).await;
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            if cals.is_empty() && !errors.is_empty() {
                return Err(errors.remove(0));
            }
            return Ok((cals, errors));
        };
        let picked = pick(&cals, name);
        if !picked.is_empty() {
            return Ok((picked, errors));
        }
        // Perhaps created since discovery.
        let (cals, mut errors) = self.all(true).await;
        let picked = pick(&cals, name);
        if picked.is_empty() && cals.is_empty() && !errors.is_empty() {
            return Err(errors.remove(0));
        }
        if picked.is_empty() {
            let mut known: Vec<String> = cals.iter().map(|c| c.name.clone()).collect();
            known.extend(errors.iter().map(|e| format!("(unavailable: {e})")));
            return Err(CalendarError::UnknownCalendar {
                name: name.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok((picked, errors))
    }

    /// The one calendar a write goes to: `name`, or the only writable calendar.
    pub async fn writable(&self, name: Option<&str>) -> Result<Cal, CalendarError> {
        let (cals, errors) = self.select(name).await?;
        let cal = match name {
            Some(n) if cals.len() > 1 => {
                return Err(CalendarError::BadArgument(format!(
                    "`{n}` names several calendars: {}; name one",
                    names(&cals)
                )))
            }
            Some(_) => cals.into_iter().next(),
            None => {
                let w: Vec<Cal> = cals.into_iter().filter(|c| !c.read_only).collect();
                if w.len() > 1 {
                    return Err(CalendarError::BadArgument(format!(
                        "name the `calendar`: {}",
                        names(&w)
                    )));
                }
                w.into_iter().next()
            }
        };
        let Some(cal) = cal else {
            return Err(errors.into_iter().next().unwrap_or_else(|| {
                CalendarError::BadArgument("there is no writable calendar".into())
            }));
        };
        if cal.read_only {
            return Err(CalendarError::ReadOnly(cal.name));
        }
        Ok(cal)
    }
}

fn names(cals: &[Cal]) -> String {
    cals.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn pick(cals: &[Cal], name: &str) -> Vec<Cal> {
    let exact: Vec<Cal> = cals.iter().filter(|c| c.name == name).cloned().collect();
    if !exact.is_empty() {
        return exact;
    }
    let by =
        |f: &dyn Fn(&Cal) -> bool| -> Vec<Cal> { cals.iter().filter(|c| f(c)).cloned().collect() };
    let lower = name.to_lowercase();
    for found in [
        by(&|c| c.name.eq_ignore_ascii_case(name)),
        by(&|c| {
            c.name
                .rsplit('/')
                .next()
                .is_some_and(|id| id.eq_ignore_ascii_case(name))
        }),
        by(&|c| {
            c.display
                .as_deref()
                .is_some_and(|d| d.to_lowercase() == lower)
        }),
        by(&|c| c.account.eq_ignore_ascii_case(name)),
    ] {
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}
