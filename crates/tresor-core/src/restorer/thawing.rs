//! Files left for later because their data lies in packs still thawing (the cold tier's
//! "ready first" restore, docs/cli.md "Cold tier"): such a file is skipped before anything is
//! written for it — no temporary file, no problem — and counted and named in
//! [`RestoreResult::waiting`](super::RestoreResult::waiting).

use super::differ::MAX_LISTED;
use super::dirs::FileJob;
use crate::repo::index::Index;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tresor_format::ObjectId;
use tresor_format::tree::Node;

/// Files not restored because a data pack they need is still thawing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Files (names) not restored, hard-link names included.
    pub files: u64,
    /// Their content bytes (file sizes; a further name of a hard-linked file adds none).
    pub bytes: u64,
    /// Their target paths, sorted (at most [`MAX_LISTED`]; `files` counts all).
    pub paths: Vec<String>,
}

/// What the workers share about the packs to leave alone.
#[derive(Default)]
pub(super) struct Thawing {
    /// Index positions of the packs still thawing.
    packs: HashSet<u32>,
    files: AtomicU64,
    bytes: AtomicU64,
    paths: Mutex<Vec<String>>,
    /// Hard-link groups (device, inode) whose first name waits: their further names wait too.
    links: Mutex<HashSet<(u64, u64)>>,
}

impl Thawing {
    /// The packs of `skip` that `index` knows (a pack it does not know holds no blob to read).
    pub(super) fn new(index: &Index, skip: &HashSet<ObjectId>) -> Thawing {
        Thawing {
            packs: skip
                .iter()
                .filter_map(|id| index.pack_position(id))
                .collect(),
            ..Thawing::default()
        }
    }

    /// Whether `node` needs a blob whose indexed location (the copy the thaw step looked at,
    /// `tresor_core::thaw::needed_packs`) lies in a pack still thawing.
    pub(super) fn waits(&self, index: &Index, node: &Node) -> bool {
        !self.packs.is_empty()
            && (node.content.iter())
                .any(|id| index.get(id).is_some_and(|l| self.packs.contains(&l.pack)))
    }

    /// Count the file of `job` as waiting (its hard-link group with it).
    pub(super) fn skip(&self, job: &FileJob) {
        if job.node.links > 1 {
            let key = (job.node.device, job.node.inode);
            self.links.lock().expect("links lock").insert(key);
        }
        self.add(job.path(), job.node.size);
    }

    /// Whether the hard-link group (device, inode) waits; a further name of it is then counted.
    pub(super) fn link_waits(&self, key: (u64, u64), path: impl FnOnce() -> String) -> bool {
        let waits = self.links.lock().expect("links lock").contains(&key);
        if waits {
            self.add(path(), 0);
        }
        waits
    }

    fn add(&self, path: String, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut paths = self.paths.lock().expect("paths lock");
        if paths.len() < MAX_LISTED {
            paths.push(path);
        }
    }

    /// The counts and the sorted paths.
    pub(super) fn finish(self) -> Waiting {
        let mut paths = self.paths.into_inner().expect("paths lock");
        paths.sort();
        Waiting {
            files: self.files.into_inner(),
            bytes: self.bytes.into_inner(),
            paths,
        }
    }
}
