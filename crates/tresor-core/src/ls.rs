//! Listing the contents of a snapshot.

use crate::blobs::BlobReader;
use crate::error::{CoreError, Result};
use tresor_format::BlobId;
use tresor_format::tree::{Node, NodeKind};

/// Split a snapshot-internal path ("/usr/share") into name components.
pub fn components(path: &str) -> Vec<Vec<u8>> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

/// Normalise a snapshot-internal path: `"usr/share/"` → `"/usr/share"`, `""` → `"/"`.
pub fn normalize(path: &str) -> String {
    let comps = components(path);
    if comps.is_empty() {
        return "/".into();
    }
    comps
        .iter()
        .map(|c| format!("/{}", String::from_utf8_lossy(c)))
        .collect()
}

/// Find the node at `path` below the tree `root`. `Ok(None)` means the root itself.
///
/// # Errors
/// [`CoreError::Invalid`] when the path does not exist in the snapshot; damage.
pub fn find_node(reader: &BlobReader<'_>, root: &BlobId, path: &str) -> Result<Option<Node>> {
    let mut tree_id = *root;
    let mut found = None;
    let comps = components(path);
    for (i, c) in comps.iter().enumerate() {
        let tree = reader.load_tree(&tree_id)?;
        let node = tree
            .find(c)
            .cloned()
            .ok_or_else(|| CoreError::Invalid(format!("{path}: no such path in the snapshot")))?;
        if i + 1 < comps.len() {
            tree_id = node
                .subtree
                .filter(|_| node.kind == NodeKind::Dir)
                .ok_or_else(|| {
                    CoreError::Invalid(format!("{path}: not a directory in the snapshot"))
                })?;
        }
        found = Some(node);
    }
    Ok(found)
}

/// Visit every node below `tree` depth-first in name order; `f` gets the node's path (starting
/// with `prefix`) and the node. Stops at the first error.
///
/// # Errors
/// Damage (a tree that cannot be loaded).
pub fn walk(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node),
) -> Result<()> {
    let t = reader.load_tree(tree)?;
    for n in &t.nodes {
        let path = format!("{}/{}", prefix.trim_end_matches('/'), n.name_lossy());
        f(&path, n);
        if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
            walk(reader, &sub, &path, f)?;
        }
    }
    Ok(())
}
