//! The walker: depth-first over the snapshot's trees without recursion, checking every name,
//! creating directories and handing every other entry to the workers.

use super::dirs::{DirState, FileJob};
use super::{RestoreOptions, Shared};
use crate::error::{CoreError, Result};
use crate::exclude::PatternSet;
use crate::repo::blobs::BlobReader;
use crossbeam_channel::Sender;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tresor_format::BlobId;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, valid_name};

/// Why a node name is refused, if it is.
pub(super) fn name_problem(prev: Option<&[u8]>, name: &[u8]) -> Option<&'static str> {
    if !valid_name(name) {
        Some("invalid name in the snapshot (empty, `.`, `..`, or holding `/` or NUL): not restored")
    } else if prev.is_some_and(|p| p >= name) {
        Some("name duplicated or out of order in its directory in the snapshot: not restored")
    } else {
        None
    }
}

/// One tree being walked.
struct Frame {
    dir: Arc<DirState>,
    nodes: std::vec::IntoIter<Node>,
    /// The last name accepted in this tree.
    prev: Option<Vec<u8>>,
    /// Length of this directory's snapshot path in [`Walk::spath`].
    base: usize,
    /// This directory or an ancestor matches an exclude / include pattern.
    excluded: bool,
    included: bool,
}

/// Hard-link groups: the first name of each, by (device, inode).
pub(super) type Links = HashMap<(u64, u64), (Arc<DirState>, Vec<u8>)>;
/// Further names of hard-link groups, made after every file exists.
pub(super) type Deferred = Vec<(Arc<DirState>, Node)>;

pub(super) struct Walk<'s, 'a> {
    sh: &'s Shared<'a>,
    opts: &'s RestoreOptions,
    jobs: Sender<FileJob>,
    links: Links,
    deferred: Deferred,
    /// Hashes of the snapshot paths of directories that lead to included entries.
    needed: Option<HashSet<[u8; 32]>>,
    dirs: u64,
    /// Snapshot path of the entry at hand ("" for the root), grown and cut as the walk moves.
    spath: String,
    /// Depth of the restored subpath below the snapshot's root tree.
    base_depth: usize,
    stack: Vec<Frame>,
    /// Entries and content bytes handed to the workers, reported as the total when
    /// [`Walk::count_total`] asked for it.
    found: Option<(u64, u64)>,
}

impl<'s, 'a> Walk<'s, 'a> {
    pub fn new(
        sh: &'s Shared<'a>,
        opts: &'s RestoreOptions,
        jobs: Sender<FileJob>,
        prefix: &[u8],
    ) -> Self {
        let spath = String::from_utf8_lossy(prefix)
            .trim_end_matches('/')
            .to_string();
        Walk {
            sh,
            opts,
            jobs,
            links: HashMap::new(),
            deferred: Vec::new(),
            needed: None,
            dirs: 0,
            base_depth: crate::repo::tree::components(prefix).len(),
            spath,
            stack: Vec::new(),
            found: None,
        }
    }

    /// When `on`, report the entries found so far as the total ([`crate::Progress::set_total`]):
    /// the walk runs ahead of the workers, so the total grows ahead of the done counts.
    pub fn count_total(&mut self, on: bool) {
        self.found = on.then_some((0, 0));
    }

    /// Hard-link groups, links to make once every file exists, and the directory count.
    pub fn finish(self) -> (Links, Deferred, u64) {
        (self.links, self.deferred, self.dirs)
    }

    /// Restore the entries of `tree` into `root`.
    ///
    /// # Errors
    /// Only when the workers are gone.
    pub fn run(&mut self, root: &Arc<DirState>, tree: &BlobId) -> Result<()> {
        if !self.opts.includes.is_empty() {
            let depth = self.base_depth;
            self.needed = Some(needed_dirs(
                &self.sh.reader,
                tree,
                &self.spath,
                depth,
                &self.opts.includes,
            ));
        }
        let p = if self.spath.is_empty() {
            "/"
        } else {
            &self.spath
        };
        let excluded = self.opts.excludes.matches_or_ancestor(Path::new(p));
        let included = self.opts.includes.matches_or_ancestor(Path::new(p));
        root.pending.fetch_add(1, Ordering::AcqRel);
        self.enter(root.clone(), tree, excluded, included);
        self.walk()
    }

