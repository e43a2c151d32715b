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
    /// `cat tree ID`: see [`tree_view`].
    Tree(serde_json::Value),
}

/// A tree as `cat tree` shows it: its format type as it serialises, with the names (of entries
/// and extended attributes) and symlink targets as text by the display rule
/// ([`tresor_format::tree::display_bytes`]: control characters, backslashes and non-UTF-8
/// bytes escaped) instead of arrays of bytes.
///
/// # Errors
/// None in practice (a tree always serialises); the serde error otherwise.
pub fn tree_view(tree: &Tree) -> Result<serde_json::Value> {
    use tresor_format::tree::display_bytes;
    let mut v = serde_json::to_value(tree)?;
    let nodes = v["nodes"].as_array_mut().into_iter().flatten();
    for (n, node) in nodes.zip(&tree.nodes) {
        n["name"] = display_bytes(&node.name).into();
        n["target"] = display_bytes(&node.target).into();
        let xattrs = n["xattrs"].as_array_mut().into_iter().flatten();
        for (x, xattr) in xattrs.zip(&node.xattrs) {
            x["name"] = display_bytes(&xattr.name).into();
        }
    }
    Ok(v)
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
    fn tree_names_are_text() {
        let mut node = tresor_testkit::craft::node(b"", tresor_format::tree::NodeKind::Symlink);
        node.name = b"a\\b\n\xff".to_vec();
        node.target = b"t\x1b".to_vec();
        node.xattrs = vec![tresor_format::tree::Xattr {
            name: b"user.x".to_vec(),
            value: vec![1, 2],
        }];
        let v = tree_view(&Tree { nodes: vec![node] }).unwrap();
        assert_eq!(v["nodes"][0]["name"], "a\\\\b\\n\\xff");
        assert_eq!(v["nodes"][0]["target"], "t\\x1b");
        assert_eq!(v["nodes"][0]["xattrs"][0]["name"], "user.x");
        assert_eq!(
            v["nodes"][0]["xattrs"][0]["value"],
            serde_json::json!([1, 2])
        );
        assert_eq!(v["nodes"][0]["mode"], 0o644);
    }

    #[test]
    fn pack_blobs_in_both_modes() {
        let blobs = vec![BlobEntry {
            blob_type: BlobType::Data,
            id: BlobId([1; 32]),
            offset: 0,
            length: 40,
            raw_length: 12,
            member: None,
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
                "[\n  {{\n    \"blob_type\": \"Data\",\n    \"id\": \"{}\",\n    \"offset\": 0,\n    \"length\": 40,\n    \"raw_length\": 12,\n    \"member\": null\n  }}\n]\n",
                "01".repeat(32)
            )
        );
    }
}
