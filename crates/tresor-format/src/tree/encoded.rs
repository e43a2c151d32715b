//! A tree kept as its encoded bytes (format §10), its nodes decoded one at a time.
//!
//! A directory of 18,000 files decodes to about 7 MB of [`Node`]s (256 bytes each plus their
//! names, owners and blob lists) from about 2 MB of plaintext. A backup compares each directory
//! with its parent tree entry by entry, in name order, so it holds the parent tree encoded and
//! decodes the node it is looking at; the tree is validated as a whole first, by the same rules
//! and the same decoder as [`Tree::decode`].

use super::{Node, NodeKind, Tree, body, check_order};
use crate::BlobId;
use crate::error::{FormatError, Result};
use std::ops::Range;

/// A tree validated as a whole ([`EncodedTree::decode`]) and kept as its plaintext blob bytes
/// `B` (version byte, then postcard): node `i` is decoded when asked for ([`EncodedTree::node`]),
/// its name read in place ([`EncodedTree::name`]). Memory: the bytes, 4 bytes per node and the
/// 32-byte subtree id of each directory.
#[derive(Clone)]
pub struct EncodedTree<B> {
    bytes: B,
    /// Where node `i` starts in `bytes`; one more entry at the end of the last node.
    starts: Vec<u32>,
    /// The subtree ids of the directories, in node order.
    subtrees: Vec<BlobId>,
}

/// Fewest bytes a node takes encoded (a one-byte name and every other field at its smallest):
/// bounds what a hostile node count can make [`EncodedTree::decode`] reserve.
const MIN_NODE_LEN: usize = 24;

/// Its size, not its bytes (up to [`super::MAX_TREE_SIZE`]).
impl<B: AsRef<[u8]>> std::fmt::Debug for EncodedTree<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedTree")
            .field("bytes", &self.bytes.as_ref().len())
            .field("nodes", &(self.starts.len() - 1))
            .finish()
    }
}

impl<B: AsRef<[u8]>> EncodedTree<B> {
    /// Check plaintext blob bytes as [`Tree::decode`] does (size, version, every node by
    /// [`Node::validate`], names strictly increasing) and keep them, with where each node
    /// starts. Accepts exactly the bytes [`Tree::decode`] accepts, with the same nodes.
    ///
    /// # Errors
    /// As [`Tree::decode`]: [`FormatError::UnsupportedVersion`], or [`FormatError::Malformed`]
    /// naming the problem.
    pub fn decode(bytes: B) -> Result<Self> {
        let b = bytes.as_ref();
        let malformed = |e: postcard::Error| FormatError::malformed("tree", e);
        // A sequence's length as postcard reads it for `Tree::decode`: a varint `usize`.
        let (count, mut rest) = postcard::take_from_bytes::<usize>(body(b)?).map_err(malformed)?;
        let mut starts = Vec::with_capacity(count.min(b.len() / MIN_NODE_LEN) + 1);
        let mut subtrees = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        for _ in 0..count {
            starts.push(offset(b, rest));
            let (node, after) = postcard::take_from_bytes::<Node>(rest).map_err(malformed)?;
            node.validate()?;
            check_order(prev.as_deref(), &node.name)?;
            if node.kind == NodeKind::Dir {
                subtrees.extend(node.subtree);
            }
            prev = Some(node.name);
            rest = after;
        }
        starts.push(offset(b, rest));
        Ok(EncodedTree {
            bytes,
            starts,
            subtrees,
        })
    }

