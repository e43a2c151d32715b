//! Pushing to a Prometheus pushgateway: `POST URL/metrics/job/tresor[/profile/NAME][/host/HOST]`
//! with the text format. POST (not PUT) replaces only the families pushed, so a failed backup,
//! which pushes no `last_success`, leaves the previous one in the gateway, and `check`'s
//! families stay when `backup` pushes. Label values that are empty or hold other characters
//! than `A-Z a-z 0-9 - . _ ~` go in the path base64url-encoded (`host@base64/…`), as the
//! pushgateway reads them.

use anyhow::{Result, bail};
use base64::Engine as _;
use std::time::Duration;

/// Attempts before giving up, and the pause before the second one (doubling).
const ATTEMPTS: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The URL to push to for `base` (the gateway's address, whose query, if any, stays at the end),
/// a profile and a host.
pub fn target(base: &str, profile: Option<&str>, host: Option<&str>) -> String {
    let (base, query) = base
        .split_once('?')
        .map_or((base, None), |(b, q)| (b, Some(q)));
    let mut url = format!("{}/metrics/job/tresor", base.trim_end_matches('/'));
    for (label, value) in [("profile", profile), ("host", host)] {
        if let Some(v) = value {
            url.push('/');
            url.push_str(&segment(label, v));
        }
    }
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// `label/value`, or `label@base64/VALUE` when the value needs it.
fn segment(label: &str, value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        format!("{label}/{value}")
    } else if value.is_empty() {
        format!("{label}@base64/=")
    } else {
        let b = base64::engine::general_purpose::URL_SAFE.encode(value);
        format!("{label}@base64/{b}")
    }
}

/// POST `body` to `url`, up to [`ATTEMPTS`] times with a doubling pause; the last error.
pub fn push(url: &str, body: String) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("the pushgateway URL must start with http:// or https://");
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut pause = FIRST_PAUSE;
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        let sent = client
            .post(url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(body.clone())
            .send();
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = Some(anyhow::anyhow!("the gateway answered {}", r.status())),
            // Without the URL: it may hold credentials (userinfo, a token in the query).
            Err(e) => last = Some(anyhow::Error::from(e.without_url())),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(pause);
            pause *= 2;
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("not sent")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_need_it_are_base64url_encoded() {
        assert_eq!(
            target("http://gw:9091/", Some("laptop"), Some("h1.example")),
            "http://gw:9091/metrics/job/tresor/profile/laptop/host/h1.example"
        );
        assert_eq!(
            target("http://gw", None, Some("a/b?")),
            "http://gw/metrics/job/tresor/host@base64/YS9iPw=="
        );
        assert_eq!(
            target("http://gw", Some(""), None),
            "http://gw/metrics/job/tresor/profile@base64/="
        );
        // A query (a token) stays at the end, after the grouping path.
        assert_eq!(
            target("http://gw/p/?tok=Q", None, Some("h")),
            "http://gw/p/metrics/job/tresor/host/h?tok=Q"
        );
    }
}