    /// Restore the single non-directory entry `node` (a subpath naming a file) into `root`.
    ///
    /// # Errors
    /// Only when the workers are gone.
    pub fn single(&mut self, root: &Arc<DirState>, node: Node) -> Result<()> {
        if let Some(msg) = name_problem(None, &node.name) {
            self.sh
                .problem(&root.child_path(&node.name), msg.into(), true);
            return Ok(());
        }
        root.pending.fetch_add(1, Ordering::AcqRel);
        self.dispatch(root, node)
    }

    /// Load `tree` and push it as the listing of `dir` (whose snapshot path is `spath`). In a
    /// directory that existed, temporary files an interrupted restore left are removed first
    /// (none of this restore's exist there yet: its entries are handed out after this).
    fn enter(&mut self, dir: Arc<DirState>, tree: &BlobId, excluded: bool, included: bool) {
        match self.sh.reader.load_tree(tree) {
            Ok(t) => {
                let listed = |n: &[u8]| {
                    t.nodes
                        .binary_search_by(|x| x.name.as_slice().cmp(n))
                        .is_ok()
                };
                self.mark(&dir, &listed);
                if !dir.fresh && self.opts.delete {
                    let at = (self.spath.as_str(), excluded, included);
                    super::plan::delete_unexpected(self.sh, self.opts, &dir, &t, at);
                }
                self.push(dir, t, excluded, included);
            }
            Err(e) => {
                self.sh.problem(&dir.path(), e.to_string(), true);
                self.sh.release(&dir);
            }
        }
    }

    fn push(
        &mut self,
        dir: Arc<DirState>,
        t: tresor_format::tree::Tree,
        excluded: bool,
        included: bool,
    ) {
        self.stack.push(Frame {
            dir,
            nodes: t.nodes.into_iter(),
            prev: None,
            base: self.spath.len(),
            excluded,
            included,
        });
    }

    fn walk(&mut self) -> Result<()> {
        while let Some(frame) = self.stack.last_mut() {
            let Some(node) = frame.nodes.next() else {
                let done = self.stack.pop().expect("a frame");
                self.sh.release(&done.dir);
                continue;
            };
            let dir = frame.dir.clone();
            if let Some(msg) = name_problem(frame.prev.as_deref(), &node.name) {
                self.sh
                    .problem(&dir.child_path(&node.name), msg.into(), true);
                continue;
            }
            frame.prev = Some(node.name.clone());
            let (base, fx, fi) = (frame.base, frame.excluded, frame.included);
            self.spath.truncate(base);
            self.spath.push('/');
            self.spath.push_str(&node.name_lossy());
            let p = Path::new(&self.spath);
            let excluded = fx || self.opts.excludes.matches(p);
            let included = fi || self.opts.includes.matches(p);
            let wanted = !excluded && (self.opts.includes.is_empty() || included);
            let descend = node.kind == NodeKind::Dir
                && self
                    .needed
                    .as_ref()
                    .is_some_and(|n| n.contains(blake3::hash(self.spath.as_bytes()).as_bytes()));
            if !wanted && !descend {
                continue;
            }
            dir.pending.fetch_add(1, Ordering::AcqRel);
            if node.kind == NodeKind::Dir {
                self.directory(&dir, node, excluded, included);
            } else {
                self.dispatch(&dir, node)?;
            }
        }
        Ok(())
    }

    /// The interrupted-restore marker of `dir` (its listing claims the names `listed`): in a
    /// directory this restore made, created, so that a restore interrupted before the directory
    /// is complete is known as such by the next one; in one that existed, looked for (found:
    /// its files are judged by content) and the temporary files an interrupted restore left
    /// removed. A name of the listing is never taken for the marker or a temporary file. A dry
    /// run only looks.
    fn mark(&self, dir: &DirState, listed: &dyn Fn(&[u8]) -> bool) {
        use super::temp::{MARKER, marked, remove_leftovers};
        let (fd, dry) = (dir.fd.as_fd(), self.sh.dry_run);
        if listed(MARKER) {
            // The snapshot has an entry of that name: no marker here.
        } else if dir.fresh {
            dir.marked
                .store(!dry && super::temp::mark(fd), Ordering::Relaxed);
        } else if marked(fd) {
            dir.marked.store(!dry, Ordering::Relaxed);
            dir.interrupted.store(true, Ordering::Relaxed);
        }
        if !dir.fresh && !dry {
            let keep = |n: &[u8]| n == MARKER || listed(n);
            let removed = remove_leftovers(fd, &keep);
            self.sh.c.leftovers.fetch_add(removed, Ordering::Relaxed);
        }
    }

