//! A small CalDAV client over `reqwest` (RFC 4791 on RFC 4918): discovery
//! (`current-user-principal` → `calendar-home-set` → the home's calendar collections, or
//! the URL itself when it is a calendar), `calendar-query` REPORTs with a time range, and
//! GET / PUT / DELETE of calendar objects with ETag preconditions. Basic auth, 10 s timeouts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, StatusCode, Url};

use super::error::CalendarError;
use super::xml::{self, CALDAV, DAV};

/// Timeout of every request (connect and whole exchange).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A calendar collection found on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavCalendar {
    /// Its URL (ends with `/`).
    pub url: Url,
    /// The last segment of its path (what the model names it by, after the account).
    pub id: String,
    /// `displayname`, when set.
    pub display_name: Option<String>,
    /// No write privilege (from `current-user-privilege-set`).
    pub read_only: bool,
}

/// A calendar object resource: where it is, its ETag and its data.
#[derive(Debug, Clone)]
pub struct DavObject {
    /// Its URL.
    pub url: Url,
    /// Its ETag (quoted, as sent), when the server gave one.
    pub etag: Option<String>,
    /// The iCalendar text.
    pub data: String,
}

/// What a PUT must find on the server.
#[derive(Debug, Clone, Copy)]
pub enum Precondition<'a> {
    /// Nothing there (`If-None-Match: *`): a new event.
    Absent,
    /// This ETag (`If-Match`): an update.
    Etag(&'a str),
}

/// A client of one CalDAV account.
#[derive(Debug, Clone)]
pub struct DavClient {
    account: String,
    base: Url,
    username: Option<String>,
    password: Option<String>,
    http: reqwest::Client,
}

