//! `dump`: a snapshot's file as its bytes, or a directory as a tar or zip stream (restic's
//! `dump`).
//!
//! The tree is walked depth-first in name order with an explicit stack (at most
//! [`MAX_TREE_DEPTH`] deep). Every name is checked again as restore does ([`valid_name`],
//! strictly increasing in its tree), so no archive path holds `..`, `/` inside a name or an
//! empty component: a path in the archive never leaves the directory it is extracted into. A
//! bad name is damage naming the path, and the dump stops.
//!
//! Content is streamed blob by blob ([`Content`]): every blob is loaded through the
//! [`BlobReader`] (verified against its id, as restore does), and a file's blobs must add up to
//! the size its node records. At most one blob of a file is in memory at a time.
//!
//! Privileged metadata follows restore's rules ([`crate::restorer::policy`]): from a
//! snapshot whose writer is not trusted with it ([`Options::privileged`] false) setuid/setgid
//! bits are cleared, `security.*`/`trusted.*` attributes left out and device nodes not
//! written; each is counted in [`Dumped::withheld`]. Extended attributes outside restore's
//! default allow-list are left out too.

mod content;
mod sparse;
mod tar;
mod zip;

use crate::error::{CoreError, Result};
use crate::metapolicy::{Fate, MetaPolicy, XattrFilter};
use crate::repo::blobs::BlobReader;
use crate::repo::tree::{find_node, normalize};
pub use content::Content;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use tresor_format::BlobId;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Xattr, display_bytes, valid_name};

/// The archive format a directory is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Archive {
    /// POSIX tar with PAX records (nanosecond times, extended attributes) and GNU long names.
    #[default]
    Tar,
    /// Zip (deflate), directories, regular files and symlinks only.
    Zip,
}

impl std::str::FromStr for Archive {
    type Err = CoreError;

    /// `tar` or `zip`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tar" => Ok(Archive::Tar),
            "zip" => Ok(Archive::Zip),
            _ => Err(CoreError::Invalid(format!(
                "--archive {s:?}: use tar or zip"
            ))),
        }
    }
}

/// How to dump.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Archive format for a directory (a file is always written as its bytes).
    pub archive: Archive,
    /// Keep privileged metadata (setuid/setgid bits, `security.*`/`trusted.*` attributes,
    /// device nodes): the snapshot was written by a full key, or the admin said so.
    pub privileged: bool,
}

/// What a dump wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dumped {
    /// Whether the path was a single file written as its bytes (no archive).
    pub single_file: bool,
    /// Regular files written with their content (a hard link's later paths not counted).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Hard links written as links to a path written before.
    pub hardlinks: u64,
    /// Symlinks, fifos and device nodes.
    pub others: u64,
    /// Content bytes written (file data, not archive headers).
    pub bytes: u64,
    /// Privileged metadata or device nodes left out (see the module documentation).
    pub withheld: u64,
    /// Entries the archive format cannot hold, left out (sockets; in zip also fifos and devices).
    pub skipped: u64,
}

/// Write what `path` (a snapshot-internal path; `/` for the whole snapshot) names below the
/// snapshot's root tree `root` to `out`: a regular file's bytes, or a directory's contents
/// (not the directory itself) as an archive of `opts.archive`. Returns what was written.
///
/// # Errors
/// [`CoreError::Invalid`] when the path does not exist or is neither a file nor a directory;
/// damage (a blob or tree missing or corrupt, a bad name, content not of the recorded size);
/// [`CoreError::Io`] when `out` fails.
pub fn dump(
    reader: &BlobReader<'_>,
    root: &BlobId,
    path: &[u8],
    opts: &Options,
    out: &mut dyn Write,
) -> Result<Dumped> {
    let path = normalize(path);
    let tree = match find_node(reader, root, &path)? {
        None => *root,
        Some(n) if n.kind == NodeKind::Dir => n.subtree.ok_or_else(|| {
            CoreError::Damaged(format!(
                "{}: directory without a tree",
                display_bytes(&path)
            ))
        })?,
        Some(n) if n.kind == NodeKind::File => {
            let bytes = std::io::copy(&mut Content::new(reader, &n, &path), out)
                .map_err(|e| io_error(e, "output"))?;
            out.flush().map_err(|e| io_error(e, "output"))?;
            return Ok(Dumped {
                single_file: true,
                files: 1,
                bytes,
                ..Dumped::default()
            });
        }
        Some(_) => {
            return Err(CoreError::Invalid(format!(
                "{}: neither a file nor a directory; dump writes files and directories",
                display_bytes(&path)
            )));
        }
    };
    let policy = MetaPolicy {
        owner: true,
        privileged: opts.privileged,
        xattrs: XattrFilter::default(),
    };
    let d = match opts.archive {
        Archive::Tar => tar::write(reader, &tree, &policy, out)?,
        Archive::Zip => zip::write(reader, &tree, &policy, out)?,
    };
    out.flush().map_err(|e| io_error(e, "output"))?;
    Ok(d)
}

