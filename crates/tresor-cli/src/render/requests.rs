//! The `requests` of a command run: the storage requests it made and the bytes it moved
//! (counted by `tresor_storage::counted`), added to a command's outcome by [`WithRequests`]:
//! one `Requests:` line in the text, a `requests` object in the command's JSON summary
//! (docs/cli.md, "JSON output").

use super::{Outcome, Stream, Text};
use crate::output::bytes;
use anyhow::Result;
use tresor_storage::counted::Counts;

/// The JSON `requests` object: the counts as `tresor_storage::counted` keeps them.
pub type Requests = Counts;

/// `Requests:    3 PUT, 5 GET, 0 HEAD, 2 LIST, 0 DELETE (1.00 KiB up, 20 B down)`.
pub fn line(c: &Counts) -> String {
    format!(
        "Requests:    {} PUT, {} GET, {} HEAD, {} LIST, {} DELETE ({} up, {} down)",
        c.put,
        c.get,
        c.head,
        c.list,
        c.delete,
        bytes(c.bytes_up),
        bytes(c.bytes_down)
    )
}

/// A further field of a summary: its JSON key and value, and its text line.
#[derive(Debug, Clone)]
pub struct Extra {
    /// The JSON key.
    pub key: &'static str,
    /// The JSON value.
    pub value: serde_json::Value,
    /// The text line (informational).
    pub line: String,
}

/// An outcome with the run's requests (and any [`Extra`] fields before them): the text gets
/// the extras' lines and [`Requests::line`] (informational), and the last JSON object the
/// outcome prints gets the extras' keys and a `requests` key (an outcome that prints no JSON
/// object is left as it is).
pub struct WithRequests<'a, O: Outcome + ?Sized> {
    /// The command's own outcome.
    pub inner: &'a O,
    /// The run's requests.
    pub requests: Requests,
    /// Further fields.
    pub extra: Vec<Extra>,
}

impl<'a, O: Outcome + ?Sized> WithRequests<'a, O> {
    /// `inner` with `requests`.
    pub fn new(inner: &'a O, requests: Requests) -> Self {
        WithRequests {
            inner,
            requests,
            extra: Vec::new(),
        }
    }

    /// With a further field.
    pub fn and(mut self, key: &'static str, value: serde_json::Value, line: String) -> Self {
        self.extra.push(Extra { key, value, line });
        self
    }
}

impl<O: Outcome + ?Sized> Outcome for WithRequests<'_, O> {
    fn text(&self, t: &mut Text) {
        self.inner.text(t);
        for e in &self.extra {
            t.info(e.line.clone());
        }
        t.info(line(&self.requests));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        let before = t.lines.len();
        self.inner.json(t)?;
        let mut extra = String::new();
        for e in &self.extra {
            extra.push_str(&format!("{}:{},", serde_json::to_string(e.key)?, e.value));
        }
        extra.push_str("\"requests\":");
        extra.push_str(&serde_json::to_string(&self.requests)?);
        let last = t.lines[before..]
            .iter_mut()
            .rev()
            .find(|(s, l)| *s == Stream::Out && l.trim_end().ends_with('}'));
        if let Some((_, doc)) = last {
            let trimmed = doc.trim_end();
            let body = trimmed.strip_suffix('}').unwrap_or(trimmed).trim_end();
            let sep = if body.ends_with('{') { "" } else { "," };
            let joined = format!("{body}{sep}{extra}}}");
            *doc = zeroize::Zeroizing::new(joined);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, render};

    struct Two;
    impl Outcome for Two {
        fn text(&self, t: &mut Text) {
            t.out("done");
        }
        fn json(&self, t: &mut Text) -> Result<()> {
            t.json_line(&serde_json::json!({"a": 1}))?;
            t.json_line(&serde_json::json!({}))?;
            t.json_line(&serde_json::json!({"n": {"m": {}}}))
        }
    }

    #[test]
    fn the_last_object_gets_the_requests() {
        let r = Requests {
            put: 3,
            get: 5,
            head: 0,
            list: 2,
            delete: 1,
            bytes_up: 1024,
            bytes_down: 20,
        };
        let json = Mode {
            json: true,
            quiet: false,
        };
        let with = WithRequests::new(&Two, r).and("x", serde_json::json!(1.5), "X: 1.5".into());
        let t = render(&with, json).unwrap();
        let want = "{\"put\":3,\"get\":5,\"head\":0,\"list\":2,\"delete\":1,\"bytes_up\":1024,\"bytes_down\":20}";
        assert_eq!(
            t.stream(Stream::Out),
            format!("{{\"a\":1}}\n{{}}\n{{\"n\":{{\"m\":{{}}}},\"x\":1.5,\"requests\":{want}}}\n")
        );
        let text = render(
            &with,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            text.stream(Stream::Out),
            "done\nX: 1.5\nRequests:    3 PUT, 5 GET, 0 HEAD, 2 LIST, 1 DELETE (1.00 KiB up, 20 B down)\n"
        );
    }
}
