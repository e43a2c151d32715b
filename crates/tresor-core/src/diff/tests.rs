//! Diffs of crafted trees held in memory, counting the tree loads.

use super::*;
use std::collections::HashMap;

fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        mode: 0o644,
        mtime: Timestamp { secs: 1, nanos: 0 },
        links: 1,
        ..Node::bare(name.as_bytes(), kind)
    }
}

fn file(name: &str, blob: u8) -> Node {
    Node {
        content: vec![BlobId([blob; 32])],
        size: 10,
        ..node(name, NodeKind::File)
    }
}

/// Trees by id, and which were loaded.
#[derive(Default)]
struct Store {
    trees: HashMap<BlobId, Tree>,
    loads: Vec<(Side, BlobId)>,
}

impl Store {
    /// Store a tree under id `[n; 32]`; returns a directory node `name` listing it.
    fn dir(&mut self, name: &str, n: u8, nodes: Vec<Node>) -> Node {
        let id = BlobId([n; 32]);
        self.trees.insert(id, Tree { nodes });
        Node {
            subtree: Some(id),
            ..node(name, NodeKind::Dir)
        }
    }

    fn run(&mut self, a: &Node, b: &Node, metadata: bool) -> (Vec<String>, Stats) {
        let trees = self.trees.clone();
        let loads = &mut self.loads;
        let mut load = |s: Side, id: &BlobId| {
            loads.push((s, *id));
            Ok(trees[id].clone())
        };
        // Blob sizes: the id's first byte.
        let size = |id: &BlobId| Some(u64::from(id.0[0]));
        let mut src = Source {
            load: &mut load,
            size: &size,
        };
        let mut out = Vec::new();
        let stats = diff(
            &mut src,
            &a.subtree.unwrap(),
            &b.subtree.unwrap(),
            Options { metadata },
            &mut |c| {
                out.push(format!(
                    "{} {}",
                    c.modifier.marker(),
                    String::from_utf8(c.path).unwrap()
                ))
            },
        )
        .unwrap();
        (out, stats)
    }
}

/// Two trees with every kind of change; `same` is identical on both sides (its id 50).
fn two_trees(s: &mut Store) -> (Node, Node) {
    let same = s.dir("same", 50, vec![file("s", 9)]);
    let gone = s.dir("gone", 60, vec![file("g1", 61), node("g2", NodeKind::Fifo)]);
    let new = s.dir("new", 70, vec![file("n1", 71)]);
    let mut chmod = file("chmod", 3);
    let mut link = node("link", NodeKind::Symlink);
    link.target = b"x".to_vec();
    let before = vec![
        chmod.clone(),
        file("edit", 4),
        gone,
        file("old", 5),
        same.clone(),
        file("turn", 6),
    ];
    let a = s.dir("", 1, before);
    chmod.mode = 0o600;
    let mut turn = node("turn", NodeKind::Symlink);
    turn.target = b"edit".to_vec();
    let after = vec![chmod, file("edit", 8), link, new, same, turn];
    let b = s.dir("", 2, after);
    (a, b)
}

#[test]
fn every_kind_of_change() {
    let mut s = Store::default();
    let (a, b) = two_trees(&mut s);
    let (lines, stats) = s.run(&a, &b, true);
    assert_eq!(
        lines,
        [
            "U /chmod",
            "M /edit",
            "- /gone/",
            "- /gone/g1",
            "- /gone/g2",
            "+ /link",
            "+ /new/",
            "+ /new/n1",
            "- /old",
            "T /turn",
        ]
    );
    // The identical subtree `same` (id 50) was never loaded.
    let mut loaded: Vec<u8> = s.loads.iter().map(|(_, id)| id.0[0]).collect();
    loaded.sort();
    assert_eq!(loaded, [1, 2, 60, 70]);
    assert!(s.loads.contains(&(Side::Before, BlobId([60; 32]))));
    assert!(s.loads.contains(&(Side::After, BlobId([70; 32]))));
    assert_eq!(stats.changed_files, 1);
    let added = Counts {
        files: 1,
        dirs: 1,
        others: 1,
        data_blobs: 2,
        tree_blobs: 2,
        bytes: 8 + 71 + 2 + 70,
    };
    assert_eq!(stats.added, added);
    let removed = Counts {
        files: 2,
        dirs: 1,
        others: 1,
        data_blobs: 4,
        tree_blobs: 2,
        bytes: 4 + 61 + 5 + 6 + 1 + 60,
    };
    assert_eq!(stats.removed, removed);
}

#[test]
fn metadata_changes_only_with_the_option() {
    let mut s = Store::default();
    let (a, b) = two_trees(&mut s);
    let (lines, _) = s.run(&a, &b, false);
    assert!(!lines.iter().any(|l| l.starts_with('U')), "{lines:?}");
    assert_eq!(lines.len(), 9);
    // Access time alone is no change, not even with --metadata.
    let mut s = Store::default();
    let mut touched = file("f", 3);
    touched.atime = Timestamp { secs: 9, nanos: 0 };
    let a = s.dir("", 1, vec![file("f", 3)]);
    let b = s.dir("", 2, vec![touched]);
    assert_eq!(s.run(&a, &b, true).0, Vec::<String>::new());
}

#[test]
fn equal_roots_load_nothing_and_nested_changes_descend() {
    let mut s = Store::default();
    let a = s.dir("", 1, vec![]);
    let (lines, stats) = s.run(&a, &a, true);
    assert!(lines.is_empty() && s.loads.is_empty());
    assert_eq!(stats, Stats::default());
    // A change deep down: the directories on the way are only `U` with --metadata when their
    // own metadata differs (here it does not), never `M`.
    let mut s = Store::default();
    let d1 = s.dir("d", 10, vec![file("f", 3)]);
    let d2 = s.dir("d", 20, vec![file("f", 4)]);
    let a = s.dir("", 1, vec![d1]);
    let b = s.dir("", 2, vec![d2]);
    let (lines, stats) = s.run(&a, &b, true);
    assert_eq!(lines, ["M /d/f"]);
    assert_eq!(stats.changed_files, 1);
    assert_eq!((stats.added.tree_blobs, stats.removed.tree_blobs), (2, 2));
}

#[test]
fn a_directory_turned_file_lists_its_contents_as_removed() {
    let mut s = Store::default();
    let d = s.dir("x", 10, vec![file("in", 3)]);
    let a = s.dir("", 1, vec![d]);
    let b = s.dir("", 2, vec![file("x", 4)]);
    let (lines, stats) = s.run(&a, &b, false);
    assert_eq!(lines, ["T /x", "- /x/in"]);
    assert_eq!(stats.removed.files, 1);
    assert_eq!(stats.removed.dirs, 0);
}
