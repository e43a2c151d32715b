//! Rewriting a snapshot's trees without some of their entries, bottom-up: what `repair
//! snapshots` (entries whose data is damaged) and `rewrite` (entries an exclude pattern matches)
//! share. Only trees that lose an entry (or hold such a tree) are written again; every other
//! subtree keeps its id. The walk uses an explicit stack, so deep trees need no deep call stack;
//! below [`tresor_format::tree::MAX_TREE_DEPTH`] levels a directory counts as unreadable.

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdMap, IdSet, Index};
use crate::repo::packer::Packer;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use tresor_format::blob::BlobType;
use tresor_format::pack;
use tresor_format::tree::{Node, NodeKind, Tree};
use tresor_format::{BlobId, ObjectId};

/// What happened to one tree.
#[derive(Clone)]
pub(crate) enum Fix {
    /// Nothing left out: the tree keeps its id.
    Same,
    /// Written again as this tree; the entries left out, relative to the tree.
    Replaced(BlobId, Vec<String>),
    /// The tree does not load (the reason); only in [`Drop::Damaged`] mode.
    Lost(String),
}

/// Which entries a [`Fixer`] leaves out.
pub(crate) enum Drop<'a> {
    /// Files with a damaged data blob, and directories whose tree does not load (`repair
    /// snapshots`): a blob is damaged when it is not indexed or lies beyond the end of its
    /// (missing or short) pack (`sizes`: the packs' stored sizes), or, with `read_data`, does
    /// not decode.
    Damaged {
        /// Stored size of every pack.
        sizes: IdMap<ObjectId, u64>,
        /// Decode every data blob.
        read_data: bool,
        /// What is wrong with each data blob looked at (`None`: readable).
        data: IdMap<BlobId, Option<String>>,
    },
    /// Entries whose absolute path the function says are excluded (`rewrite`); a tree that
    /// does not load is an error.
    Excluded(&'a dyn Fn(&std::path::Path) -> bool),
}

/// Rewrites trees (see the module documentation); new trees go to `packer`.
pub(crate) struct Fixer<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// Its index.
    pub index: &'a Index,
    /// Signer of the snapshot being rewritten (its copies are preferred after full keys').
    pub signer: Option<[u8; 32]>,
    /// What to leave out.
    pub drop: Drop<'a>,
    /// Memo: a tree id (and, with [`Drop::Excluded`], its path) and what became of it.
    trees: HashMap<(BlobId, Vec<u8>), Fix>,
    /// Where new trees go (`None`: a dry run).
    pub packer: Option<Packer>,
    /// New trees written.
    added: IdSet<BlobId>,
}

/// A tree being rewritten by [`Fixer::fix_tree`]: its path, its nodes still to look at
/// (reversed, the next last), the node whose subtree is being rewritten, and what is kept and
/// left out so far.
struct FixFrame {
    id: BlobId,
    path: Vec<u8>,
    todo: Vec<Node>,
    pending: Option<Node>,
    nodes: Vec<Node>,
    removed: Vec<String>,
    changed: bool,
}

impl FixFrame {
    fn new(id: BlobId, path: Vec<u8>, tree: Tree) -> Self {
        let mut todo = tree.nodes;
        todo.reverse();
        FixFrame {
            id,
            path,
            todo,
            pending: None,
            nodes: Vec::new(),
            removed: Vec::new(),
            changed: false,
        }
    }

    /// The absolute path of entry `name` of this tree.
    fn child(&self, name: &[u8]) -> Vec<u8> {
        let mut p = self.path.clone();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    /// Take the rewrite of the subtree of directory node `n` into this tree.
    fn apply(&mut self, mut n: Node, fix: Fix) {
        let name = n.name_shown();
        match fix {
            Fix::Same => self.nodes.push(n),
            Fix::Replaced(new, r) => {
                n.subtree = Some(new);
                self.removed
                    .extend(r.into_iter().map(|p| format!("{name}/{p}")));
                self.nodes.push(n);
                self.changed = true;
            }
            Fix::Lost(reason) => {
                self.removed
                    .push(format!("{name}/ (directory unreadable: {reason})"));
                self.changed = true;
            }
        }
    }
}

impl<'a> Fixer<'a> {
    /// A fixer writing new trees to `packer` (none: a dry run).
    pub fn new(
        repo: &'a Repository,
        index: &'a Index,
        drop: Drop<'a>,
        packer: Option<Packer>,
    ) -> Self {
        Fixer {
            repo,
            index,
            signer: None,
            drop,
            trees: HashMap::new(),
            packer,
            added: IdSet::default(),
        }
    }

    fn reader(&self) -> BlobReader<'_> {
        BlobReader::for_snapshot(self.repo, self.index, self.signer)
    }

    /// The memo key of tree `id` at `path`.
    fn key(&self, id: BlobId, path: &[u8]) -> (BlobId, Vec<u8>) {
        match self.drop {
            Drop::Damaged { .. } => (id, Vec::new()),
            Drop::Excluded(_) => (id, path.to_vec()),
        }
    }

