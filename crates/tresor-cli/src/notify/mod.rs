//! Notifications (docs/cli.md, "Notifications"): healthchecks.io-style pings, generic JSON
//! webhooks and ntfy topics, sent when a job starts, succeeds or fails.
//!
//! The API other features call: build an [`Event`] and hand it to [`send`] with the profile's
//! [`Config`] (`[profiles.NAME.notify]`). Sending never fails the caller: a request that still
//! fails after its retries prints one warning line (URL secrets masked, [`mask_url`]).

mod http;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[profiles.NAME.notify]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A healthchecks.io ping URL: `URL/start`, `URL` (success), `URL/fail`.
    pub healthchecks: Option<String>,
    /// A generic webhook receiving a JSON body.
    pub webhook: Option<Webhook>,
    /// An ntfy topic URL.
    pub ntfy: Option<Ntfy>,
    /// Retries of a failed request (default 3), waiting 1 s, 2 s, 4 s … (at most 30 s).
    pub retries: Option<u32>,
    /// Timeout of one request in seconds (default 10).
    pub timeout: Option<u64>,
}

/// `webhook = { url, headers, events }`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where the JSON body is POSTed.
    pub url: String,
    /// Extra request headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The events sent (default all: `start`, `success`, `failure`).
    pub events: Option<Vec<Kind>>,
}

/// `ntfy = { url, priority, tags, events }`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ntfy {
    /// The topic URL, `https://ntfy.sh/TOPIC`.
    pub url: String,
    /// ntfy's `Priority` header (`1`–`5`, `min` … `max`).
    pub priority: Option<String>,
    /// ntfy's `Tags` header, joined by commas.
    pub tags: Option<Vec<String>>,
    /// The events sent (default `success` and `failure`).
    pub events: Option<Vec<Kind>>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The job started.
    Start,
    /// The job ended with exit code 0.
    Success,
    /// The job ended with another exit code.
    Failure,
}

impl Kind {
    /// The event's name: `start`, `success`, `failure`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Success => "success",
            Kind::Failure => "failure",
        }
    }
}

/// One notification. The webhook body is this, as JSON (docs/cli.md, "JSON: webhook").
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The profile.
    pub profile: String,
    /// The host (the profile's `host`, else the system's host name).
    pub host: String,
    /// What happened.
    #[serde(rename = "event")]
    pub kind: Kind,
    /// The step or `job`.
    pub step: String,
    /// The exit code (none at start).
    pub exit_code: Option<i32>,
    /// The snapshot a backup saved.
    pub snapshot_id: Option<String>,
    /// The backup's JSON summary (as `backup --json` prints it), if any.
    pub summary: Option<serde_json::Value>,
    /// The last ~10 KB of the job's log (its steps' standard error).
    pub log_tail: String,
}

/// The system's host name (empty if unknown).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Send `event` to every target of `cfg` that wants it. Never fails: a target that still fails
/// after its retries prints `warning: notify TARGET URL: REASON` (URL masked).
pub fn send(cfg: &Config, event: &Event) {
    let retries = cfg.retries.unwrap_or(3);
    let client = match http::Client::new(Duration::from_secs(cfg.timeout.unwrap_or(10)), retries) {
        Ok(c) => c,
        Err(e) => {
            crate::render::say(format!("warning: notify: {e}"));
            return;
        }
    };
    for req in requests(cfg, event) {
        if let Err(e) = client.send(&req) {
            crate::render::say(format!(
                "warning: notify {} {}: {}",
                req.target,
                mask_url(&req.url),
                crate::render::escape_controls(&e)
            ));
        }
    }
}