/// Visit every node below `tree` depth-first in name order, a directory before its contents;
/// `f` gets the node's archive path (names joined by `/`, no leading `/`) and the node.
///
/// # Errors
/// Damage: a tree that cannot be loaded, a name that is not valid or not strictly greater than
/// the one before it, directories nested deeper than [`MAX_TREE_DEPTH`]; and `f`'s errors.
fn walk(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    f: &mut dyn FnMut(&[u8], &Node) -> Result<()>,
) -> Result<()> {
    let first = reader.load_tree(tree)?;
    let mut stack = vec![(first.nodes.into_iter(), Vec::new(), Vec::new())];
    while let Some((nodes, dir, last)) = stack.last_mut() {
        let Some(n) = nodes.next() else {
            stack.pop();
            continue;
        };
        let path = if dir.is_empty() {
            n.name.clone()
        } else {
            [&dir[..], b"/", &n.name].concat()
        };
        if !valid_name(&n.name) || n.name <= *last {
            return Err(CoreError::Damaged(format!(
                "{}: not a valid name, or not in order in its tree",
                display_bytes(&path)
            )));
        }
        last.clone_from(&n.name);
        f(&path, &n)?;
        if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
            if stack.len() > MAX_TREE_DEPTH {
                return Err(CoreError::Damaged(format!(
                    "{}: {}",
                    display_bytes(&path),
                    crate::repo::limits::too_deep()
                )));
            }
            let t = reader.load_tree(&sub)?;
            stack.push((t.nodes.into_iter(), path, Vec::new()));
        }
    }
    Ok(())
}

/// The metadata an archive records for a node under `policy`: its mode (setuid/setgid bits
/// withheld from untrusted writers) and the extended attributes that pass, with the number of
/// pieces withheld.
fn shown<'n>(policy: &MetaPolicy, node: &'n Node) -> (u32, Vec<&'n Xattr>, u64) {
    let (mode, fate) = policy.mode(node, node.uid, node.gid);
    let mut withheld = u64::from(fate == Fate::Withheld);
    let mut xattrs = Vec::new();
    for x in &node.xattrs {
        match policy.xattr_fate(x, true) {
            Fate::Apply => xattrs.push(x),
            Fate::Withheld => withheld += 1,
            Fate::Filtered | Fate::Dropped => {}
        }
    }
    (mode, xattrs, withheld)
}

/// An I/O error of writing the archive as a [`CoreError`]: the repository error it carries
/// when it came from [`Content`], else [`CoreError::Io`] naming `what`.
fn io_error(e: std::io::Error, what: &str) -> CoreError {
    if e.get_ref().is_some_and(|i| i.is::<CoreError>()) {
        let inner = e.into_inner().expect("checked above");
        return *inner.downcast::<CoreError>().expect("checked above");
    }
    CoreError::Io {
        path: what.into(),
        source: e,
    }
}

/// Write through `f` into `target`: into a new temporary file in the same directory, renamed
/// to `target` only when `f` succeeded and the data is synced; on any error the temporary file
/// is removed and `target` left as it was.
///
/// # Errors
/// `f`'s error, or [`CoreError::Io`] for creating, syncing or renaming the file.
pub fn to_file<T>(target: &Path, f: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let io = |e: std::io::Error| CoreError::Io {
        path: target.display().to_string(),
        source: e,
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (temp, file) = create_temp(dir).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let done = f(&mut w).and_then(|t| {
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temp, target).map_err(io)?;
        Ok(t)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    done
}

/// A new file `.tresor-dump-<random>` in `dir`, created exclusively.
fn create_temp(dir: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    for _ in 0..16 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| std::io::Error::other(e.to_string()))?;
        let p = dir.join(format!(".tresor-dump-{}", hex::encode(r)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary name"))
}