fn method(name: &'static str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}

impl DavClient {
    /// A client of `url` for account `account`.
    pub fn new(
        account: &str,
        url: &str,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, CalendarError> {
        let base = Url::parse(url).map_err(|e| {
            CalendarError::BadArgument(format!("{account}: bad CalDAV URL `{url}`: {e}"))
        })?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent("clawos-calendar")
            .build()
            .map_err(|e| CalendarError::Unreachable {
                account: account.to_string(),
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(DavClient {
            account: account.to_string(),
            base,
            username,
            password,
            http,
        })
    }

    /// The account's URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `href` (from the server) as a URL on this server.
    pub fn resolve(&self, href: &str) -> Result<Url, CalendarError> {
        self.base
            .join(href)
            .map_err(|e| self.bad(format!("bad href `{href}`: {e}")))
    }

    fn bad(&self, reason: impl Into<String>) -> CalendarError {
        CalendarError::BadAnswer {
            account: self.account.clone(),
            reason: reason.into(),
        }
    }

    /// Send one request; 401 and transport failures become errors, other statuses are
    /// returned.
    async fn send(
        &self,
        m: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<reqwest::Response, CalendarError> {
        let mut req = self.http.request(m, url.clone()).headers(headers);
        if let Some(user) = &self.username {
            req = req.basic_auth(user, self.password.as_deref());
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| CalendarError::Unreachable {
            account: self.account.clone(),
            url: url.to_string(),
            reason: if e.is_timeout() {
                format!("no answer within {} s", TIMEOUT.as_secs())
            } else if e.is_connect() {
                "connection failed (is the server running?)".to_string()
            } else {
                e.to_string()
            },
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(CalendarError::Unauthorized {
                account: self.account.clone(),
                url: url.to_string(),
            });
        }
        Ok(resp)
    }

    async fn status_error(&self, m: &str, url: &Url, resp: reqwest::Response) -> CalendarError {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let excerpt: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let excerpt: String = excerpt.chars().take(200).collect();
        CalendarError::Status {
            account: self.account.clone(),
            method: m.to_string(),
            url: url.to_string(),
            status,
            detail: if excerpt.is_empty() {
                String::new()
            } else {
                format!(": {excerpt}")
            },
        }
    }

    async fn multistatus(
        &self,
        m: &'static str,
        url: &Url,
        depth: &'static str,
        body: String,
    ) -> Result<Vec<xml::Response>, CalendarError> {
        let mut h = HeaderMap::new();
        h.insert("Depth", HeaderValue::from_static(depth));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        let resp = self.send(method(m), url, h, Some(body)).await?;
        if resp.status() != StatusCode::MULTI_STATUS {
            return Err(self.status_error(m, url, resp).await);
        }
        let text = resp.text().await.map_err(|e| self.bad(e.to_string()))?;
        xml::multistatus(&text).map_err(|e| self.bad(e))
    }

    /// PROPFIND of the discovery properties.
    async fn propfind(
        &self,
        url: &Url,
        depth: &'static str,
    ) -> Result<Vec<xml::Response>, CalendarError> {
        self.multistatus(
            "PROPFIND",
            url,
            depth,
            xml::PROPFIND_COLLECTIONS.to_string(),
        )
        .await
    }

    fn same(&self, href: &str, url: &Url) -> bool {
        self.resolve(href)
            .map(|u| u.path().trim_end_matches('/') == url.path().trim_end_matches('/'))
            .unwrap_or(false)
    }

    fn calendar_of(&self, r: &xml::Response) -> Result<Option<DavCalendar>, CalendarError> {
        let is_cal = r
            .prop(DAV, "resourcetype")
            .is_some_and(|t| t.has_descendant(CALDAV, "calendar"));
        if !is_cal {
            return Ok(None);
        }
        if let Some(set) = r.prop(CALDAV, "supported-calendar-component-set") {
            let mut comps = set.all(CALDAV, "comp").peekable();
            let any = comps.peek().is_some();
            if any
                && !comps.any(|c| {
                    c.attr("name")
                        .is_some_and(|n| n.eq_ignore_ascii_case("VEVENT"))
                })
            {
                return Ok(None);
            }
        }
        let mut url = self.resolve(&r.href)?;
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        let id = url
            .path_segments()
            .and_then(|mut s| s.rfind(|x| !x.is_empty()))
            .unwrap_or("calendar")
            .to_string();
        let read_only = r.prop(DAV, "current-user-privilege-set").is_some_and(|p| {
            !(p.has_descendant(DAV, "write")
                || p.has_descendant(DAV, "write-content")
                || p.has_descendant(DAV, "all"))
        });
        Ok(Some(DavCalendar {
            url,
            id,
            display_name: r.text(DAV, "displayname"),
            read_only,
        }))
    }

    /// The calendars of the account: the URL itself when it is a calendar collection, else
    /// those of the calendar home (found through the principal).
    pub async fn discover(&self) -> Result<Vec<DavCalendar>, CalendarError> {
        let base = self.base.clone();
        let top = self.propfind(&base, "0").await?;
        let me = top
            .iter()
            .find(|r| self.same(&r.href, &base))
            .or(top.first());
        if let Some(r) = me {
            if let Some(cal) = self.calendar_of(r)? {
                return Ok(vec![cal]);
            }
        }
        let mut homes = me
            .map(|r| r.hrefs(CALDAV, "calendar-home-set"))
            .unwrap_or_default();
        if homes.is_empty() {
            if let Some(principal) =
                me.and_then(|r| r.hrefs(DAV, "current-user-principal").into_iter().next())
            {
                let purl = self.resolve(&principal)?;
                let p = self.propfind(&purl, "0").await?;
                homes = p
                    .iter()
                    .flat_map(|r| r.hrefs(CALDAV, "calendar-home-set"))
                    .collect();
            }
        }
        if homes.is_empty() {
            homes.push(base.to_string());
        }
        let mut out: Vec<DavCalendar> = Vec::new();
        for home in homes {
            let hurl = self.resolve(&home)?;
            for r in self.propfind(&hurl, "1").await? {
                if let Some(cal) = self.calendar_of(&r)? {
                    if !out.iter().any(|c| c.url == cal.url) {
                        out.push(cal);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The calendar objects of `cal` with a VEVENT in `[from, to)` (server-side filter;
    /// the caller still expands and filters).
    pub async fn query(
        &self,
        cal: &Url,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DavObject>, CalendarError> {
        let f = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        let body = xml::calendar_query(&f(from), &f(to));
        let rs = self.multistatus("REPORT", cal, "1", body).await?;
        let mut out = Vec::new();
        for r in rs {
            let Some(data) = r.prop(CALDAV, "calendar-data").map(|d| d.text.clone()) else {
                continue;
            };
            out.push(DavObject {
                url: self.resolve(&r.href)?,
                etag: r.text(DAV, "getetag"),
                data,
            });
        }
        Ok(out)
    }

    /// GET a calendar object; `None` when there is none (404).
    pub async fn get(&self, url: &Url) -> Result<Option<DavObject>, CalendarError> {
        let resp = self.send(Method::GET, url, HeaderMap::new(), None).await?;
        if resp.status() == StatusCode::NOT_FOUND || resp.status() == StatusCode::GONE {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error("GET", url, resp).await);
        }
        let etag = etag_of(resp.headers());
        let data = resp.text().await.map_err(|e| self.bad(e.to_string()))?;
        Ok(Some(DavObject {
            url: url.clone(),
            etag,
            data,
        }))
    }

    /// The object of `cal` holding the event `uid`: `<uid>.ics` when it is there, else
    /// found by a `calendar-query` on UID.
    pub async fn find(&self, cal: &Url, uid: &str) -> Result<Option<DavObject>, CalendarError> {
        if let Ok(url) = cal.join(&object_name(uid)) {
            if let Some(o) = self.get(&url).await? {
                return Ok(Some(o));
            }
        }
        let rs = self
            .multistatus("REPORT", cal, "1", xml::uid_query(uid))
            .await?;
        for r in rs {
            let url = self.resolve(&r.href)?;
            if let Some(o) = self.get(&url).await? {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// PUT a calendar object; its new ETag when the server says. 412 is
    /// [`CalendarError::Conflict`] (or [`CalendarError::Exists`] for a new one).
    pub async fn put(
        &self,
        url: &Url,
        uid: &str,
        data: String,
        pre: Precondition<'_>,
    ) -> Result<Option<String>, CalendarError> {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/calendar; charset=utf-8"),
        );
        match pre {
            Precondition::Absent => {
                h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
            }
            Precondition::Etag(e) => {
                if let Ok(v) = HeaderValue::from_str(e) {
                    h.insert(IF_MATCH, v);
                }
            }
        }
        let resp = self.send(Method::PUT, url, h, Some(data)).await?;
        match resp.status() {
            s if s.is_success() => Ok(etag_of(resp.headers())),
            StatusCode::PRECONDITION_FAILED => Err(match pre {
                Precondition::Absent => CalendarError::Exists(uid.to_string()),
                Precondition::Etag(_) => CalendarError::Conflict(uid.to_string()),
            }),
            _ => Err(self.status_error("PUT", url, resp).await),
        }
    }

    /// DELETE a calendar object if its ETag is still `etag`.
    pub async fn delete(
        &self,
        url: &Url,
        uid: &str,
        etag: Option<&str>,
    ) -> Result<(), CalendarError> {
        let mut h = HeaderMap::new();
        if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            h.insert(IF_MATCH, v);
        }
        let resp = self.send(Method::DELETE, url, h, None).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::PRECONDITION_FAILED => Err(CalendarError::Conflict(uid.to_string())),
            _ => Err(self.status_error("DELETE", url, resp).await),
        }
    }

    /// MKCALENDAR (used by tests and setup).
    pub async fn make_calendar(&self, url: &Url, display_name: &str) -> Result<(), CalendarError> {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        let resp = self
            .send(
                method("MKCALENDAR"),
                url,
                h,
                Some(xml::mkcalendar(display_name)),
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error("MKCALENDAR", url, resp).await)
        }
    }
}

fn etag_of(h: &HeaderMap) -> Option<String> {
    h.get(ETAG).and_then(|v| v.to_str().ok()).map(String::from)
}

/// The resource name of a new event: the uid, with anything but `[A-Za-z0-9._-]`
/// replaced, and `.ics`.
pub fn object_name(uid: &str) -> String {
    let safe: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.ics")
}
