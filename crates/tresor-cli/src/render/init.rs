//! `init`: the repository created.

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_format::config::{ObjectLockConfig, ObjectLockMode};

/// A repository was created (JSON: `docs/cli.md`, "init").
#[derive(Debug, Serialize)]
pub struct Initialized {
    /// Always `"initialized"`.
    pub message_type: &'static str,
    /// The repository's id (64 hex digits, from its config).
    pub id: String,
    /// The location as given.
    pub repository: String,
    /// Object Lock retention of every object written (S3), for the text.
    #[serde(skip)]
    pub object_lock: Option<ObjectLockConfig>,
}

impl Initialized {
    /// The outcome of creating repository `id` at `repository`.
    pub fn new(id: &str, repository: &str, object_lock: Option<ObjectLockConfig>) -> Self {
        Initialized {
            message_type: "initialized",
            id: id.to_string(),
            repository: repository.to_string(),
            object_lock,
        }
    }
}

impl Outcome for Initialized {
    fn text(&self, t: &mut Text) {
        let short = self.id.get(..10).unwrap_or(&self.id);
        t.info(format!(
            "created tresor repository {short} at {}",
            self.repository
        ));
        if let Some(l) = self.object_lock {
            let mode = match l.mode {
                ObjectLockMode::Governance => "governance mode",
                ObjectLockMode::Compliance => "compliance mode",
            };
            t.info(format!(
                "Every object is locked ({mode}) for {} days after it is written.",
                l.days
            ));
        }
        t.info("Keep the password safe: without it the data cannot be read.");
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    #[test]
    fn text_and_json() {
        let id = "ab".repeat(32);
        let lock = ObjectLockConfig {
            mode: ObjectLockMode::Compliance,
            days: 30,
        };
        let o = Initialized::new(&id, "s3:https://h/b", Some(lock));
        let t = render(
            &o,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            "created tresor repository ababababab at s3:https://h/b\n\
             Every object is locked (compliance mode) for 30 days after it is written.\n\
             Keep the password safe: without it the data cannot be read.\n"
        );
        assert_eq!(
            render(
                &o,
                Mode {
                    json: false,
                    quiet: true
                }
            )
            .unwrap()
            .stream(Stream::Out),
            ""
        );
        let j = render(
            &o,
            Mode {
                json: true,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            format!(
                "{{\"message_type\":\"initialized\",\"id\":\"{id}\",\"repository\":\"s3:https://h/b\"}}\n"
            )
        );
    }
}
