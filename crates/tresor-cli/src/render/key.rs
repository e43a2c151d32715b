//! `key …`: the key list, a key added, removed or changed, the paper key, unknown signers.

use super::{Level, Outcome, Text, escape_controls, quoted};
use anyhow::Result;
use serde::Serialize;
use tresor_core::keys::{KeyListing, UnknownSigner};
use tresor_core::repo::trust::Standing;
use tresor_format::ObjectId;
use tresor_format::keyfile::KeyKind;
use zeroize::Zeroizing;

/// `"full"` or `"put-only"`.
pub fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Full => "full",
        KeyKind::PutOnly => "put-only",
    }
}

/// One key as `key list` shows it (JSON: `docs/cli.md`, "key list").
#[derive(Debug, Serialize)]
pub struct KeyRow<'a> {
    /// Key file id.
    pub id: ObjectId,
    /// The key in use.
    pub current: bool,
    /// Removed: a revocation names it.
    pub revoked: bool,
    /// Listed by the trust record and not revoked.
    pub trusted: bool,
    /// `"full"` or `"put-only"`.
    pub kind: &'static str,
    /// Host the key is certified for.
    pub host: &'a str,
    /// User recorded in the key file.
    pub username: &'a str,
    /// Creation time, RFC 3339.
    pub created: &'a str,
    /// Its standing, for the text.
    #[serde(skip)]
    pub standing: Standing,
}

impl<'a> From<&'a KeyListing> for KeyRow<'a> {
    fn from(k: &'a KeyListing) -> Self {
        KeyRow {
            id: k.info.id,
            current: k.current,
            revoked: k.standing == Standing::Revoked,
            trusted: k.standing == Standing::Trusted,
            kind: kind_name(k.info.kind),
            host: &k.info.host,
            username: &k.info.username,
            created: &k.info.created,
            standing: k.standing,
        }
    }
}

/// The keys of the repository, oldest first, and the time zone of the table's times.
#[derive(Debug)]
pub struct KeyList<'a>(pub Vec<KeyRow<'a>>, pub jiff::tz::TimeZone);

impl Outcome for KeyList<'_> {
    fn text(&self, t: &mut Text) {
        let rows: Vec<Vec<String>> = self.0.iter().map(|k| self.row(k)).collect();
        for line in super::table::lines(&["  ID", "Kind", "Host", "User", "Created"], &rows) {
            t.out(line);
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(&self.0)
    }
}

impl KeyList<'_> {
    /// `*` before the key in use; the creation time in local time (as recorded when it does
    /// not parse, quoted).
    fn row(&self, k: &KeyRow) -> Vec<String> {
        let cur = if k.current { "*" } else { " " };
        let kind = match k.standing {
            Standing::Trusted => k.kind,
            Standing::Revoked => "revoked",
            Standing::NotListed => "untrusted",
        };
        let created = tresor_core::time::human_recorded(k.created, &self.1);
        vec![
            format!("{cur} {}", k.id.short()),
            kind.to_string(),
            escape_controls(k.host),
            escape_controls(k.username),
            created.unwrap_or_else(|| quoted(k.created)),
        ]
    }
}

/// A key added, removed, re-encrypted or imported (JSON: `docs/cli.md`, "key add").
#[derive(Debug, Serialize)]
pub struct KeyChanged {
    /// `"added"`, `"removed"`, `"changed password of"` or `"imported"`.
    pub message_type: &'static str,
    /// The key file.
    pub id: ObjectId,
}

