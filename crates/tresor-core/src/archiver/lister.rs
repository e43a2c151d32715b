//! Directories opened, listed and `lstat`ed ahead of the walker, on a thread of their own.
//!
//! In an unchanged rerun of 60,000 files half of the walker's time was the kernel's: an `lstat`
//! of every entry (a lookup in the dentry cache), `getdents64` and `openat` of every directory
//! (`perf record` of the rerun); the other half is comparing the entries with the parent tree.
//! A lister does the first half for the directories below a backed-up directory, on the other
//! core, in the order the walker asks for them: depth-first pre-order, entries by name bytes,
//! [`CHUNK`] entries at a time. One function, [`prepare`], decides for both what a directory is
//! (not opened, left out by a marker file, a cache directory, on another file system, listed),
//! and the walker descends into the entries whose `lstat` from the lister shows a directory, so
//! the lister prepares the directories the walker asks for, in that order.
//!
//! - **Bounded**: at most [`AHEAD`] messages of at most [`CHUNK`] entries each are prepared and
//!   not yet taken. A directory's names wait unlooked-at until their chunk is due, as the
//!   walker held a directory's names before; the lister holds those (and a descriptor) of each
//!   directory on its own path, which runs at most [`AHEAD`] directories deeper than the
//!   walker's.
//! - **Checked**: each prepared directory names its path. A directory the walker asks for that
//!   is not the lister's next (a race: the walker looks at a cache directory's `CACHEDIR.TAG`
//!   itself, which may have become a directory since), and everything below it, the walker
//!   prepares itself; the lister's next stays for the directory it is for.
//! - **As safe as before**: entries are opened through the descriptor they were listed with, and
//!   files are checked when opened and after reading ([`super::open`], `Walker::read_file`). An
//!   `lstat` may now be minutes old: an entry that is no longer of its type, or another file
//!   (an editor saved it anew), the walker looks at again (`Walker::save_stated`).

use super::handoff::{Receiver, Sender, handoff};
use super::open::{LIST_BUF, OpenError, list_names, open_dir, open_regular};
use super::paths::{child_path, shown};
use crate::error::{CoreError, Result};
use crate::exclude::{PatternSet, is_cachedir_tag};
use crate::fsmeta::{EntryStat, lstat_at};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use tresor_format::tree::NodeKind;

/// Entries `lstat`ed and handed over at a time, at most.
pub(super) const CHUNK: usize = 128;

/// Messages (a directory, or the next chunk of one) prepared and not yet taken, at most.
pub(super) const AHEAD: usize = 32;

/// The name of the file that marks a cache directory (bford.info/cachedir, `--exclude-caches`).
pub(super) const CACHEDIR_TAG: &[u8] = b"CACHEDIR.TAG";

/// What a directory's marker files decide ([`prepare`], and the count of the sources,
/// `super::scan`, by the same rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    /// No marker: back up everything.
    None,
    /// `--exclude-if-present`: leave the directory out.
    Exclude,
    /// `--exclude-caches`: keep the directory and its `CACHEDIR.TAG`, nothing else.
    Cache,
}

/// What decides how a directory is prepared: the backup's exclusion options.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    /// Paths left out (`--exclude` and friends), matched before an entry is looked at.
    pub excludes: PatternSet,
    /// `--exclude-if-present`: a directory holding one of these names is left out.
    pub exclude_if_present: Vec<String>,
    /// `--exclude-caches`: a directory with a valid `CACHEDIR.TAG` keeps only that file.
    pub exclude_caches: bool,
    /// `--one-file-system`: a directory on another device is kept without its entries.
    pub one_file_system: bool,
}

/// One entry of a listed directory: its name and its `lstat` (the error, for a warning).
#[derive(Debug)]
pub(super) struct Stated {
    /// The name's bytes.
    pub name: Vec<u8>,
    /// Its `lstat` ([`lstat_at`] on the directory's descriptor).
    pub meta: std::io::Result<EntryStat>,
}

/// A listed directory's entries that no pattern excludes, in name-byte order, a chunk at a
/// time: [`Entries::chunk`], then [`DirsAhead::next_chunk`].
#[derive(Debug)]
pub(super) struct Entries {
    /// The current chunk (at most [`CHUNK`] entries; empty only at the end).
    pub chunk: Vec<Stated>,
    rest: Rest,
}