    /// `None` when the blob is readable, else why not.
    fn blob_problem(&mut self, id: &BlobId) -> Option<String> {
        let reader = BlobReader::for_snapshot(self.repo, self.index, self.signer);
        let index = self.index;
        let Drop::Damaged {
            sizes,
            read_data,
            data,
        } = &mut self.drop
        else {
            return None;
        };
        if let Some(p) = data.get(id) {
            return p.clone();
        }
        let problem = if *read_data {
            reader.load(id, BlobType::Data).err().map(|e| e.to_string())
        } else {
            let fits = |l: &crate::repo::index::BlobLocation| {
                let p = index.pack(l.pack);
                sizes.get(&p.id).is_some_and(|s| {
                    l.offset
                        .saturating_add(u64::from(l.length))
                        .saturating_add(pack::TRAILER_LEN)
                        <= *s
                })
            };
            match index.get(id) {
                None => Some(reader.not_indexed(id)),
                Some(_) if index.locations(id).any(fits) => None,
                Some(first) => Some(format!(
                    "blob {id}: pack {} is missing or truncated",
                    index.pack(first.pack).id
                )),
            }
        };
        data.insert(*id, problem.clone());
        problem
    }

    /// Why node `n` at `path` is left out, as listed (its name and the reason), if it is.
    fn left_out(&mut self, path: &[u8], n: &Node) -> Option<String> {
        match &self.drop {
            Drop::Excluded(excluded) => {
                excluded(std::path::Path::new(std::ffi::OsStr::from_bytes(path))).then(|| {
                    match n.kind {
                        NodeKind::Dir => format!("{}/", n.name_shown()),
                        _ => n.name_shown(),
                    }
                })
            }
            Drop::Damaged { .. } if n.kind == NodeKind::Dir && n.subtree.is_some() => None,
            Drop::Damaged { .. } => n
                .content
                .iter()
                .find_map(|b| self.blob_problem(b))
                .map(|p| format!("{} ({p})", n.name_shown())),
        }
    }

    /// The tree `id` at `path` as it loads now, or what is wrong with it at `depth` below the
    /// root (an error when excluding).
    fn open_tree(
        &mut self,
        id: BlobId,
        path: &[u8],
        depth: usize,
    ) -> Result<std::result::Result<Tree, Fix>> {
        let lost = if depth > tresor_format::tree::MAX_TREE_DEPTH {
            crate::repo::limits::too_deep()
        } else {
            match self.reader().load_tree(&id) {
                Ok(t) => return Ok(Ok(t)),
                Err(e) => e.to_string(),
            }
        };
        if let Drop::Excluded(_) = self.drop {
            let shown = tresor_format::tree::display_bytes(path);
            return Err(CoreError::Damaged(format!("{shown}/: {lost}")));
        }
        let f = Fix::Lost(lost);
        self.trees.insert(self.key(id, path), f.clone());
        Ok(Err(f))
    }

    /// The rewrite of a tree whose nodes are all looked at: a new tree without what was left out.
    fn finish(&mut self, f: FixFrame) -> Result<Fix> {
        let fix = if f.changed {
            let bytes = Tree { nodes: f.nodes }.encode();
            let new = BlobId::of(&self.repo.key().id_key, &bytes);
            if !self.index.contains(&new)
                && self.added.insert(new)
                && let Some(p) = &self.packer
            {
                p.add(BlobType::Tree, new, bytes)?;
            }
            Fix::Replaced(new, f.removed)
        } else {
            Fix::Same
        };
        self.trees.insert(self.key(f.id, &f.path), fix.clone());
        Ok(fix)
    }

    /// Rewrite tree `root` (a snapshot's root tree, path `/`) and everything below it, memoised
    /// per tree (and path when excluding).
    ///
    /// # Errors
    /// Storage errors of writing trees; when excluding, a tree that does not load.
    pub fn fix_tree(&mut self, root: BlobId) -> Result<Fix> {
        if let Some(f) = self.trees.get(&self.key(root, b"")) {
            return Ok(f.clone());
        }
        let mut stack = match self.open_tree(root, b"", 0)? {
            Ok(t) => vec![FixFrame::new(root, Vec::new(), t)],
            Err(f) => return Ok(f),
        };
        loop {
            let depth = stack.len();
            let top = stack.last_mut().expect("the stack ends with its root");
            let Some(n) = top.todo.pop() else {
                let done = stack.pop().expect("the stack ends with its root");
                let fix = self.finish(done)?;
                match stack.last_mut() {
                    Some(parent) => {
                        let n = parent
                            .pending
                            .take()
                            .expect("a subtree was being rewritten");
                        parent.apply(n, fix);
                    }
                    None => return Ok(fix),
                }
                continue;
            };
            let path = top.child(&n.name);
            if let Some(r) = self.left_out(&path, &n) {
                let top = stack.last_mut().expect("the stack ends with its root");
                top.removed.push(r);
                top.changed = true;
                continue;
            }
            let top = stack.last_mut().expect("the stack ends with its root");
            let sub = match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => sub,
                _ => {
                    top.nodes.push(n);
                    continue;
                }
            };
            if let Some(f) = self.trees.get(&self.key(sub, &path)).cloned() {
                let top = stack.last_mut().expect("the stack ends with its root");
                top.apply(n, f);
                continue;
            }
            match self.open_tree(sub, &path, depth)? {
                Ok(t) => {
                    let top = stack.last_mut().expect("the stack ends with its root");
                    top.pending = Some(n);
                    stack.push(FixFrame::new(sub, path, t));
                }
                Err(f) => stack
                    .last_mut()
                    .expect("the stack ends with its root")
                    .apply(n, f),
            }
        }
    }
}

/// The packer new trees go to, with `workers` workers (at least one).
pub(crate) fn new_packer(repo: &Repository, workers: usize) -> Packer {
    let cfg = repo.config();
    Packer::with_version(
        repo.storage().clone(),
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        cfg.version,
        workers.max(1),
        false,
    )
}