impl Outcome for KeyChanged {
    fn text(&self, t: &mut Text) {
        t.info(format!("{} key {}", self.message_type, self.id.short()));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// An unlocked key file written (JSON: `docs/cli.md`, "key export").
#[derive(Debug, Serialize)]
pub struct UnlockedWritten {
    /// `"unlocked key written"`.
    pub message_type: &'static str,
    /// The key file of the key written.
    pub id: ObjectId,
    /// Where it was written.
    pub file: String,
    /// Whether the key is put-only (it can write backups but not read them).
    pub put_only: bool,
}

impl Outcome for UnlockedWritten {
    fn text(&self, t: &mut Text) {
        let can = if self.put_only {
            "write new backups"
        } else {
            "read and change every backup"
        };
        t.info(format!(
            "wrote key {} unlocked to {}: use it with --key-file; anyone who reads that file can {can}",
            self.id.short(),
            self.file
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// The paper key (JSON: `{"paper": TEXT}`); wiped from memory when dropped.
#[derive(Serialize)]
pub struct Paper {
    /// Grouped hex with a checksum per line.
    #[serde(serialize_with = "wiped_str")]
    pub paper: Zeroizing<String>,
}

fn wiped_str<S: serde::Serializer>(
    s: &Zeroizing<String>,
    ser: S,
) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

impl Outcome for Paper {
    fn text(&self, t: &mut Text) {
        t.out_lines(&self.paper);
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// A signer nobody vouches for, as JSON shows it.
#[derive(Debug, Serialize)]
pub struct SignerJson<'a> {
    /// Its public key, 64 hex digits.
    pub signer: String,
    /// Index objects it signed.
    pub index_objects: usize,
    /// Objects it signed.
    pub objects: usize,
    /// Its snapshots (time, host and paths `null` when the snapshot does not decrypt).
    pub snapshots: Vec<SignedSnapshot<'a>>,
}

/// One snapshot of an unknown signer.
#[derive(Debug, Serialize)]
pub struct SignedSnapshot<'a> {
    /// Snapshot id.
    pub id: ObjectId,
    /// Its time, as the signer wrote it.
    pub time: Option<&'a str>,
    /// Its host name, as the signer wrote it.
    pub hostname: Option<&'a str>,
    /// Its paths, as the signer wrote them.
    pub paths: Option<&'a [String]>,
}

impl<'a> From<&'a UnknownSigner> for SignerJson<'a> {
    fn from(u: &'a UnknownSigner) -> Self {
        SignerJson {
            signer: hex::encode(u.signer),
            index_objects: u.index_objects,
            objects: u.objects.len(),
            snapshots: (u.snapshots.iter())
                .map(|(id, s)| SignedSnapshot {
                    id: *id,
                    time: s.as_ref().map(|s| s.time.as_str()),
                    hostname: s.as_ref().map(|s| s.hostname.as_str()),
                    paths: s.as_ref().map(|s| s.paths.as_slice()),
                })
                .collect(),
        }
    }
}

/// The text listing of unknown signers (standard output).
fn unknown_lines<'a>(unknown: impl IntoIterator<Item = &'a UnknownSigner>, t: &mut Text) {
    for u in unknown {
        t.out(format!(
            "signer {}: {} object(s): {} snapshot(s), {} index object(s) — ignored by readers",
            hex::encode(u.signer),
            u.objects.len(),
            u.snapshots.len(),
            u.index_objects
        ));
        for (id, s) in &u.snapshots {
            t.out(match s {
                Some(s) => snapshot_line(id, s),
                None => format!("  {} (does not decrypt)", id.short()),
            });
        }
    }
}

/// `  ID time T host H paths P…`, everything the signer chose quoted and escaped.
fn snapshot_line(id: &ObjectId, s: &tresor_format::snapshot::Snapshot) -> String {
    let paths: Vec<String> = s.paths.iter().map(|p| quoted(p)).collect();
    format!(
        "  {} time {} host {} paths {}",
        id.short(),
        quoted(&s.time),
        quoted(&s.hostname),
        paths.join(" ")
    )
}

/// What `key signers --accept` is about to accept, before it asks (text: standard output;
/// JSON: standard error, which keeps standard output for the result).
#[derive(Debug)]
pub struct ToAccept<'a>(pub &'a [&'a UnknownSigner]);

impl Outcome for ToAccept<'_> {
    fn text(&self, t: &mut Text) {
        t.out("to accept:");
        unknown_lines(self.0.iter().copied(), t);
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        for u in self.0 {
            t.err(format!(
                "to accept: signer {}: {} object(s), {} snapshot(s)",
                hex::encode(u.signer),
                u.objects.len(),
                u.snapshots.len()
            ));
            for (id, s) in &u.snapshots {
                if let Some(s) = s {
                    t.err(snapshot_line(id, s));
                }
            }
        }
        Ok(())
    }
}

/// `key signers`: the unknown signers, and those accepted (JSON: `docs/cli.md`, "key signers").
#[derive(Debug)]
pub struct Signers<'a> {
    /// Every signer nobody vouches for (before accepting).
    pub unknown: &'a [UnknownSigner],
    /// The signers accepted now.
    pub accepted: &'a [[u8; 32]],
    /// Whether `--accept` was given.
    pub asked: bool,
}

#[derive(Serialize)]
struct SignersJson<'a> {
    unknown: Vec<SignerJson<'a>>,
    accepted: Vec<String>,
}

impl Outcome for Signers<'_> {
    fn text(&self, t: &mut Text) {
        if !self.asked {
            if self.unknown.is_empty() {
                t.out("every signer is vouched for by a trusted key or a revocation");
            }
            unknown_lines(self.unknown, t);
        } else if self.accepted.is_empty() {
            t.out(
                "nothing to accept: every signer is vouched for by a trusted key or a revocation",
            );
        } else {
            for a in self.accepted {
                t.out(format!("accepted signer {}", hex::encode(a)));
            }
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(&SignersJson {
            unknown: self.unknown.iter().map(Into::into).collect(),
            accepted: self.accepted.iter().map(hex::encode).collect(),
        })
    }
}

/// A key made from a paper key (JSON: `docs/cli.md`, "key import").
#[derive(Debug)]
pub struct Imported<'a> {
    /// The new key file.
    pub id: ObjectId,
    /// Signers whose objects stay ignored until accepted.
    pub unknown: &'a [UnknownSigner],
    /// When no trust record was found and a new one was written: the config's parameters, for
    /// the admin to check (a `warning:` line in both modes).
    pub trust_rebuilt: Option<String>,
}

#[derive(Serialize)]
struct ImportedJson<'a> {
    message_type: &'static str,
    id: ObjectId,
    trust_rebuilt: bool,
    unknown_signers: Vec<SignerJson<'a>>,
}