/// Where a directory's next chunk comes from.
#[derive(Debug)]
enum Rest {
    /// There is none.
    Done,
    /// The lister sends it.
    Lister,
    /// These names (sorted), looked at here.
    Here(Unstated),
}

/// The names of a listed directory not yet looked at.
#[derive(Debug)]
struct Unstated {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    names: std::vec::IntoIter<Vec<u8>>,
}

impl Unstated {
    /// The next up to [`CHUNK`] names no pattern excludes, with their `lstat`. An excluded
    /// entry is never looked at: the patterns match the path alone, so it is decided before
    /// any system call on the entry.
    fn chunk(&mut self, rules: &Rules) -> Vec<Stated> {
        let mut chunk = Vec::with_capacity(CHUNK.min(self.names.len()));
        while chunk.len() < CHUNK {
            let Some(name) = self.names.next() else { break };
            let child = child_path(&self.path, &name);
            if rules.excludes.matches(&child) {
                continue;
            }
            #[cfg(test)]
            probe::touched(&child);
            let meta = lstat_at(self.fd.as_fd(), &name);
            chunk.push(Stated { name, meta });
        }
        chunk
    }

    /// Whether names are left.
    fn is_empty(&self) -> bool {
        self.names.len() == 0
    }
}

/// A directory entry of kind directory, opened and looked at ([`prepare`]).
#[derive(Debug)]
pub(super) enum Prepared {
    /// It could not be opened.
    NotOpened(OpenError),
    /// `--exclude-if-present`: left out.
    Excluded,
    /// `--exclude-caches`: kept with its `CACHEDIR.TAG` alone (which the walker looks at).
    Cache(Arc<OwnedFd>),
    /// On another file system with `--one-file-system`: kept without its entries.
    OtherFs,
    /// Opened and listed: its entries; or the listing's error (it is kept without entries).
    Listed(Arc<OwnedFd>, std::io::Result<Entries>),
}

/// Open the directory `name` in `dir` (at `path`; `dev` is its own device from its `lstat`,
/// `parent_dev` that of the directory holding it, `None` at the top of a walk) and look at it
/// as a backup does: marker files first (`--exclude-if-present`, then `--exclude-caches`), then
/// `--one-file-system`, then its listing ([`list`]). `buf` is scratch for [`list_names`].
pub(super) fn prepare(
    rules: &Rules,
    dir: BorrowedFd<'_>,
    path: &Path,
    name: &[u8],
    dev: u64,
    parent_dev: Option<u64>,
    buf: &mut Vec<u8>,
) -> Prepared {
    let fd = match open_dir(dir, name) {
        Ok(fd) => fd,
        Err(e) => return Prepared::NotOpened(e),
    };
    match marker(rules, &fd) {
        Marker::Exclude => return Prepared::Excluded,
        Marker::Cache => return Prepared::Cache(Arc::new(fd)),
        Marker::None => {}
    }
    if rules.one_file_system && parent_dev.is_some_and(|d| d != dev) {
        return Prepared::OtherFs;
    }
    let fd = Arc::new(fd);
    let listed = list(rules, fd.clone(), path, buf);
    Prepared::Listed(fd, listed)
}

/// The entries of the open directory `fd` at `path`, sorted by name bytes, its first chunk
/// looked at.
///
/// # Errors
/// The listing's error ([`list_names`]).
fn list(
    rules: &Rules,
    fd: Arc<OwnedFd>,
    path: &Path,
    buf: &mut Vec<u8>,
) -> std::io::Result<Entries> {
    let mut names = list_names(&fd, buf)?;
    names.sort_unstable();
    let mut rest = Unstated {
        fd,
        path: path.to_path_buf(),
        names: names.into_iter(),
    };
    let chunk = rest.chunk(rules);
    let rest = if rest.is_empty() {
        Rest::Done
    } else {
        Rest::Here(rest)
    };
    Ok(Entries { chunk, rest })
}

