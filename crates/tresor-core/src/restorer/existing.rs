//! What is already at an entry's place in a target the restore did not create, and what
//! [`Overwrite`] makes of it: left alone, kept as the snapshot's file (metadata only), or
//! replaced — with the pieces of an older file whose content matches copied, not fetched.

use super::content::{index_lengths, verify};
use super::dirs::FileJob;
use super::{Overwrite, Shared};
use crate::fsmeta::open_beneath;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::AsFd;
use tresor_format::tree::Node;

/// What is at a file's place.
pub(super) enum Prior {
    /// Nothing.
    Nothing,
    /// Something the overwrite mode leaves as it is (`never`, or `if-newer` and not newer).
    Keep,
    /// The snapshot's file already (content checked, or size and mtime with `if-changed`),
    /// opened read-only: its metadata goes through this descriptor.
    Correct(File),
    /// To be replaced by a new file. `old`: the regular file there, opened read-only, whose
    /// matching pieces may be copied; `dir`: a directory is in the way (removed just before
    /// the new file takes the name).
    Replace { old: Option<(File, u64)>, dir: bool },
}

fn is_regular(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

/// Whether the overwrite mode leaves an existing entry `seen` at `node`'s place as it is.
pub(super) fn left_alone(mode: Overwrite, node: &Node, seen: &Stat) -> bool {
    match mode {
        Overwrite::Never => true,
        Overwrite::IfNewer => {
            (seen.st_mtime, seen.st_mtime_nsec as i64)
                >= (node.mtime.secs, i64::from(node.mtime.nanos))
        }
        Overwrite::Always | Overwrite::IfChanged => false,
    }
}

/// What is at `job`'s place (`lstat`), judged by the overwrite mode.
pub(super) fn prior(sh: &Shared<'_>, job: &FileJob) -> Prior {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    let seen = match rustix::fs::statat(dir, node.name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Prior::Nothing,
        Err(_) => return replace(None),
        Ok(st) => st,
    };
    let mode = job.dir.overwrite(sh.overwrite);
    if left_alone(mode, node, &seen) {
        return Prior::Keep;
    }
    if !is_regular(&seen) {
        let dir = FileType::from_raw_mode(seen.st_mode) == FileType::Directory;
        return Prior::Replace { old: None, dir };
    }
    // Opened without following or blocking, and checked to be the file seen.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let Ok(fd) = open_beneath(dir, &node.name, flags, Mode::empty()) else {
        return replace(None);
    };
    match rustix::fs::fstat(&fd) {
        Ok(st) if is_regular(&st) && (st.st_dev, st.st_ino) == (seen.st_dev, seen.st_ino) => {
            judge(sh, node, File::from(fd), &st)
        }
        _ => replace(None),
    }
}

fn replace(old: Option<(File, u64)>) -> Prior {
    Prior::Replace { old, dir: false }
}

/// A regular file at the place: the snapshot's file already, or to be replaced (its matching
/// pieces reused). It can stay only with no more links than the node; a file whose metadata
/// would grant privileges (setuid/setgid, a capability) only with the node's owner already.
/// Its content must be the node's (every blob's keyed hash, and the size) — unless the mode is
/// `if-changed`, which trusts the size and mtime (but not for privileged files or with
/// `--verify`).
fn judge(sh: &Shared<'_>, node: &Node, file: File, st: &Stat) -> Prior {
    let size = st.st_size as u64;
    let privileged = sh.policy.grants_privilege(node);
    let mut keepable = st.st_nlink <= node.links.max(1);
    if privileged {
        keepable &= (st.st_uid, st.st_gid) == (node.uid, node.gid);
    }
    let same_times = size == node.size
        && (st.st_mtime, st.st_mtime_nsec as i64) == (node.mtime.secs, i64::from(node.mtime.nanos));
    if keepable && same_times && sh.overwrite == Overwrite::IfChanged && !privileged && !sh.verify {
        return Prior::Correct(file);
    }
    let Ok(lens) = index_lengths(sh, node) else {
        return replace(None);
    };
    if keepable && verify(sh, &file, node, &lens).is_ok() {
        return Prior::Correct(file);
    }
    replace(Some((file, size)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_format::tree::{NodeKind, Timestamp};

    fn node(secs: i64, nanos: u32) -> Node {
        let t = Timestamp { secs, nanos };
        Node {
            mode: 0o644,
            mtime: t,
            atime: t,
            ctime: t,
            links: 1,
            ..Node::bare(b"f", NodeKind::File)
        }
    }

    fn seen(secs: i64, nanos: i64) -> Stat {
        // SAFETY: `Stat` is a plain C struct; all-zero is a valid value.
        let mut st: Stat = unsafe { std::mem::zeroed() };
        st.st_mtime = secs;
        st.st_mtime_nsec = nanos as _;
        st
    }

    /// `never` leaves everything, `if-newer` what is at least as new (to the nanosecond),
    /// `always` and `if-changed` nothing.
    #[test]
    fn which_existing_entries_are_left_alone() {
        let n = node(1_000, 500);
        let cases = [
            (Overwrite::Never, seen(0, 0), true),
            (Overwrite::IfNewer, seen(1_000, 500), true),
            (Overwrite::IfNewer, seen(1_000, 501), true),
            (Overwrite::IfNewer, seen(1_000, 499), false),
            (Overwrite::IfNewer, seen(999, 999_999_999), false),
            (Overwrite::Always, seen(5_000, 0), false),
            (Overwrite::IfChanged, seen(5_000, 0), false),
        ];
        for (mode, st, want) in cases {
            assert_eq!(left_alone(mode, &n, &st), want, "{mode:?} {}", st.st_mtime);
        }
        let parsed: Vec<Overwrite> = ["always", "if-changed", "if-newer", "never"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let want = [
            Overwrite::Always,
            Overwrite::IfChanged,
            Overwrite::IfNewer,
            Overwrite::Never,
        ];
        assert_eq!(parsed, want);
        assert!("sometimes".parse::<Overwrite>().is_err());
    }
}