    /// The plaintext blob bytes.
    pub fn bytes(&self) -> &B {
        &self.bytes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subtree ids of the tree's directories, in node (name) order.
    pub fn subtrees(&self) -> &[BlobId] {
        &self.subtrees
    }

    /// Node `i`'s encoded bytes; empty when `i` is not below [`EncodedTree::len`].
    pub fn node_bytes(&self, i: usize) -> &[u8] {
        let range =
            |i: usize| Some(*self.starts.get(i)? as usize..*self.starts.get(i + 1)? as usize);
        range(i)
            .and_then(|r| self.bytes.as_ref().get(r))
            .unwrap_or_default()
    }

    /// Node `i`'s name, read in place (its first field); empty when `i` is not below
    /// [`EncodedTree::len`].
    pub fn name(&self, i: usize) -> &[u8] {
        postcard::take_from_bytes::<&[u8]>(self.node_bytes(i)).map_or(&[], |(name, _)| name)
    }

    /// Node `i`, decoded.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] when `i` is not below [`EncodedTree::len`] (the bytes were
    /// checked whole by [`EncodedTree::decode`] and are not changed).
    pub fn node(&self, i: usize) -> Result<Node> {
        let (node, _) = postcard::take_from_bytes::<Node>(self.node_bytes(i))
            .map_err(|e| FormatError::malformed("tree", e))?;
        Ok(node)
    }

    /// Nodes `range`, decoded.
    ///
    /// # Errors
    /// As [`EncodedTree::node`].
    pub fn nodes(&self, range: Range<usize>) -> Result<Vec<Node>> {
        range.map(|i| self.node(i)).collect()
    }

    /// The whole tree, decoded.
    ///
    /// # Errors
    /// As [`EncodedTree::node`].
    pub fn to_tree(&self) -> Result<Tree> {
        Ok(Tree {
            nodes: self.nodes(0..self.len())?,
        })
    }

    /// The index of the node called `name`, by binary search on the names in place.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Whether `nodes` are this tree's nodes, field by field: as many, each encoding to the
    /// bytes of the node at its place. Byte for byte: a tree another writer encoded with
    /// over-long varints (which postcard decodes) is "not the same" even when its nodes are —
    /// never the other way round.
    pub fn same_nodes(&self, nodes: &[Node]) -> bool {
        let mut buf = Vec::new();
        nodes.len() == self.len()
            && nodes.iter().enumerate().all(|(i, n)| {
                buf.clear();
                postcard::to_io(n, &mut buf).is_ok() && buf == self.node_bytes(i)
            })
    }
}

/// Where `rest`, a tail of `all`, starts in it. Below 2³² bytes: a tree is at most
/// [`super::MAX_TREE_SIZE`].
fn offset(all: &[u8], rest: &[u8]) -> u32 {
    u32::try_from(all.len() - rest.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Timestamp, Xattr};

    fn sample() -> Tree {
        let file = |name: &[u8], size: u64| Node {
            size,
            mode: 0o644,
            uid: 1000,
            user: Some("alice".into()),
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 5,
            },
            content: vec![BlobId([size as u8; 32])],
            ..Node::bare(name, NodeKind::File)
        };
        let mut nodes = vec![
            file(b"a", 1),
            Node {
                subtree: Some(BlobId([7; 32])),
                ..Node::bare(b"dir", NodeKind::Dir)
            },
            Node {
                target: b"../x".to_vec(),
                ..Node::bare(b"link", NodeKind::Symlink)
            },
            Node {
                xattrs: vec![Xattr {
                    name: b"user.k".to_vec(),
                    value: vec![0, 1, 2],
                }],
                ..file(b"z\xff", 1 << 40)
            },
        ];
        nodes.push(Node {
            subtree: Some(BlobId([9; 32])),
            ..Node::bare(b"z\xff\xff", NodeKind::Dir)
        });
        Tree { nodes }
    }