/// What a directory's marker files say: `--exclude-if-present` leaves it out,
/// `--exclude-caches` keeps only it and its `CACHEDIR.TAG` (as restic does).
fn marker(rules: &Rules, fd: &OwnedFd) -> Marker {
    let present =
        |n: &[u8]| rustix::fs::statat(fd, n, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok();
    if rules
        .exclude_if_present
        .iter()
        .any(|n| present(n.as_bytes()))
    {
        return Marker::Exclude;
    }
    if rules.exclude_caches {
        // Not followed if a symlink, never blocks on a FIFO: a regular file or nothing.
        if let Ok((mut f, _)) = open_regular(fd.as_fd(), CACHEDIR_TAG, None)
            && is_cachedir_tag(&mut f)
        {
            return Marker::Cache;
        }
    }
    Marker::None
}

/// The walker's side: where its directories come from during a walk.
pub(super) struct DirsAhead {
    rules: Arc<Rules>,
    state: State,
    /// Whether a walk may start a lister (false: the walker prepares every directory itself).
    threads: bool,
    /// Scratch buffer of the walker's own listings.
    buf: Vec<u8>,
}

enum State {
    /// Not below a backed-up directory: the next directory asked for is the top of a walk.
    Idle,
    /// In a walk: taking prepared directories from its lister (`None`: it could not be
    /// started), except below a directory the lister did not prepare (`local` levels deep).
    Walk { taker: Option<Taker>, local: usize },
}

/// What [`DirsAhead::take`] gave a directory as; handed back to [`DirsAhead::done`].
#[must_use]
pub(super) enum Taken {
    /// The top of a walk.
    Top,
    /// From the lister.
    Ahead,
    /// Prepared by the walker below the top (the lister has not prepared it).
    Local,
}

impl DirsAhead {
    /// Nothing ahead yet; directories are prepared by `rules`, ahead on a thread of their own
    /// when `threads` allows.
    pub(super) fn new(rules: Rules, threads: bool) -> Self {
        DirsAhead {
            rules: Arc::new(rules),
            state: State::Idle,
            threads,
            buf: Vec::with_capacity(LIST_BUF),
        }
    }

    /// The listing of the open directory `fd` at `path`, made here: for a top directory the
    /// walker opened itself (`/`).
    ///
    /// # Errors
    /// The listing's error.
    pub(super) fn list_here(&mut self, fd: Arc<OwnedFd>, path: &Path) -> std::io::Result<Entries> {
        list(&self.rules, fd, path, &mut self.buf)
    }

    /// The directory `name` in `dir` at `path`, prepared ([`prepare`]'s arguments). At the top
    /// of a walk a lister is started for it and everything below; the walker hands the
    /// [`Taken`] back to [`DirsAhead::done`] when it is done with the directory.
    pub(super) fn take(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &[u8],
        dev: u64,
        parent_dev: Option<u64>,
    ) -> (Prepared, Taken) {
        let top = matches!(self.state, State::Idle);
        if top {
            let job = || {
                Some(Job {
                    parent: dir.try_clone_to_owned().ok()?,
                    name: name.to_vec(),
                    path: path.to_path_buf(),
                    dev,
                    parent_dev,
                })
            };
            let taker = if self.threads { job() } else { None };
            let taker = taker.and_then(|j| Taker::start(self.rules.clone(), j));
            self.state = State::Walk { taker, local: 0 };
        }
        if let State::Walk { taker, local } = &mut self.state {
            if *local == 0
                && let Some(p) = taker.as_mut().and_then(|t| t.next_dir(path))
            {
                #[cfg(test)]
                probe::FROM_LISTER.set(probe::FROM_LISTER.get() + u64::from(!top));
                return (p, if top { Taken::Top } else { Taken::Ahead });
            }
            if !top {
                *local += 1;
            }
        }
        let p = prepare(&self.rules, dir, path, name, dev, parent_dev, &mut self.buf);
        (p, if top { Taken::Top } else { Taken::Local })
    }

    /// The next chunk of `entries` (of the directory at `path`) into its [`Entries::chunk`];
    /// false when there is none.
    ///
    /// # Errors
    /// The lister stopped before sending the chunk it owes (not expected: the walk cannot go
    /// on without the rest of the directory).
    pub(super) fn next_chunk(&mut self, path: &Path, entries: &mut Entries) -> Result<bool> {
        match &mut entries.rest {
            Rest::Done => Ok(false),
            Rest::Here(rest) => {
                entries.chunk = rest.chunk(&self.rules);
                if rest.is_empty() {
                    entries.rest = Rest::Done;
                }
                Ok(true)
            }
            Rest::Lister => {
                let more = match &mut self.state {
                    State::Walk {
                        taker: Some(t),
                        local: 0,
                    } => t.next_chunk(path),
                    _ => None,
                };
                let Some((chunk, more)) = more else {
                    let shown = shown(path);
                    return Err(CoreError::Invalid(format!(
                        "{shown}: the listing ended early (internal error)"
                    )));
                };
                entries.chunk = chunk;
                if !more {
                    entries.rest = Rest::Done;
                }
                Ok(true)
            }
        }
    }

    /// Done with a directory [`DirsAhead::take`] gave: at the top of a walk its lister is
    /// stopped (see [`Taker`]'s `drop`).
    pub(super) fn done(&mut self, taken: Taken) {
        match (taken, &mut self.state) {
            (Taken::Top, _) => self.state = State::Idle,
            (Taken::Local, State::Walk { local, .. }) => *local = local.saturating_sub(1),
            _ => {}
        }
    }
}

/// A directory for the lister to prepare, with everything below it.
struct Job {
    /// The directory holding it (a duplicate of the walker's descriptor).
    parent: OwnedFd,
    name: Vec<u8>,
    path: PathBuf,
    /// Its own device and the parent's (as [`prepare`] takes them).
    dev: u64,
    parent_dev: Option<u64>,
}

/// What the lister sends.
#[derive(Debug)]
enum Item {
    /// A directory, prepared (its entries' [`Rest`] is [`Rest::Lister`] or [`Rest::Done`]).
    Dir(PathBuf, Prepared),
    /// The next chunk of the directory at that path, and whether another follows.
    More(PathBuf, Vec<Stated>, bool),
}

/// The receiving end of a lister's thread; dropping it stops the thread (see its `drop`).
struct Taker {
    rx: Option<Receiver<Item>>,
    /// An item received for another directory than the one asked for.
    peeked: Option<Item>,
    thread: Option<JoinHandle<()>>,
}

impl Taker {
    /// Start a lister for `job`; `None` when no thread can be started.
    fn start(rules: Arc<Rules>, job: Job) -> Option<Taker> {
        let (tx, rx) = handoff(AHEAD);
        let lister = Lister {
            rules,
            tx,
            buf: Vec::with_capacity(LIST_BUF),
        };
        #[cfg(test)]
        let log = probe::touch_log();
        let thread = std::thread::Builder::new()
            .name("tresor-lister".into())
            .spawn(move || {
                #[cfg(test)]
                probe::set_touch_log(log);
                lister.run(job)
            })
            .ok()?;
        Some(Taker {
            rx: Some(rx),
            peeked: None,
            thread: Some(thread),
        })
    }

    fn next(&mut self) -> Option<Item> {
        self.peeked.take().or_else(|| self.rx.as_ref()?.recv())
    }

    /// The directory at `path` when it is the lister's next; otherwise what came stays next.
    fn next_dir(&mut self, path: &Path) -> Option<Prepared> {
        match self.next()? {
            Item::Dir(p, prepared) if p == path => Some(prepared),
            other => {
                self.peeked = Some(other);
                None
            }
        }
    }

    /// The next chunk of the directory at `path` and whether another follows, when it is the
    /// lister's next.
    fn next_chunk(&mut self, path: &Path) -> Option<(Vec<Stated>, bool)> {
        match self.next()? {
            Item::More(p, chunk, more) if p == path => Some((chunk, more)),
            other => {
                self.peeked = Some(other);
                None
            }
        }
    }
}

impl Drop for Taker {
    /// The lister's next send fails, and it ends: after the directory or chunk it is preparing
    /// (one listing, at most [`CHUNK`] `lstat`s). A lister that has not ended yet is not waited
    /// for — it may be stuck in a system call on a hung network file system the walker never
    /// reached (a backup that stops for an error or an interrupt must not hang on it).
    fn drop(&mut self) {
        self.rx = None;
        self.peeked = None;
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

/// The lister's thread: prepares a job's directories depth-first and sends them in order.
struct Lister {
    rules: Arc<Rules>,
    tx: Sender<Item>,
    buf: Vec<u8>,
}

/// A listed directory whose entries and subdirectories are being prepared.
struct Frame {
    dev: u64,
    /// Its names not yet looked at.
    rest: Unstated,
    /// The subdirectories of its last chunk not yet prepared: names and devices.
    dirs: std::vec::IntoIter<(Vec<u8>, u64)>,
}

impl Lister {
    /// Prepare the job's directory and every directory below it (iteratively, any depth) until
    /// all are sent or the walker stops taking.
    fn run(mut self, job: Job) {
        let top = prepare(
            &self.rules,
            job.parent.as_fd(),
            &job.path,
            &job.name,
            job.dev,
            job.parent_dev,
            &mut self.buf,
        );
        let mut stack = Vec::new();
        if !self.send_dir(job.path, top, job.dev, &mut stack) {
            return;
        }
        while let Some(frame) = stack.last_mut() {
            if let Some((name, dev)) = frame.dirs.next() {
                let (fd, path) = (frame.rest.fd.clone(), child_path(&frame.rest.path, &name));
                let parent_dev = Some(frame.dev);
                let p = prepare(
                    &self.rules,
                    fd.as_fd(),
                    &path,
                    &name,
                    dev,
                    parent_dev,
                    &mut self.buf,
                );
                if !self.send_dir(path, p, dev, &mut stack) {
                    return;
                }
            } else if !frame.rest.is_empty() {
                let chunk = frame.rest.chunk(&self.rules);
                frame.dirs = subdirs(&chunk).into_iter();
                let more = !frame.rest.is_empty();
                let path = frame.rest.path.clone();
                if self.tx.send(Item::More(path, chunk, more)).is_err() {
                    return;
                }
            } else {
                stack.pop();
            }
        }
    }

    /// Send the directory at `path` (on device `dev`) and, when listed, put it on `stack`;
    /// false when the walker stopped taking.
    fn send_dir(
        &mut self,
        path: PathBuf,
        mut p: Prepared,
        dev: u64,
        stack: &mut Vec<Frame>,
    ) -> bool {
        let frame = match &mut p {
            Prepared::Listed(fd, Ok(entries)) => {
                // The rest of its names are looked at here, and sent as chunks.
                let rest = match std::mem::replace(&mut entries.rest, Rest::Done) {
                    Rest::Here(rest) => {
                        entries.rest = Rest::Lister;
                        rest
                    }
                    _ => Unstated {
                        fd: fd.clone(),
                        path: path.clone(),
                        names: Vec::new().into_iter(),
                    },
                };
                Some(Frame {
                    dev,
                    rest,
                    dirs: subdirs(&entries.chunk).into_iter(),
                })
            }
            _ => None,
        };
        if self.tx.send(Item::Dir(path, p)).is_err() {
            return false;
        }
        stack.extend(frame);
        true
    }
}

/// The entries the walker descends into: those whose `lstat` shows a directory, with their
/// devices.
fn subdirs(entries: &[Stated]) -> Vec<(Vec<u8>, u64)> {
    let dir = |e: &Stated| match &e.meta {
        Ok(m) if m.kind() == Some(NodeKind::Dir) => Some((e.name.clone(), m.dev)),
        _ => None,
    };
    entries.iter().filter_map(dir).collect()
}

/// What tests see of the entries a walk looks at.
#[cfg(test)]
pub(super) mod probe {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    /// Paths of entries looked at (`lstat`), by the walker and the listers it starts.
    pub(in crate::archiver) type TouchLog = Arc<Mutex<Vec<PathBuf>>>;

    thread_local! {
        /// Where this thread's walker (or lister) records the entries it looks at, when
        /// recording.
        pub(in crate::archiver) static TOUCHED: RefCell<Option<TouchLog>> =
            const { RefCell::new(None) };
    }

    /// Record that the walker is about to `lstat` (and maybe open or list) `path`.
    pub(in crate::archiver) fn touched(path: &Path) {
        TOUCHED.with_borrow(|t| {
            if let Some(t) = t {
                t.lock().unwrap().push(path.to_path_buf())
            }
        });
    }

    /// This thread's log, for a lister it starts.
    pub(in crate::archiver) fn touch_log() -> Option<TouchLog> {
        TOUCHED.with_borrow(|t| t.clone())
    }

    /// Record into `log` on this (a lister's) thread.
    pub(in crate::archiver) fn set_touch_log(log: Option<TouchLog>) {
        TOUCHED.set(log);
    }

    thread_local! {
        /// Entries this thread's walker looked at again: not what their listing showed.
        pub(in crate::archiver) static LOOKED_AGAIN: RefCell<Vec<PathBuf>> =
            const { RefCell::new(Vec::new()) };
        /// Directories below the top of a walk this thread's walker took from a lister.
        pub(in crate::archiver) static FROM_LISTER: std::cell::Cell<u64> =
            const { std::cell::Cell::new(0) };
    }

    /// Record that the walker looks at `path` again.
    pub(in crate::archiver) fn looked_again(path: &Path) {
        LOOKED_AGAIN.with_borrow_mut(|v| v.push(path.to_path_buf()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exclude::CACHEDIR_TAG_SIGNATURE;
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::ffi::OsStrExt;

    fn rules(excludes: &[&str]) -> Rules {
        let excludes: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
        Rules {
            excludes: PatternSet::new(&excludes).unwrap(),
            exclude_if_present: vec![".nobackup".into()],
            exclude_caches: true,
            one_file_system: false,
        }
    }

    fn open(path: &Path) -> OwnedFd {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open(path, flags, Mode::empty()).unwrap()
    }

    /// What a walk sees, as the walker takes it: each directory asked for (how it was
    /// prepared) and each entry with its kind, descending into the entries that are
    /// directories; chunk sizes are checked on the way. `locals` counts the directories below
    /// the top that the walker prepared itself.
    fn walk(
        dirs: &mut DirsAhead,
        dir: BorrowedFd<'_>,
        path: &Path,
        seen: &mut Vec<String>,
        locals: &mut usize,
    ) {
        let name = path.file_name().unwrap().as_bytes();
        let dev = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .unwrap()
            .st_dev;
        let (prepared, taken) = dirs.take(dir, path, name, dev, None);
        *locals += usize::from(matches!(taken, Taken::Local));
        let shown = path.display();
        match prepared {
            Prepared::Listed(fd, Ok(mut entries)) => {
                seen.push(format!("{shown}: listed"));
                loop {
                    assert!(entries.chunk.len() <= CHUNK);
                    for e in std::mem::take(&mut entries.chunk) {
                        let kind = e.meta.as_ref().map(|m| m.kind()).ok().flatten();
                        let child = child_path(path, &e.name);
                        seen.push(format!("{}: {kind:?}", child.display()));
                        if kind == Some(NodeKind::Dir) {
                            walk(dirs, fd.as_fd(), &child, seen, locals);
                        }
                    }
                    if !dirs.next_chunk(path, &mut entries).unwrap() {
                        break;
                    }
                }
            }
            Prepared::Listed(_, Err(e)) => seen.push(format!("{shown}: unlistable {e}")),
            Prepared::NotOpened(e) => seen.push(format!("{shown}: not opened {e}")),
            Prepared::Excluded => seen.push(format!("{shown}: excluded")),
            Prepared::Cache(_) => seen.push(format!("{shown}: cache")),
            Prepared::OtherFs => seen.push(format!("{shown}: other fs")),
        }
        dirs.done(taken);
    }

    /// A tree with a directory of 3 chunks whose subdirectories fall on both sides of chunk
    /// boundaries, excluded entries, a marked and a cache directory, a symlink and nesting.
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let big = src.join("big");
        std::fs::create_dir_all(&big).unwrap();
        for i in 0..(2 * CHUNK + 40) {
            if i % 61 == 0 {
                std::fs::create_dir_all(big.join(format!("{i:04}/sub"))).unwrap();
                std::fs::write(big.join(format!("{i:04}/sub/f")), b"f").unwrap();
            } else {
                std::fs::write(big.join(format!("{i:04}.{}", i % 3)), b"x").unwrap();
            }
        }
        for d in ["a/b/c", "marked/inner", "cache/inner", "x.skip/y"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
        }
        std::fs::write(src.join("marked/.nobackup"), b"").unwrap();
        std::fs::write(src.join("cache/CACHEDIR.TAG"), CACHEDIR_TAG_SIGNATURE).unwrap();
        std::os::unix::fs::symlink("a", src.join("link")).unwrap();
        t
    }

    /// The lister prepares exactly what the walker would prepare itself, in the order it asks:
    /// the same directories, entries, kinds and chunks, with patterns excluding files and a
    /// directory, both marker files, and a directory of three chunks.
    #[test]
    fn the_lister_prepares_what_the_walker_would() {
        let t = tree();
        let src = t.path().join("src");
        let parent = open(t.path());
        let walked = |threads: bool| {
            let mut dirs = DirsAhead::new(rules(&["*.1", "x.skip"]), threads);
            let (mut seen, mut locals) = (Vec::new(), 0);
            walk(&mut dirs, parent.as_fd(), &src, &mut seen, &mut locals);
            (seen, locals)
        };
        let (here, locals) = walked(false);
        assert!(locals > 10, "{locals}");
        // Every directory from the lister: none the walker had to prepare itself.
        let (ahead, locals) = walked(true);
        assert_eq!(locals, 0);
        assert_eq!(ahead, here);
        let has = |line: &str| here.iter().any(|l| l.ends_with(line));
        assert!(
            has("src/marked: excluded") && has("src/cache: cache"),
            "{here:?}"
        );
        assert!(has("src/big/0122/sub/f: Some(File)") && has("src/link: Some(Symlink)"));
        assert!(
            !here
                .iter()
                .any(|l| l.contains(".1:") || l.contains("x.skip"))
        );
        // 2 × CHUNK + 40 entries in big, a third of them `*.1`.
        let in_big = here.iter().filter(|l| l.contains("src/big/0")).count();
        assert!(in_big > CHUNK + 40, "{in_big}");
    }

    /// A directory the walker asks for that is not the lister's next (a `CACHEDIR.TAG` that
    /// became a directory) is prepared here, and so is everything below it; the lister's next
    /// stays for the directory it is for.
    #[test]
    fn a_directory_the_lister_did_not_prepare_is_prepared_here() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("odd/below")).unwrap();
        let root = open(t.path());
        let (tx, rx) = handoff(AHEAD);
        let next = t.path().join("next");
        // The lister's next: the rest of a listed directory `big`, then the directory `next`.
        let big = t.path().join("big");
        let rest = vec![Stated {
            name: b"z".to_vec(),
            meta: Err(std::io::ErrorKind::NotFound.into()),
        }];
        tx.send(Item::More(big.clone(), rest, false)).unwrap();
        tx.send(Item::Dir(next.clone(), Prepared::Excluded))
            .unwrap();
        let taker = Taker {
            rx: Some(rx),
            peeked: None,
            thread: None,
        };
        let mut dirs = DirsAhead::new(rules(&[]), false);
        dirs.state = State::Walk {
            taker: Some(taker),
            local: 0,
        };
        let odd = t.path().join("odd");
        let (p, taken) = dirs.take(root.as_fd(), &odd, b"odd", 0, None);
        assert!(matches!(taken, Taken::Local));
        let Prepared::Listed(fd, Ok(entries)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(entries.chunk.len(), 1);
        let (below, inner) = dirs.take(fd.as_fd(), &odd.join("below"), b"below", 0, None);
        assert!(matches!(below, Prepared::Listed(_, Ok(_))));
        assert!(matches!(inner, Taken::Local));
        dirs.done(inner);
        dirs.done(taken);
        let mut listed = Entries {
            chunk: Vec::new(),
            rest: Rest::Lister,
        };
        assert!(dirs.next_chunk(&big, &mut listed).unwrap());
        assert_eq!(listed.chunk[0].name, b"z");
        assert!(!dirs.next_chunk(&big, &mut listed).unwrap());
        let (p, taken) = dirs.take(root.as_fd(), &next, b"next", 0, None);
        assert!(matches!((p, taken), (Prepared::Excluded, Taken::Ahead)));
    }

    /// Chunks come in name-byte order, each at most [`CHUNK`] entries, excluded names left out
    /// before they are looked at.
    #[test]
    fn a_large_directory_comes_in_chunks() {
        let t = tempfile::tempdir().unwrap();
        let n = 3 * CHUNK + 5;
        for i in 0..n {
            std::fs::write(t.path().join(format!("{i:05}.{}", i % 2)), b"").unwrap();
        }
        let mut dirs = DirsAhead::new(rules(&["*.1"]), false);
        let mut entries = dirs.list_here(Arc::new(open(t.path())), t.path()).unwrap();
        let mut names = Vec::new();
        let mut sizes = Vec::new();
        loop {
            sizes.push(entries.chunk.len());
            names.extend(entries.chunk.drain(..).map(|e| {
                assert!(e.meta.unwrap().kind() == Some(NodeKind::File));
                String::from_utf8(e.name).unwrap()
            }));
            if !dirs.next_chunk(t.path(), &mut entries).unwrap() {
                break;
            }
        }
        let want: Vec<String> = (0..n)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("{i:05}.0"))
            .collect();
        assert_eq!(names, want);
        assert_eq!(sizes, [CHUNK, want.len() - CHUNK]);
    }
}
