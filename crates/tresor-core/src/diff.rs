//! `diff`: what changed from one tree to another (restic's `diff`).
//!
//! Both trees are walked side by side, names merged in order; a directory whose subtree id is
//! the same on both sides is skipped without loading it (identical trees have identical ids,
//! format §10). The walk is iterative and bounded by [`MAX_TREE_DEPTH`] like
//! [`crate::repo::tree::walk`]. Changes are reported depth-first in name order, a directory's
//! own change before its contents; the contents of an added or removed directory are reported
//! one by one as added or removed, as restic does.

use crate::error::{CoreError, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use tresor_format::BlobId;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Timestamp, Tree};

/// What happened to a path; restic's markers ([`Modifier::marker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `+`: only in the second tree.
    Added,
    /// `-`: only in the first tree.
    Removed,
    /// `M`: a file in both whose content (its blob list) differs.
    Modified,
    /// `T`: in both, of different types (e.g. a file became a symlink).
    TypeChanged,
    /// `U`: in both, same type and content, other metadata differs (only with
    /// [`Options::metadata`]).
    Metadata,
}

impl Modifier {
    /// restic's one-character marker: `+`, `-`, `M`, `T` or `U`.
    pub fn marker(self) -> &'static str {
        match self {
            Modifier::Added => "+",
            Modifier::Removed => "-",
            Modifier::Modified => "M",
            Modifier::TypeChanged => "T",
            Modifier::Metadata => "U",
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path's bytes below the compared roots, starting with `/`; a directory (in the second
    /// tree, or in the first when removed) ends with `/`, as restic prints it.
    pub path: Vec<u8>,
    /// What happened.
    pub modifier: Modifier,
}

/// Counts of one direction of a diff (restic's `added` / `removed` objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Regular files added (removed), each path of an added (removed) directory counted.
    pub files: u64,
    /// Directories added (removed).
    pub dirs: u64,
    /// Other entries (symlinks, devices, fifos, sockets) added (removed).
    pub others: u64,
    /// Data blobs referenced only by the second (first) tree's changed parts.
    pub data_blobs: u64,
    /// Tree blobs referenced only by the second (first) tree's changed parts.
    pub tree_blobs: u64,
    /// Plaintext bytes of those blobs (data and tree) as the index records them.
    pub bytes: u64,
}

/// The summary of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files in both trees whose content differs (`M`).
    pub changed_files: u64,
    /// What the second tree has that the first has not.
    pub added: Counts,
    /// What the first tree has that the second has not.
    pub removed: Counts,
}

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Report metadata-only changes (`U`): everything a node records but its name, content,
    /// subtree and access time (reading a file for a backup may change its access time).
    pub metadata: bool,
}

/// Which of the two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first tree (before).
    Before,
    /// The second tree (after).
    After,
}

/// Where the trees come from: `load` reads a tree blob of a side (the repository's tree
/// loader), `size` gives a blob's plaintext length from the index (`None`: not indexed, counted
/// as 0 bytes).
pub struct Source<'a> {
    /// Load the tree `id` of a side.
    pub load: &'a mut dyn FnMut(Side, &BlobId) -> Result<Tree>,
    /// A blob's plaintext length, bytes.
    pub size: &'a dyn Fn(&BlobId) -> Option<u64>,
}

/// The nodes of one directory present on either side, by name.
type Pair = (Option<Node>, Option<Node>);

struct Frame {
    pairs: std::vec::IntoIter<Pair>,
    dir: Vec<u8>,
}

/// The blobs seen on one side, in the parts that differ.
#[derive(Default)]
struct Seen {
    data: HashSet<BlobId>,
    trees: HashSet<BlobId>,
}

struct Walk<'s, 'a> {
    src: &'s mut Source<'a>,
    opts: Options,
    stats: Stats,
    before: Seen,
    after: Seen,
    stack: Vec<Frame>,
}

/// Compare the tree `before` with the tree `after`; `f` gets every change in order; returns
/// the summary. Equal roots load nothing.
///
/// # Errors
/// A tree that cannot be loaded (damage, storage), or directories nested deeper than
/// [`MAX_TREE_DEPTH`] (naming the path).
pub fn diff(
    src: &mut Source<'_>,
    before: &BlobId,
    after: &BlobId,
    opts: Options,
    f: &mut dyn FnMut(Change),
) -> Result<Stats> {
    if before == after {
        return Ok(Stats::default());
    }
    let mut w = Walk {
        src,
        opts,
        stats: Stats::default(),
        before: Seen::default(),
        after: Seen::default(),
        stack: Vec::new(),
    };
    w.descend(Some(before), Some(after), Vec::new())?;
    while let Some(top) = w.stack.last_mut() {
        let Some(pair) = top.pairs.next() else {
            w.stack.pop();
            continue;
        };
        let dir = top.dir.clone();
        w.pair(&dir, pair, f)?;
    }
    let (src, mut stats) = (w.src, w.stats);
    blob_counts(&w.after, &w.before, src.size, &mut stats.added);
    blob_counts(&w.before, &w.after, src.size, &mut stats.removed);
    Ok(stats)
}

