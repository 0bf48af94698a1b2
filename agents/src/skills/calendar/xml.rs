//! WebDAV XML (RFC 4918, RFC 4791): request bodies, and `multistatus` answers read with
//! `quick-xml`'s namespace-aware reader into a small element tree.

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The DAV: namespace.
pub const DAV: &str = "DAV:";
/// The CalDAV namespace.
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// The CalendarServer namespace (`getctag`).
pub const CS: &str = "http://calendarserver.org/ns/";

/// PROPFIND body for discovery and collection listing.
pub const PROPFIND_COLLECTIONS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"><d:prop><d:resourcetype/><d:displayname/><d:current-user-principal/><c:calendar-home-set/><cs:getctag/><d:current-user-privilege-set/><c:supported-calendar-component-set/></d:prop></d:propfind>"#;

/// REPORT `calendar-query` for the VEVENTs overlapping `[start, end)` (UTC, `YYYYMMDDTHHMMSSZ`).
pub fn calendar_query(start: &str, end: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="{start}" end="{end}"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#
    )
}

/// REPORT `calendar-query` for the VEVENT with this UID.
pub fn uid_query(uid: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="UID"><c:text-match collation="i;octet">{}</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#,
        escape(uid)
    )
}

/// MKCALENDAR body with a display name.
pub fn mkcalendar(display_name: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>{}</d:displayname><c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"#,
        escape(display_name)
    )
}

/// An XML element: namespace, local name, its text and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Namespace URI (empty when unbound).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes: local name and unescaped value.
    pub attrs: Vec<(String, String)>,
    /// Text directly inside (entities resolved, CDATA included).
    pub text: String,
    /// Child elements.
    pub children: Vec<Node>,
}

impl Node {
    /// Whether this is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn all<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The value of attribute `name` (any namespace).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any descendant is `{ns}name`.
    pub fn has_descendant(&self, ns: &str, name: &str) -> bool {
        self.children
            .iter()
            .any(|c| c.is(ns, name) || c.has_descendant(ns, name))
    }
}

/// Parse an XML document into its root element.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("XML error: {e}"))?;
        let ns = match ns {
            ResolveResult::Bound(n) => <_ as AsRef<str>>::as_ref(&n).to_string(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => stack.push(element(ns, &e)),
            Event::Empty(e) => {
                let node = element(ns, &e);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err("unbalanced XML".into());
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    if r.is_char_ref() {
                        if let Ok(Some(c)) = r.resolve_char_ref() {
                            top.text.push(c);
                        }
                    } else if let Some(s) = resolve_predefined_entity(&r.xml10_content()) {
                        top.text.push_str(s);
                    }
                }
            }
            Event::Eof => return Err("no root element".into()),
            _ => {}
        }
    }
}

fn element(ns: String, e: &quick_xml::events::BytesStart<'_>) -> Node {
    let attrs = e
        .attributes()
        .flatten()
        .map(|a| {
            let key = a.key.local_name().as_ref().to_string();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string());
            (key, value)
        })
        .collect();
    Node {
        ns,
        name: e.local_name().as_ref().to_string(),
        attrs,
        ..Node::default()
    }
}

/// One `response` of a `multistatus`: its href and the properties found (status 200).
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The resource's href (as sent: usually an absolute path, percent-encoded).
    pub href: String,
    /// Properties with a 2xx status.
    pub props: Vec<Node>,
}

impl Response {
    /// The found property `{ns}name`.
    pub fn prop(&self, ns: &str, name: &str) -> Option<&Node> {
        self.props.iter().find(|p| p.is(ns, name))
    }

    /// The text of the found property `{ns}name`, trimmed; `None` when empty.
    pub fn text(&self, ns: &str, name: &str) -> Option<String> {
        self.prop(ns, name)
            .map(|p| p.text.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The hrefs inside the found property `{ns}name` (`current-user-principal`,
    /// `calendar-home-set`).
    pub fn hrefs(&self, ns: &str, name: &str) -> Vec<String> {
        self.prop(ns, name)
            .map(|p| {
                p.all(DAV, "href")
                    .map(|h| h.text.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn status_ok(node: &Node) -> bool {
    match node.child(DAV, "status") {
        // "HTTP/1.1 200 OK"
        Some(s) => s
            .text
            .split_whitespace()
            .nth(1)
            .is_some_and(|c| c.starts_with('2')),
        None => true,
    }
}

/// The responses of a `multistatus` document.
pub fn multistatus(text: &str) -> Result<Vec<Response>, String> {
    let root = parse(text)?;
    if !root.is(DAV, "multistatus") {
        return Err(format!(
            "expected DAV:multistatus, got {{{}}}{}",
            root.ns, root.name
        ));
    }
    let mut out = Vec::new();
    for r in root.all(DAV, "response") {
        let Some(href) = r.child(DAV, "href") else {
            continue;
        };
        if !status_ok(r) {
            continue;
        }
        let mut props = Vec::new();
        for ps in r.all(DAV, "propstat") {
            if !status_ok(ps) {
                continue;
            }
            if let Some(prop) = ps.child(DAV, "prop") {
                props.extend(prop.children.iter().cloned());
            }
        }
        out.push(Response {
            href: href.text.trim().to_string(),
            props,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistatus_with_prefixes_entities_and_404s() {
        let text = r#"<?xml version='1.0' encoding='utf-8'?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:response><D:href>/alice/work/</D:href>
<D:propstat><D:prop><D:resourcetype><C:calendar /><D:collection/></D:resourcetype><D:displayname>Work &amp; more</D:displayname>
<D:getetag>&quot;e1&quot;</D:getetag><C:calendar-data><![CDATA[BEGIN:VCALENDAR]]>&#13;
</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><x:getctag xmlns:x="http://calendarserver.org/ns/"/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response><response xmlns="DAV:"><href>/gone</href><status>HTTP/1.1 404 Not Found</status></response></D:multistatus>"#;
        let rs = multistatus(text).unwrap();
        assert_eq!(rs.len(), 1);
        let r = &rs[0];
        assert_eq!(r.href, "/alice/work/");
        assert!(r
            .prop(DAV, "resourcetype")
            .unwrap()
            .has_descendant(CALDAV, "calendar"));
        assert_eq!(r.text(DAV, "displayname").as_deref(), Some("Work & more"));
        assert_eq!(r.text(DAV, "getetag").as_deref(), Some("\"e1\""));
        assert!(r
            .prop(CALDAV, "calendar-data")
            .unwrap()
            .text
            .starts_with("BEGIN:VCALENDAR\r"));
        assert!(r.prop(CS, "getctag").is_none());
        assert!(multistatus("<a><b></a>").is_err());
        assert!(multistatus("<html/>").is_err());
    }
}
