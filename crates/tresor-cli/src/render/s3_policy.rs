//! `s3-policy`: an AWS IAM policy document, the same in both modes.

use super::{Outcome, Text};
use anyhow::Result;

/// The policy (JSON: `docs/cli.md`, "s3-policy"; AWS's policy grammar).
#[derive(Debug)]
pub struct Policy(pub serde_json::Value);

impl Outcome for Policy {
    fn text(&self, t: &mut Text) {
        // The policy is the result: indented JSON also without `--json`.
        if let Err(e) = t.json_pretty(&self.0) {
            t.err(format!("tresor: {e}"));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(&self.0)
    }
}
