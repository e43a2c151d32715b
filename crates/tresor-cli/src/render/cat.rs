//! `cat`: a decoded repository object, as JSON in both modes (a debugging aid).

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::config::Config;
use tresor_format::index::IndexPack;
use tresor_format::keyfile::KeyFile;
use tresor_format::pack::BlobEntry;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::Tree;

/// One pack of an index object, without its data key.
#[derive(Debug, Serialize)]
pub struct IndexedPack<'a> {
    /// Pack id.
    pub pack: ObjectId,
    /// Its blobs.
    pub blobs: &'a [BlobEntry],
}

impl<'a> From<&'a IndexPack> for IndexedPack<'a> {
    fn from(p: &'a IndexPack) -> Self {
        IndexedPack {
            pack: p.id,
            blobs: &p.blobs,
        }
    }
}

/// A decoded object (JSON: `docs/cli.md`, "cat"): its format types as they serialise.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Object<'a> {
    /// `cat config`.
    Config(&'a Config),
    /// `cat key ID`: the key file (its secrets stay encrypted).
    Key(&'a KeyFile),
    /// `cat snapshot ID`.
    Snapshot(&'a Snapshot),
    /// `cat index ID`: its packs and their blobs (data keys left out).
    Index(Vec<IndexedPack<'a>>),
    /// `cat pack ID`: the blobs its header lists.
    Pack(&'a [BlobEntry]),
    /// `cat tree ID`.
    Tree(&'a Tree),
}

impl Outcome for Object<'_> {
    /// The same indented JSON: `cat` prints nothing else.
    fn text(&self, t: &mut Text) {
        if let Err(e) = t.json_pretty(self) {
            t.err(format!("tresor: {e}"));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};
    use tresor_format::BlobId;
    use tresor_format::blob::BlobType;

    #[test]
    fn pack_blobs_in_both_modes() {
        let blobs = vec![BlobEntry {
            blob_type: BlobType::Data,
            id: BlobId([1; 32]),
            offset: 0,
            length: 40,
            raw_length: 12,
        }];
        let o = Object::Pack(&blobs);
        let text = render(
            &o,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        let json = render(
            &o,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(text.stream(Stream::Out), json.stream(Stream::Out));
        assert_eq!(
            json.stream(Stream::Out),
            format!(
                "[\n  {{\n    \"blob_type\": \"Data\",\n    \"id\": \"{}\",\n    \"offset\": 0,\n    \"length\": 40,\n    \"raw_length\": 12\n  }}\n]\n",
                "01".repeat(32)
            )
        );
    }
}