    /// Create directory `node` in `dir` and push its listing.
    fn directory(&mut self, dir: &Arc<DirState>, node: Node, excluded: bool, included: bool) {
        if self.stack.len() + self.base_depth > MAX_TREE_DEPTH {
            let msg =
                format!("directories nested deeper than {MAX_TREE_DEPTH} levels: not restored");
            self.sh.problem(&dir.child_path(&node.name), msg, true);
            self.sh.release(dir);
            return;
        }
        self.dirs += 1;
        let (fd, fresh) = match super::plan::directory(self.sh, dir, &node.name) {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("create directory: {e}");
                self.sh.problem(&dir.child_path(&node.name), msg, false);
                self.sh.release(dir);
                return;
            }
        };
        let subtree = node.subtree.filter(|_| node.kind == NodeKind::Dir);
        let state = Arc::new(DirState::child(dir, fd, fresh, node));
        match subtree {
            Some(t) => self.enter(state, &t, excluded, included),
            None => self.sh.release(&state),
        }
    }

    /// Hand a non-directory entry to the workers (hard links after their first name).
    fn dispatch(&mut self, dir: &Arc<DirState>, node: Node) -> Result<()> {
        if let Some((files, bytes)) = &mut self.found {
            *files += 1;
            *bytes += node.size;
            self.sh.progress.set_total(*files, *bytes);
        }
        if node.kind == NodeKind::File && node.links > 1 {
            let key = (node.device, node.inode);
            if self.links.contains_key(&key) {
                self.deferred.push((dir.clone(), node));
                return Ok(());
            }
            self.links.insert(key, (dir.clone(), node.name.clone()));
        }
        let job = FileJob {
            dir: dir.clone(),
            node,
        };
        self.jobs
            .send(job)
            .map_err(|_| CoreError::Invalid("restore workers stopped".into()))
    }
}

/// One tree of [`needed_dirs`].
struct NeedFrame {
    nodes: std::vec::IntoIter<Node>,
    base: usize,
    any: bool,
}

/// Hashes of the snapshot paths of the directories below `tree` (at `prefix`, `depth` trees
/// below the root) that lead to an entry matching `includes`: walked when includes are given.
/// A subtree that does not load counts as needed, so that the walk reports it.
fn needed_dirs(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    prefix: &str,
    depth: usize,
    includes: &PatternSet,
) -> HashSet<[u8; 32]> {
    let mut out = HashSet::new();
    let Ok(t) = reader.load_tree(tree) else {
        return out;
    };
    let mut path = prefix.to_string();
    let mut stack = vec![NeedFrame {
        nodes: t.nodes.into_iter(),
        base: path.len(),
        any: false,
    }];
    loop {
        let level = stack.len();
        let Some(f) = stack.last_mut() else {
            break;
        };
        let Some(n) = f.nodes.next() else {
            let done = stack.pop().expect("a frame");
            if let (true, Some(parent)) = (done.any, stack.last_mut()) {
                parent.any = true;
                out.insert(*blake3::hash(&path.as_bytes()[..done.base]).as_bytes());
            }
            continue;
        };
        if !valid_name(&n.name) {
            continue;
        }
        path.truncate(f.base);
        path.push('/');
        path.push_str(&n.name_lossy());
        if includes.matches(Path::new(&path)) {
            f.any = true;
            continue;
        }
        let Some(sub) = n.subtree.filter(|_| n.kind == NodeKind::Dir) else {
            continue;
        };
        if level + depth > MAX_TREE_DEPTH {
            continue;
        }
        match reader.load_tree(&sub) {
            Ok(t) => stack.push(NeedFrame {
                nodes: t.nodes.into_iter(),
                base: path.len(),
                any: false,
            }),
            Err(_) => {
                f.any = true;
                out.insert(*blake3::hash(path.as_bytes()).as_bytes());
            }
        }
    }
    out
}
