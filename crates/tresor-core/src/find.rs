//! `find`: the entries of a snapshot that match a query (restic's `find`).
//!
//! A query holds glob patterns (restic's exclude syntax, [`crate::exclude`]: a pattern without
//! `/` matches a name anywhere in the path, one with `/` a run of components, one starting with
//! `/` from the root; a pattern that matches a directory also matches everything below it, as in
//! restic), blob ids (files whose content uses one) and tree ids (directories with that tree).
//! An entry matches when it matches any pattern or id, and its modification time lies within
//! the optional bounds. The walk is [`crate::repo::tree::walk`]: iterative, bounded by
//! `MAX_TREE_DEPTH`.

use crate::error::{CoreError, Result};
use crate::exclude::PatternSet;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tresor_format::BlobId;
use tresor_format::blob::BlobType;
use tresor_format::tree::{Node, NodeKind, Timestamp};

/// What `find` looks for.
#[derive(Debug, Clone)]
pub struct Query {
    patterns: Option<PatternSet>,
    ignore_case: bool,
    /// Files whose content holds one of these data blobs match.
    pub blobs: HashSet<BlobId>,
    /// Directories whose tree is one of these match.
    pub trees: HashSet<BlobId>,
    /// Only entries modified at or after this time.
    pub oldest: Option<Timestamp>,
    /// Only entries modified at or before this time.
    pub newest: Option<Timestamp>,
}

impl Query {
    /// A query for `patterns` (restic's syntax; with `ignore_case` the patterns and paths are
    /// compared in lower case), no ids and no time bounds.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] naming a malformed pattern, or a pattern starting with `!`
    /// (negations mean nothing to `find`).
    pub fn new(patterns: &[String], ignore_case: bool) -> Result<Query> {
        if let Some(p) = patterns.iter().find(|p| p.starts_with('!')) {
            return Err(CoreError::Invalid(format!(
                "pattern {p:?}: find has no negated patterns"
            )));
        }
        let lowered: Vec<String> = patterns
            .iter()
            .map(|p| {
                if ignore_case {
                    p.to_lowercase()
                } else {
                    p.clone()
                }
            })
            .collect();
        let set = PatternSet::new(&lowered)?;
        Ok(Query {
            patterns: (!set.is_empty()).then_some(set),
            ignore_case,
            blobs: HashSet::new(),
            trees: HashSet::new(),
            oldest: None,
            newest: None,
        })
    }

    /// Whether the entry `n` at `path` (absolute in the snapshot) matches.
    pub fn matches(&self, path: &[u8], n: &Node) -> bool {
        let hit = self.pattern_hit(path)
            || (n.kind == NodeKind::File && n.content.iter().any(|b| self.blobs.contains(b)))
            || (n.kind == NodeKind::Dir && n.subtree.is_some_and(|t| self.trees.contains(&t)));
        hit && self.oldest.is_none_or(|t| n.mtime >= t) && self.newest.is_none_or(|t| n.mtime <= t)
    }

    fn pattern_hit(&self, path: &[u8]) -> bool {
        let Some(set) = &self.patterns else {
            return false;
        };
        if !self.ignore_case {
            return set.matches(Path::new(OsStr::from_bytes(path)));
        }
        let lower = match std::str::from_utf8(path) {
            Ok(s) => s.to_lowercase().into_bytes(),
            Err(_) => path.to_ascii_lowercase(),
        };
        set.matches(Path::new(OsStr::from_bytes(&lower)))
    }
}

/// Visit the entries below the tree `root` that match `q`, depth-first in name order; `f` gets
/// each one's path (bytes, starting with `/`) and node. Returns the number of matches.
///
/// # Errors
/// Damage: a tree that cannot be loaded, or trees nested too deep.
pub fn find_in_tree(
    reader: &BlobReader<'_>,
    root: &BlobId,
    q: &Query,
    f: &mut dyn FnMut(&[u8], &Node),
) -> Result<u64> {
    let mut hits = 0;
    crate::repo::tree::walk(reader, root, "/", &mut |path, n| {
        if q.matches(path, n) {
            hits += 1;
            f(path, n);
        }
    })?;
    Ok(hits)
}

