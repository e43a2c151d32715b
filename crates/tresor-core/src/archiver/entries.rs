//! A directory's entries against its parent tree: the nodes as the walk makes them, kept as a
//! count while they equal the parent's ([`Entries`]), and the parent's nodes looked up by name
//! in the tree kept encoded ([`ParentTree`]), each decoded when its entry is looked at.

use super::prefetch::ParentTree;
use crate::error::{CoreError, Result};
use tresor_format::FormatError;
use tresor_format::tree::{Node, Tree};

/// What the listing of a directory gave.
pub(super) enum Listing {
    /// Exactly the parent tree's nodes, field by field (not copied).
    Parent,
    /// These entries.
    Tree(Tree),
}

/// The nodes of a directory's entries as the walk makes them: while they equal the parent
/// tree's nodes one by one, only their count is kept (the parent tree holds them, encoded), so
/// an unchanged directory costs no copy of its nodes.
pub(super) struct Entries<'p> {
    parent: Option<&'p ParentTree>,
    /// The first `same` nodes equal the parent's.
    same: usize,
    /// All nodes, once one differed from the parent's.
    nodes: Option<Vec<Node>>,
}

impl<'p> Entries<'p> {
    pub(super) fn new(parent: Option<&'p ParentTree>) -> Self {
        Entries {
            parent,
            same: 0,
            nodes: None,
        }
    }

    /// Add the next entry's node; `pnode` is the parent's node of that name and its index in
    /// the parent tree, when it has one.
    pub(super) fn push(&mut self, node: Node, pnode: Option<(usize, &Node)>) -> Result<()> {
        match &mut self.nodes {
            Some(nodes) => nodes.push(node),
            None if pnode.is_some_and(|(i, p)| i == self.same && *p == node) => self.same += 1,
            None => {
                let mut nodes = self.prefix()?;
                nodes.push(node);
                self.nodes = Some(nodes);
            }
        }
        Ok(())
    }

    /// The parent's first `same` nodes, decoded.
    fn prefix(&self) -> Result<Vec<Node>> {
        match self.parent {
            Some(p) => p.nodes(0..self.same).map_err(damaged_parent),
            None => Ok(Vec::new()),
        }
    }

    /// The indices of the parent's nodes whose names are not among the entries.
    pub(super) fn gone(&self) -> Vec<usize> {
        match (self.parent, &self.nodes) {
            (None, _) => Vec::new(),
            (Some(p), None) => (self.same..p.len()).collect(),
            (Some(p), Some(nodes)) => gone_from(p, nodes),
        }
    }

    /// The listing: the parent's nodes when every entry was the parent's node at its place
    /// and none is missing, else the entries' nodes.
    pub(super) fn finish(mut self) -> Result<Listing> {
        if let Some(nodes) = self.nodes.take() {
            return Ok(Listing::Tree(Tree { nodes }));
        }
        if self.parent.is_some_and(|p| self.same == p.len()) {
            return Ok(Listing::Parent);
        }
        Ok(Listing::Tree(Tree {
            nodes: self.prefix()?,
        }))
    }
}

/// The indices of `parent`'s nodes whose names are not those of `now` (both sorted by name
/// bytes: one pass).
pub(super) fn gone_from(parent: &ParentTree, now: &[Node]) -> Vec<usize> {
    let mut names = now.iter().map(|n| n.name.as_slice()).peekable();
    (0..parent.len())
        .filter(|&i| {
            let name = parent.name(i);
            while names.next_if(|n| *n < name).is_some() {}
            names.peek() != Some(&name)
        })
        .collect()
}

/// The parent's node called `name`, decoded.
pub(super) fn find_node(parent: Option<&ParentTree>, name: &[u8]) -> Option<Node> {
    let p = parent?;
    p.node(p.find(name)?).ok()
}

/// The node called `name` at or after index `*next` of `parent` (entries are looked at in
/// name order), decoded, with its index; `*next` moves past the names before it.
pub(super) fn next_node(
    parent: &ParentTree,
    next: &mut usize,
    name: &[u8],
) -> Option<(usize, Node)> {
    while *next < parent.len() && parent.name(*next) < name {
        *next += 1;
    }
    if *next < parent.len() && parent.name(*next) == name {
        return parent.node(*next).ok().map(|n| (*next, n));
    }
    None
}

/// The parent tree's nodes, decoded, for storing them again (a tree validated when it was read:
/// an error here is a bug or memory damage, an error of the backup rather than an empty tree;
/// the lookups above take a node that does not decode as no parent node, whose entry is then
/// read again).
pub(super) fn decoded(p: &ParentTree) -> Result<Tree> {
    p.to_tree().map_err(damaged_parent)
}

fn damaged_parent(e: FormatError) -> CoreError {
    CoreError::Damaged(format!("parent tree: {e}"))
}

#[cfg(test)]
mod tests {
    /// `Entries` keeps no copy while the nodes equal the parent's, and gives exactly the nodes
    /// pushed otherwise: one differing in the middle, one missing in the middle or at the end,
    /// one more at the end, no parent; and the parent's nodes gone.
    #[test]
    fn entries_copy_the_parents_nodes_only_when_one_differs() {
        use super::{Entries, Listing, ParentTree, next_node};
        use tresor_format::tree::{Node, NodeKind, Tree};
        let node = |n: &str| Node::bare(n.as_bytes(), NodeKind::File);
        let parent: Vec<Node> = ["a", "b", "c"].iter().map(|n| node(n)).collect();
        let encoded = |nodes: &[Node]| {
            let t = Tree {
                nodes: nodes.to_vec(),
            };
            ParentTree::decode(t.encode().into()).unwrap()
        };
        let nodes = |pushed: &[Node], p: Option<&ParentTree>, gone: &[usize]| {
            let mut e = Entries::new(p);
            let mut next = 0;
            for n in pushed {
                let pnode = p.and_then(|p| next_node(p, &mut next, &n.name));
                e.push(n.clone(), pnode.as_ref().map(|(i, n)| (*i, n)))
                    .unwrap();
            }
            assert_eq!(e.gone(), gone);
            match e.finish().unwrap() {
                Listing::Parent => None,
                Listing::Tree(t) => Some(t.nodes),
            }
        };
        let p = encoded(&parent);
        assert_eq!(nodes(&parent, Some(&p), &[]), None);
        let mut other = parent.clone();
        other[1].size = 7;
        assert_eq!(nodes(&other, Some(&p), &[]), Some(other.clone()));
        assert_eq!(
            nodes(&parent[..2], Some(&p), &[2]),
            Some(parent[..2].to_vec())
        );
        let without_b = [parent[0].clone(), parent[2].clone()];
        assert_eq!(nodes(&without_b, Some(&p), &[1]), Some(without_b.to_vec()));
        let more = [parent.clone(), vec![node("d")]].concat();
        assert_eq!(nodes(&more, Some(&p), &[]), Some(more.clone()));
        assert_eq!(nodes(&parent, None, &[]), Some(parent.clone()));
        assert_eq!(nodes(&[], Some(&encoded(&[])), &[]), None);
        assert_eq!(nodes(&[], Some(&p), &[0, 1, 2]), Some(Vec::new()));
    }
}