/// The requests `cfg` makes for `event`.
fn requests(cfg: &Config, event: &Event) -> Vec<http::Request> {
    let mut out = Vec::new();
    if let Some(url) = &cfg.healthchecks {
        let suffix = match event.kind {
            Kind::Start => "/start",
            Kind::Success => "",
            Kind::Failure => "/fail",
        };
        out.push(http::Request {
            target: "healthchecks",
            url: with_path_suffix(url, suffix),
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: event.log_tail.clone().into_bytes(),
        });
    }
    if let Some(w) = &cfg.webhook {
        let all = [Kind::Start, Kind::Success, Kind::Failure];
        if w.events.as_deref().unwrap_or(&all).contains(&event.kind) {
            let mut headers = vec![("Content-Type".into(), "application/json".into())];
            headers.extend(w.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            out.push(http::Request {
                target: "webhook",
                url: w.url.clone(),
                headers,
                body: serde_json::to_vec(event).unwrap_or_default(),
            });
        }
    }
    if let Some(n) = &cfg.ntfy {
        out.extend(ntfy(n, event));
    }
    out
}

/// The ntfy request for `event`, if `n` wants it.
fn ntfy(n: &Ntfy, event: &Event) -> Option<http::Request> {
    let default = [Kind::Success, Kind::Failure];
    if !n
        .events
        .as_deref()
        .unwrap_or(&default)
        .contains(&event.kind)
    {
        return None;
    }
    let title = format!(
        "tresor {} on {}: {}",
        event.profile,
        event.host,
        event.kind.name()
    );
    let mut headers = vec![("Title".to_string(), header_safe(&title))];
    if let Some(p) = &n.priority {
        headers.push(("Priority".into(), header_safe(p)));
    }
    if let Some(t) = &n.tags {
        headers.push(("Tags".into(), header_safe(&t.join(","))));
    }
    let mut body = match event.exit_code {
        Some(c) => format!("{title} (exit code {c})\n"),
        None => format!("{title}\n"),
    };
    if event.kind == Kind::Failure {
        body.push_str(&event.log_tail);
    }
    Some(http::Request {
        target: "ntfy",
        url: n.url.clone(),
        headers,
        body: body.into_bytes(),
    })
}

/// `s` as a header value: printable ASCII, anything else as `?`.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// `url` with `suffix` appended to its path (before a query).
fn with_path_suffix(url: &str, suffix: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = format!("{}{suffix}", base.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` safe to print: user information, path and query (which carry tokens: a
/// healthchecks UUID, an ntfy topic, `?token=`) as `***`; only scheme, host and port stay.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => format!("***@{h}"),
        None => authority.to_string(),
    };
    let tail = if tail.is_empty() || tail == "/" {
        tail
    } else {
        "/***"
    };
    crate::render::escape_controls(&format!("{scheme}://{host}{tail}"))
}

/// `url` with its credentials masked but its path kept (a repository location, a pushgateway):
/// user information (`user:pass@`) and the query (`?token=…`) become `***`. Text that is no URL
/// stays as it is.
pub fn mask_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => format!("***@{h}"),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => tail.to_string(),
    };
    format!("{scheme}://{host}{tail}")
}

/// A notify configuration as JSON (`profile show`) with its secrets masked: every URL by
/// [`mask_url`], every header value as `***`.
pub fn mask(v: &mut serde_json::Value) {
    let Some(o) = v.as_object_mut() else { return };
    for (k, v) in o.iter_mut() {
        match (k.as_str(), v) {
            ("healthchecks" | "url", serde_json::Value::String(u)) => *u = mask_url(u),
            ("headers", serde_json::Value::Object(h)) => {
                for x in h.values_mut() {
                    *x = "***".into();
                }
            }
            (_, v @ serde_json::Value::Object(_)) => mask(v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            mask_url("https://user:pw@hc.example:8443/ping/uuid?x=1"),
            "https://***@hc.example:8443/***"
        );
        assert_eq!(mask_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(mask_url("https://ntfy.sh/"), "https://ntfy.sh/");
        assert_eq!(mask_url("https://h?token=s"), "https://h/***");
    }

    #[test]
    fn locations_keep_their_path_and_lose_credentials() {
        let m = mask_credentials;
        assert_eq!(
            m("tresor+https://alice:S3CRET@backup.example.com:8443/fleet?token=T"),
            "tresor+https://***@backup.example.com:8443/fleet?***"
        );
        assert_eq!(m("s3:https://s3.example/b/p"), "s3:https://s3.example/b/p");
        assert_eq!(m("/srv/backup"), "/srv/backup");
        assert_eq!(m("http://gw:9091"), "http://gw:9091");
    }

    #[test]
    fn suffixes_go_before_the_query() {
        assert_eq!(
            with_path_suffix("https://h/p/", "/start"),
            "https://h/p/start"
        );
        assert_eq!(
            with_path_suffix("https://h/p?rid=1", "/fail"),
            "https://h/p/fail?rid=1"
        );
        assert_eq!(with_path_suffix("https://h/p", ""), "https://h/p");
    }

    #[test]
    fn header_values_are_printable_ascii() {
        assert_eq!(header_safe("a\r\nb\u{e9}"), "a??b?");
    }
}