impl Imported<'_> {
    fn warning(&self, t: &mut Text) {
        if let Some(config) = &self.trust_rebuilt {
            t.diag(
                Level::Warning,
                format!(
                    "the repository had no trust record: a new one trusts the config as it is \
                     now ({config}) and only the imported key; check the config is yours"
                ),
            );
        }
    }
}

impl Outcome for Imported<'_> {
    fn text(&self, t: &mut Text) {
        self.warning(t);
        t.info(format!("imported key {}", self.id.short()));
        if !self.unknown.is_empty() {
            t.out(
                "these signers have no key file (lost keys, or a forger); their objects stay \
                 ignored until you accept them with `tresor key signers --accept PREFIX`:",
            );
            unknown_lines(self.unknown, t);
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        self.warning(t);
        t.json_line(&ImportedJson {
            message_type: "imported",
            id: self.id,
            trust_rebuilt: self.trust_rebuilt.is_some(),
            unknown_signers: self.unknown.iter().map(Into::into).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};
    use tresor_format::BlobId;
    use tresor_format::snapshot::Snapshot;

    const TEXT: Mode = Mode {
        json: false,
        quiet: false,
    };
    const JSON: Mode = Mode {
        json: true,
        quiet: false,
    };

    fn signer() -> UnknownSigner {
        let s = Snapshot {
            version: 2,
            time: "2024-01-01T00:00:00Z".into(),
            tree: BlobId([0; 32]),
            paths: vec!["/a\nb".into()],
            hostname: "h".into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: "tresor".into(),
            markers: vec![],
            original: None,
        };
        UnknownSigner {
            signer: [0xee; 32],
            snapshots: vec![(ObjectId([1; 32]), Some(s)), (ObjectId([2; 32]), None)],
            index_objects: 1,
            objects: vec![ObjectId([1; 32]), ObjectId([2; 32]), ObjectId([3; 32])],
        }
    }

    #[test]
    fn signers_in_every_case() {
        let unknown = [signer()];
        let listed = Signers {
            unknown: &unknown,
            accepted: &[],
            asked: false,
        };
        let ee = "ee".repeat(32);
        assert_eq!(
            render(&listed, TEXT).unwrap().stream(Stream::Out),
            format!(
                "signer {ee}: 3 object(s): 2 snapshot(s), 1 index object(s) — ignored by readers\n  \
                 01010101 time \"2024-01-01T00:00:00Z\" host \"h\" paths \"/a\\nb\"\n  \
                 02020202 (does not decrypt)\n"
            )
        );
        let none = Signers {
            unknown: &[],
            accepted: &[],
            asked: true,
        };
        assert_eq!(
            render(&none, TEXT).unwrap().stream(Stream::Out),
            "nothing to accept: every signer is vouched for by a trusted key or a revocation\n"
        );
        let accepted = Signers {
            unknown: &unknown,
            accepted: &[[0xee; 32]],
            asked: true,
        };
        assert_eq!(
            render(&accepted, TEXT).unwrap().stream(Stream::Out),
            format!("accepted signer {ee}\n")
        );
        let v: serde_json::Value =
            serde_json::from_str(&render(&accepted, JSON).unwrap().stream(Stream::Out)).unwrap();
        assert_eq!(v["accepted"][0], ee);
        assert_eq!(v["unknown"][0]["objects"], 3);
        assert_eq!(
            v["unknown"][0]["snapshots"][1]["time"],
            serde_json::Value::Null
        );
        let chosen = [&unknown[0]];
        let to_accept = render(&ToAccept(&chosen), JSON).unwrap();
        assert_eq!(to_accept.stream(Stream::Out), "");
        assert_eq!(
            to_accept.stream(Stream::Err),
            format!(
                "to accept: signer {ee}: 3 object(s), 2 snapshot(s)\n  \
                 01010101 time \"2024-01-01T00:00:00Z\" host \"h\" paths \"/a\\nb\"\n"
            )
        );
    }

    #[test]
    fn imported_and_paper() {
        let unknown = [signer()];
        let o = Imported {
            id: ObjectId([9; 32]),
            unknown: &unknown,
            trust_rebuilt: Some("chunks 1/2/3 bytes".into()),
        };
        let warning = "warning: the repository had no trust record: a new one trusts the config \
                       as it is now (chunks 1/2/3 bytes) and only the imported key; check the \
                       config is yours\n";
        let t = render(&o, TEXT).unwrap();
        assert_eq!(t.stream(Stream::Err), warning);
        assert!(t.stream(Stream::Out).starts_with(
            "imported key 09090909\nthese signers have no key file (lost keys, or a forger); \
             their objects stay ignored until you accept them with `tresor key signers --accept PREFIX`:\n\
             signer "
        ));
        let j = render(&o, JSON).unwrap();
        assert_eq!(j.stream(Stream::Err), warning);
        let v: serde_json::Value = serde_json::from_str(&j.stream(Stream::Out)).unwrap();
        assert_eq!(
            (v["message_type"].as_str(), v["trust_rebuilt"].as_bool()),
            (Some("imported"), Some(true))
        );
        let paper = Paper {
            paper: Zeroizing::new("line 1\nline 2\n".into()),
        };
        assert_eq!(
            render(&paper, TEXT).unwrap().stream(Stream::Out),
            "line 1\nline 2\n"
        );
        assert_eq!(
            render(&paper, JSON).unwrap().stream(Stream::Out),
            "{\"paper\":\"line 1\\nline 2\\n\"}\n"
        );
    }
}
