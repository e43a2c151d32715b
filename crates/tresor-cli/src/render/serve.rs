//! `serve hash-token`: a client token and the lines for the server config.

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;

/// A token and its hash (JSON: `docs/cli.md`, "serve hash-token").
#[derive(Debug, Serialize)]
pub struct HashedToken<'a> {
    /// The client's name.
    pub client: &'a str,
    /// The repository of the config lines.
    pub repository: &'a str,
    /// The role of the config lines.
    pub role: &'a str,
    /// The new token (`None` when it was read from standard input).
    pub token: Option<&'a str>,
    /// Its Argon2id hash (PHC string) for the config.
    pub token_hash: &'a str,
}

impl Outcome for HashedToken<'_> {
    fn text(&self, t: &mut Text) {
        if let Some(token) = self.token {
            t.out("# token for the client (TRESOR_SERVER_TOKEN); it is not stored anywhere:");
            t.out(format!("# {token}"));
        }
        t.out(format!("[clients.{}]", self.client));
        t.out(format!("repository = \"{}\"", self.repository));
        t.out(format!("role = \"{}\"", self.role));
        t.out(format!("token_hash = \"{}\"", self.token_hash));
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
    fn config_lines_and_json() {
        let o = HashedToken {
            client: "vps1",
            repository: "main",
            role: "append",
            token: Some("vps1.secret"),
            token_hash: "$argon2id$x",
        };
        let t = render(
            &o,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            "# token for the client (TRESOR_SERVER_TOKEN); it is not stored anywhere:\n# vps1.secret\n\
             [clients.vps1]\nrepository = \"main\"\nrole = \"append\"\ntoken_hash = \"$argon2id$x\"\n"
        );
        let j = render(
            &HashedToken { token: None, ..o },
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"client\":\"vps1\",\"repository\":\"main\",\"role\":\"append\",\"token\":null,\"token_hash\":\"$argon2id$x\"}\n"
        );
    }
}