    #[test]
    fn nodes_names_and_subtrees_are_the_decoded_trees() {
        let tree = sample();
        let bytes = tree.encode_checked().unwrap();
        let e = EncodedTree::decode(&bytes[..]).unwrap();
        assert_eq!(e.len(), 5);
        for (i, n) in tree.nodes.iter().enumerate() {
            assert_eq!(e.name(i), n.name.as_slice());
            assert_eq!(&e.node(i).unwrap(), n);
            assert_eq!(e.find(&n.name), Some(i));
        }
        assert_eq!(e.find(b"b"), None);
        assert_eq!(e.find(b""), None);
        assert_eq!(e.find(b"zz"), None);
        assert_eq!(e.subtrees(), &[BlobId([7; 32]), BlobId([9; 32])]);
        assert_eq!(e.to_tree().unwrap(), tree);
        assert_eq!(e.nodes(1..3).unwrap(), tree.nodes[1..3]);
        assert!(e.same_nodes(&tree.nodes));
        assert!(!e.same_nodes(&tree.nodes[..4]));
        let mut changed = tree.nodes.clone();
        changed[3].mtime.nanos += 1;
        assert!(!e.same_nodes(&changed));
        // Out of range: nothing, never a panic.
        assert_eq!(e.name(5), b"");
        assert!(e.node(5).is_err());
        assert_eq!(e.node_bytes(usize::MAX), b"");
        let empty = Tree::default().encode();
        let e = EncodedTree::decode(empty).unwrap();
        assert!(e.is_empty());
        assert_eq!(e.find(b"a"), None);
    }

    /// Every way of damaging a tree: the encoded tree refuses what `Tree::decode` refuses (the
    /// message may name another problem of the same bytes: it checks node by node, `Tree::decode`
    /// decodes all nodes first) and keeps what it keeps — every prefix, every single byte
    /// changed, and trees breaking each rule.
    #[test]
    fn accepts_exactly_what_tree_decode_accepts() {
        let good = sample().encode_checked().unwrap();
        let mut cases: Vec<Vec<u8>> = (0..=good.len()).map(|n| good[..n].to_vec()).collect();
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff, good[i].wrapping_add(1)] {
                let mut b = good.clone();
                b[i] = v;
                cases.push(b);
            }
        }
        let mut unsorted = sample();
        unsorted.nodes.swap(0, 1);
        let mut dup = sample();
        dup.nodes[1].name = b"a".to_vec();
        let mut bad_name = sample();
        bad_name.nodes[0].name = b"..".to_vec();
        for t in [unsorted, dup, bad_name] {
            cases.push(t.encode());
        }
        // A count far beyond the bytes: refused, nothing reserved for it.
        cases.push(vec![
            super::super::TREE_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0x0f,
        ]);
        let mut accepted = 0;
        for b in &cases {
            let whole = Tree::decode(b);
            let kept = EncodedTree::decode(&b[..]);
            match (&whole, &kept) {
                (Ok(t), Ok(e)) => {
                    accepted += 1;
                    assert_eq!(&e.to_tree().unwrap(), t);
                }
                (Err(_), Err(_)) => {}
                _ => panic!("differ on {b:?}: {whole:?} vs {:?}", kept.map(|_| ())),
            }
        }
        assert!(accepted > 1, "the good tree and some changed bytes decode");
    }

    /// A tree encoded with an over-long varint (postcard decodes `0x80 0x00` as 0) decodes to
    /// the same nodes, and `same_nodes` calls it different — never the other way round.
    #[test]
    fn a_non_canonical_encoding_is_never_the_same_nodes() {
        let tree = Tree {
            nodes: vec![Node::bare(b"a", NodeKind::File)],
        };
        let good = tree.encode_checked().unwrap();
        // version, count, name length, name, kind, mode, then uid 0 at offset 6.
        assert_eq!(good[..6], [super::super::TREE_VERSION, 1, 1, b'a', 0, 0]);
        assert_eq!(good[6], 0);
        let mut long = good[..6].to_vec();
        long.extend([0x80, 0x00]);
        long.extend(&good[7..]);
        match EncodedTree::decode(&long[..]) {
            Ok(e) => {
                assert_eq!(e.to_tree().unwrap(), tree);
                assert!(!e.same_nodes(&tree.nodes));
            }
            Err(_) => assert!(Tree::decode(&long).is_err()),
        }
        assert!(
            EncodedTree::decode(&good[..])
                .unwrap()
                .same_nodes(&tree.nodes)
        );
    }
}