impl Walk<'_, '_> {
    /// Load the trees of a directory on the sides it has and push its merged entries.
    fn descend(&mut self, a: Option<&BlobId>, b: Option<&BlobId>, dir: Vec<u8>) -> Result<()> {
        if self.stack.len() > MAX_TREE_DEPTH {
            return Err(CoreError::Damaged(format!(
                "{}: {}",
                tresor_format::tree::display_bytes(&dir),
                crate::repo::limits::too_deep()
            )));
        }
        let mut merged: BTreeMap<Vec<u8>, Pair> = BTreeMap::new();
        if let Some(id) = a {
            self.before.trees.insert(*id);
            for n in (self.src.load)(Side::Before, id)?.nodes {
                let slot = merged.entry(n.name.clone()).or_default();
                slot.0 = Some(n);
            }
        }
        if let Some(id) = b {
            self.after.trees.insert(*id);
            for n in (self.src.load)(Side::After, id)?.nodes {
                let slot = merged.entry(n.name.clone()).or_default();
                slot.1 = Some(n);
            }
        }
        let pairs: Vec<Pair> = merged.into_values().collect();
        self.stack.push(Frame {
            pairs: pairs.into_iter(),
            dir,
        });
        Ok(())
    }

    /// One name of a directory: report its change and descend where the trees differ.
    fn pair(&mut self, dir: &[u8], pair: Pair, f: &mut dyn FnMut(Change)) -> Result<()> {
        if pair.0 == pair.1 {
            return Ok(());
        }
        let (a, b) = pair;
        let name = &a.as_ref().or(b.as_ref()).expect("one side").name;
        let path = [dir, b"/", name].concat();
        if let Some(n) = &a {
            self.before.data.extend(n.content.iter().copied());
        }
        if let Some(n) = &b {
            self.after.data.extend(n.content.iter().copied());
        }
        let modifier = match (&a, &b) {
            (None, Some(n)) => {
                count(&mut self.stats.added, n);
                Some(Modifier::Added)
            }
            (Some(n), None) => {
                count(&mut self.stats.removed, n);
                Some(Modifier::Removed)
            }
            (Some(x), Some(y)) => self.modifier(x, y),
            (None, None) => None,
        };
        if let Some(modifier) = modifier {
            let shown = b.as_ref().or(a.as_ref()).expect("one side");
            let mut p = path.clone();
            if shown.kind == NodeKind::Dir {
                p.push(b'/');
            }
            f(Change { path: p, modifier });
        }
        let sub = |n: &Option<Node>| n.as_ref().and_then(|n| n.subtree);
        let (sa, sb) = (sub(&a), sub(&b));
        if sa != sb {
            self.descend(sa.as_ref(), sb.as_ref(), path)?;
        }
        Ok(())
    }

    /// The change between two nodes of one name, if it is to be reported.
    fn modifier(&mut self, a: &Node, b: &Node) -> Option<Modifier> {
        if a.kind != b.kind {
            Some(Modifier::TypeChanged)
        } else if a.kind == NodeKind::File && a.content != b.content {
            self.stats.changed_files += 1;
            Some(Modifier::Modified)
        } else if self.opts.metadata && !same_metadata(a, b) {
            Some(Modifier::Metadata)
        } else {
            None
        }
    }
}

/// Whether two nodes agree in everything but content, subtree and access time.
fn same_metadata(a: &Node, b: &Node) -> bool {
    let strip = |n: &Node| Node {
        content: Vec::new(),
        subtree: None,
        atime: Timestamp::default(),
        ..n.clone()
    };
    strip(a) == strip(b)
}

/// Count one added (removed) node by its kind.
fn count(c: &mut Counts, n: &Node) {
    match n.kind {
        NodeKind::File => c.files += 1,
        NodeKind::Dir => c.dirs += 1,
        _ => c.others += 1,
    }
}

/// The blobs `this` side saw that `other` did not: their number and plaintext bytes.
fn blob_counts(this: &Seen, other: &Seen, size: &dyn Fn(&BlobId) -> Option<u64>, c: &mut Counts) {
    for id in this.data.difference(&other.data) {
        c.data_blobs += 1;
        c.bytes += size(id).unwrap_or(0);
    }
    for id in this.trees.difference(&other.trees) {
        c.tree_blobs += 1;
        c.bytes += size(id).unwrap_or(0);
    }
}

#[cfg(test)]
mod tests;
