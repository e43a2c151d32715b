//! Parent trees read ahead on a thread of their own: while the walker looks at a directory's
//! entries, the parent trees it compares the next directories with are read, decrypted and
//! decoded on the other core — from the repository, or taken from the local tree cache and
//! decoded (in an unchanged run, decoding the cached trees was a quarter of the walker's time).
//!
//! The walker asks for parent trees in depth-first pre-order of the parent snapshot, entries by
//! name bytes: it walks the source in that order and asks for a directory's parent tree only when
//! the parent tree has a directory of that name. So what it asks for is a subsequence of the
//! order in which [`Ahead`] reads the trees; trees it does not ask for (directories excluded,
//! gone, or no longer directories) are passed over. A tree that is not ahead — one the thread
//! could not read — the walker reads itself.

use crate::repo::blobs::BlobReader;
use crate::repo::cache::{TreeBytes, cached_tree};
use crate::repo::index::IdMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;
use tresor_format::BlobId;
use tresor_format::tree::EncodedTree;

/// A parent tree as the walker compares a directory with it: validated, kept encoded.
pub(super) type ParentTree = EncodedTree<bytes::Bytes>;

/// Trees read ahead of the walker, at most (besides the one being sent).
pub(super) const AHEAD: usize = 16;

/// Trees the walker passes over for one it asks for, at most, before it stops the read-ahead
/// and reads the rest itself. The read-ahead follows the parent snapshot path by path, so a
/// parent whose trees repeat (a lattice, each level listing the next twice: 2^depth paths over
/// depth + 1 trees) would otherwise keep the walker waiting forever; an honest parent passes
/// over this many only below directories gone or excluded from the source.
pub(super) const MAX_PASSED_OVER: usize = 100_000;

/// A tree id and the tree, `None` when it could not be read (its subtrees are then not read).
type Item = (BlobId, Option<ParentTree>);

/// Where the parent trees come from.
pub(super) enum Source<'env> {
    /// Read from the repository (decrypted, verified, decoded).
    Repository(BlobReader<'env>),
    /// The local tree cache's encoded trees (each checked against its id when read).
    Cached(Arc<IdMap<BlobId, TreeBytes>>),
}

impl Source<'_> {
    /// Tree `id`, `None` when it cannot be read or decoded.
    fn load(&self, id: &BlobId) -> Option<ParentTree> {
        match self {
            Source::Repository(reader) => reader.load_encoded_tree(id).ok(),
            Source::Cached(trees) => cached_tree(trees, id),
        }
    }
}

/// The trees of one parent snapshot, read ahead in depth-first pre-order.
pub(super) struct Ahead {
    /// `None` once nothing more is ahead (the thread ended, or was given up).
    rx: Option<Receiver<Item>>,
}

impl Ahead {
    /// Start reading the tree `root` and every tree below it on a thread of `scope`. The thread
    /// ends when all are read or when this is dropped.
    pub(super) fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        source: Source<'env>,
        root: BlobId,
    ) -> Ahead {
        let (tx, rx) = sync_channel(AHEAD);
        scope.spawn(move || read_ahead(&source, root, &tx));
        Ahead { rx: Some(rx) }
    }

    /// The tree `id`, dropping the trees read before it. `None` when the thread could not read
    /// it, or when it is not ahead or more than [`MAX_PASSED_OVER`] trees before it (then
    /// nothing is ahead any more: the thread ends at its next send).
    pub(super) fn take(&mut self, id: &BlobId) -> Option<ParentTree> {
        let rx = self.rx.as_ref()?;
        for _ in 0..=MAX_PASSED_OVER {
            match rx.recv() {
                Ok((got, tree)) if got == *id => return tree,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.rx = None;
        None
    }
}

/// Send `root` and the trees below it in depth-first pre-order (subtrees in node order) until
/// all are sent or the receiver is gone.
fn read_ahead(source: &Source<'_>, root: BlobId, tx: &SyncSender<Item>) {
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        let tree = source.load(&id);
        if let Some(t) = &tree {
            todo.extend(t.subtrees().iter().rev());
        }
        if tx.send((id, tree)).is_err() {
            return;
        }
    }
}