/// The blob of `blob_type` the index knows whose id is `spec` or starts with it (hex, any case).
///
/// # Errors
/// [`CoreError::Invalid`] when `spec` is not hex, no such blob is indexed, or the prefix names
/// more than one.
pub fn resolve_blob(index: &Index, spec: &str, blob_type: BlobType) -> Result<BlobId> {
    let what = match blob_type {
        BlobType::Data => "blob",
        BlobType::Tree => "tree",
    };
    let spec_l = spec.to_ascii_lowercase();
    if spec_l.is_empty() || spec_l.len() > 64 || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CoreError::Invalid(format!(
            "{what} id {spec:?}: not a hex id or prefix"
        )));
    }
    let mut found = index
        .blobs()
        .filter(|(id, loc)| loc.blob_type == blob_type && id.to_hex().starts_with(&spec_l))
        .map(|(id, _)| *id);
    match (found.next(), found.next()) {
        (Some(id), None) => Ok(id),
        (Some(_), Some(_)) => Err(CoreError::Invalid(format!(
            "{what} id {spec:?}: the prefix names more than one {what}"
        ))),
        _ => Err(CoreError::Invalid(format!(
            "{what} id {spec:?}: no such {what} in the index"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8], kind: NodeKind, secs: i64) -> Node {
        let t = Timestamp { secs, nanos: 0 };
        Node {
            mode: 0o644,
            mtime: t,
            atime: t,
            ctime: t,
            links: 1,
            ..Node::bare(name, kind)
        }
    }

    #[test]
    fn patterns_case_and_times() {
        let f = node(b"Read.ME", NodeKind::File, 100);
        let q = Query::new(&["*.me".into()], false).unwrap();
        assert!(!q.matches(b"/a/Read.ME", &f));
        let mut q = Query::new(&["*.me".into()], true).unwrap();
        assert!(q.matches(b"/a/Read.ME", &f));
        assert!(q.matches(b"/a/read.me/inner", &f), "below a match");
        q.oldest = Some(Timestamp {
            secs: 101,
            nanos: 0,
        });
        assert!(!q.matches(b"/a/Read.ME", &f));
        q.oldest = Some(Timestamp {
            secs: 100,
            nanos: 0,
        });
        q.newest = Some(Timestamp { secs: 99, nanos: 0 });
        assert!(!q.matches(b"/a/Read.ME", &f));
        let q = Query::new(&["a/*.ME".into()], false).unwrap();
        assert!(q.matches(b"/x/a/Read.ME", &f));
        assert!(!q.matches(b"/x/b/Read.ME", &f));
        let bad = Query::new(&["ä*".into()], true).unwrap();
        assert!(bad.matches(b"/\xc3\x84b", &f), "Ä lowered to ä");
        assert!(!bad.matches(b"/\xff", &f));
        assert!(Query::new(&["!x".into()], false).is_err());
        assert!(Query::new(&["[".into()], false).is_err());
    }

    #[test]
    fn blobs_and_trees() {
        let mut f = node(b"f", NodeKind::File, 0);
        f.content = vec![BlobId([1; 32]), BlobId([2; 32])];
        let mut d = node(b"d", NodeKind::Dir, 0);
        d.subtree = Some(BlobId([2; 32]));
        let mut q = Query::new(&[], false).unwrap();
        assert!(!q.matches(b"/f", &f) && !q.matches(b"/d", &d));
        q.blobs.insert(BlobId([2; 32]));
        assert!(q.matches(b"/f", &f) && !q.matches(b"/d", &d));
        q.blobs.clear();
        q.trees.insert(BlobId([2; 32]));
        assert!(!q.matches(b"/f", &f) && q.matches(b"/d", &d));
    }
}
