//! Listing the contents of a snapshot.

use crate::error::{CoreError, Result};
use crate::repo::blobs::BlobReader;
use tresor_format::BlobId;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind};

/// Split a snapshot-internal path (`b"/usr/share"`, any bytes but `/` in a name) into name
/// components; empty components and `.` are dropped.
pub fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// Normalise a snapshot-internal path: `b"usr/share/"` → `b"/usr/share"`, `b""` → `b"/"`.
/// Names keep their exact bytes.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let comps = components(path);
    if comps.is_empty() {
        return b"/".to_vec();
    }
    comps.iter().flat_map(|c| [&b"/"[..], c].concat()).collect()
}

/// Find the node at `path` below the tree `root`. `Ok(None)` means the root itself.
///
/// # Errors
/// [`CoreError::Invalid`] when the path does not exist in the snapshot (naming it by
/// [`tresor_format::tree::display_bytes`]); damage.
pub fn find_node(reader: &BlobReader<'_>, root: &BlobId, path: &[u8]) -> Result<Option<Node>> {
    let shown = || tresor_format::tree::display_bytes(path);
    let mut tree_id = *root;
    let mut found = None;
    let comps = components(path);
    for (i, c) in comps.iter().enumerate() {
        let tree = reader.load_tree(&tree_id)?;
        let node = tree.find(c).cloned().ok_or_else(|| {
            CoreError::Invalid(format!("{}: no such path in the snapshot", shown()))
        })?;
        if i + 1 < comps.len() {
            tree_id = node
                .subtree
                .filter(|_| node.kind == NodeKind::Dir)
                .ok_or_else(|| {
                    CoreError::Invalid(format!("{}: not a directory in the snapshot", shown()))
                })?;
        }
        found = Some(node);
    }
    Ok(found)
}

/// Visit every node below `tree` depth-first in name order; `f` gets the node's path as the
/// bytes of the names (starting with `prefix`) and the node. Stops at the first error. Walks
/// with an explicit stack, so deep trees need no deep call stack.
///
/// # Errors
/// Damage: a tree that cannot be loaded, or directories nested deeper than [`MAX_TREE_DEPTH`]
/// below `tree` (naming the path).
pub fn walk(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    prefix: &str,
    f: &mut dyn FnMut(&[u8], &Node),
) -> Result<()> {
    walk_pruned(reader, tree, prefix, &mut |p, n| {
        f(p, n);
        true
    })
}

/// `ls`'s selection, restic's rule: with no `dirs`, every node; otherwise every node at or
/// below one of `dirs` (normalized snapshot paths; `/` is everything) — but below it only its
/// direct children unless `recursive` — and the directories on the way to one of them are
/// entered without being listed. `f` gets each selected node's path and the node, in name
/// order.
///
/// # Errors
/// As [`walk`].
pub fn walk_selected(
    reader: &BlobReader<'_>,
    root: &BlobId,
    dirs: &[Vec<u8>],
    recursive: bool,
    f: &mut dyn FnMut(&[u8], &Node),
) -> Result<()> {
    if dirs.is_empty() {
        return walk(reader, root, "/", f);
    }
    let dirs: Vec<Vec<u8>> = dirs.iter().map(|d| normalize(d)).collect();
    walk_pruned(reader, root, "/", &mut |path, n| {
        let within = dirs.iter().any(|d| at_or_below(d, path));
        if within {
            f(path, n);
        }
        (within && recursive) || dirs.iter().any(|d| at_or_below(path, d))
    })
}

/// Whether `path` is `base` or below it (`/` holds everything).
fn at_or_below(base: &[u8], path: &[u8]) -> bool {
    base == b"/" || path == base || (path.starts_with(base) && path.get(base.len()) == Some(&b'/'))
}

/// As [`walk`], entering a directory only when `f` returns true for it.
///
/// # Errors
/// As [`walk`].
pub fn walk_pruned(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    prefix: &str,
    f: &mut dyn FnMut(&[u8], &Node) -> bool,
) -> Result<()> {
    let first = reader.load_tree(tree)?;
    let mut stack = vec![(
        first.nodes.into_iter(),
        prefix.trim_end_matches('/').as_bytes().to_vec(),
    )];
    while let Some((nodes, dir)) = stack.last_mut() {
        let Some(n) = nodes.next() else {
            stack.pop();
            continue;
        };
        let path = [&dir[..], b"/", &n.name].concat();
        let enter = f(&path, &n);
        if let (NodeKind::Dir, Some(sub), true) = (n.kind, n.subtree, enter) {
            if stack.len() > MAX_TREE_DEPTH {
                return Err(CoreError::Damaged(format!(
                    "{}: {}",
                    tresor_format::tree::display_bytes(&path),
                    super::limits::too_deep()
                )));
            }
            let t = reader.load_tree(&sub)?;
            stack.push((t.nodes.into_iter(), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names keep their exact bytes (not UTF-8, a newline, a backslash); only `/` separates.
    #[test]
    fn components_and_normalize_keep_bytes() {
        let p = b"d//\xff/./nl\nname/a\\b/";
        let want: Vec<Vec<u8>> = vec![
            b"d".to_vec(),
            b"\xff".to_vec(),
            b"nl\nname".to_vec(),
            b"a\\b".to_vec(),
        ];
        assert_eq!(components(p), want);
        assert_eq!(normalize(p), b"/d/\xff/nl\nname/a\\b".to_vec());
        assert_eq!(normalize(b""), b"/".to_vec());
        assert_eq!(normalize(b"/./"), b"/".to_vec());
    }

    /// `/` holds everything; a sibling sharing a prefix is not below.
    #[test]
    fn at_or_below_compares_whole_names() {
        assert!(at_or_below(b"/", b"/x"));
        assert!(at_or_below(b"/d/\xff", b"/d/\xff"));
        assert!(at_or_below(b"/d/\xff", b"/d/\xff/f"));
        assert!(!at_or_below(b"/d/\xff", b"/d/\xff\xfe"));
        assert!(!at_or_below(b"/d/\xff/f", b"/d/\xff"));
    }
}
