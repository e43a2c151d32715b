//! What restore could not reproduce: every entry's metadata is read back after it was applied
//! (`fstat` on the entry's own descriptor, `lstat` for symlinks) and compared with the snapshot;
//! attributes, owners and entries the target refuses are recorded the same way. Each
//! difference names the path, what differs, the value wanted and the value got.

use rustix::fs::Stat;
use rustix::io::Errno;
use std::sync::Mutex;
use tresor_format::tree::{Node, NodeKind, Timestamp};

/// At most this many differences are kept with their paths ([`RestoreResult::differences`]);
/// the counts stay exact beyond it.
///
/// [`RestoreResult::differences`]: super::RestoreResult::differences
pub const MAX_LISTED: usize = 10_000;

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiffKind {
    /// Owner (uid:gid): not root, or the target refused `chown`.
    Owner,
    /// Permission bits (`0o7777`) other than those applied.
    Mode,
    /// Modification time (e.g. outside the file system's range, or coarser).
    Mtime,
    /// Access time.
    Atime,
    /// An extended attribute (or ACL) the target refused.
    Xattr,
    /// An entry not created: a device node without root, a fifo, socket or symlink the target
    /// refused.
    Entry,
}

impl DiffKind {
    /// The name used in output and JSON: `owner`, `mode`, `mtime`, `atime`, `xattr`, `entry`.
    pub fn name(self) -> &'static str {
        match self {
            DiffKind::Owner => "owner",
            DiffKind::Mode => "mode",
            DiffKind::Mtime => "mtime",
            DiffKind::Atime => "atime",
            DiffKind::Xattr => "xattr",
            DiffKind::Entry => "entry",
        }
    }
}

/// One thing restore could not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Path in the target.
    pub path: String,
    /// What differs.
    pub what: DiffKind,
    /// The snapshot's value, as text (times RFC 3339 UTC, modes octal, owners `uid:gid`).
    pub wanted: String,
    /// What the target has (or why it has nothing).
    pub got: String,
}

/// Counts of differences by kind (exact, also beyond [`MAX_LISTED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DifferenceCounts {
    /// Entries whose owner is not the snapshot's (not root, or `chown` refused).
    pub owner: u64,
    /// Entries whose permission bits differ from those applied.
    pub mode: u64,
    /// Entries whose modification time differs.
    pub mtime: u64,
    /// Entries whose access time differs.
    pub atime: u64,
    /// Extended attributes refused.
    pub xattr: u64,
    /// Entries not created.
    pub entry: u64,
}

impl DifferenceCounts {
    /// All differences.
    pub fn total(&self) -> u64 {
        self.owner + self.mode + self.mtime + self.atime + self.xattr + self.entry
    }

    fn bump(&mut self, what: DiffKind) {
        let c = match what {
            DiffKind::Owner => &mut self.owner,
            DiffKind::Mode => &mut self.mode,
            DiffKind::Mtime => &mut self.mtime,
            DiffKind::Atime => &mut self.atime,
            DiffKind::Xattr => &mut self.xattr,
            DiffKind::Entry => &mut self.entry,
        };
        *c += 1;
    }
}

/// The differences of one restore, collected by the workers.
#[derive(Default)]
pub(super) struct Diffs {
    inner: Mutex<(Vec<Difference>, DifferenceCounts)>,
}

impl Diffs {
    /// Record a difference; `listed`: keep it with its path (owners of a non-root restore are
    /// only counted).
    pub fn add(&self, path: String, what: DiffKind, wanted: String, got: String, listed: bool) {
        let mut g = self.inner.lock().expect("differences lock");
        g.1.bump(what);
        if listed && g.0.len() < MAX_LISTED {
            g.0.push(Difference {
                path,
                what,
                wanted,
                got,
            });
        }
    }

    /// The listed differences (sorted by path, then kind) and the counts.
    pub fn finish(self) -> (Vec<Difference>, DifferenceCounts) {
        let (mut list, counts) = self.inner.into_inner().expect("differences lock");
        list.sort_by(|a, b| (&a.path, a.what.name()).cmp(&(&b.path, b.what.name())));
        (list, counts)
    }
}

/// Whether a failed metadata call means "the target cannot hold this" (recorded as a
/// difference) rather than a local error: not permitted (also a uid outside a user namespace:
/// `EINVAL`), not supported, too large, no room for attributes, a value out of range.
pub(super) fn refused(e: Errno) -> bool {
    matches!(
        e,
        Errno::PERM
            | Errno::OPNOTSUPP
            | Errno::TOOBIG
            | Errno::NOSPC
            | Errno::RANGE
            | Errno::INVAL
            | Errno::OVERFLOW
    )
}

/// Whether a failed `mknodat`/`symlinkat` means the target cannot hold that type of entry (a
/// device node without the privilege, a file system without fifos or symlinks).
pub(super) fn refused_type(e: Errno) -> bool {
    matches!(e, Errno::PERM | Errno::OPNOTSUPP)
}

/// A time for messages: RFC 3339 in UTC, or seconds since the epoch when out of that range.
pub fn show_time(secs: i64, nanos: u32) -> String {
    match jiff::Timestamp::new(secs, nanos as i32) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{secs}.{nanos:09} s since the epoch"),
    }
}

/// A permission mode for messages: four octal digits.
pub fn show_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// What the read-back of an entry is compared against.
pub(super) struct Wanted<'n> {
    pub node: &'n Node,
    /// The permission bits applied (after the privilege policy); `None` for symlinks.
    pub mode: Option<u32>,
    /// Compare the owner (restore was asked to restore owners).
    pub owner: bool,
}

/// The differences between what was wanted and the entry's `st`, as (kind, wanted, got).
pub(super) fn compare(w: &Wanted<'_>, st: &Stat) -> Vec<(DiffKind, String, String)> {
    let mut out = Vec::new();
    let node = w.node;
    if w.owner && (st.st_uid, st.st_gid) != (node.uid, node.gid) {
        out.push((
            DiffKind::Owner,
            format!("{}:{}", node.uid, node.gid),
            format!("{}:{}", st.st_uid, st.st_gid),
        ));
    }
    if let Some(mode) = w.mode
        && st.st_mode & 0o7777 != mode & 0o7777
    {
        out.push((DiffKind::Mode, show_mode(mode), show_mode(st.st_mode)));
    }
    let times = [
        (DiffKind::Mtime, node.mtime, st.st_mtime, st.st_mtime_nsec),
        (DiffKind::Atime, node.atime, st.st_atime, st.st_atime_nsec),
    ];
    for (what, t, secs, nsec) in times {
        if (t.secs, i64::from(t.nanos)) != (secs, nsec as i64) {
            out.push((what, show_ts(t), show_time(secs, nsec as u32)));
        }
    }
    out
}

fn show_ts(t: Timestamp) -> String {
    show_time(t.secs, t.nanos)
}

/// How an entry the restore did not create is described: `character device 1:3`, `fifo` …
pub(super) fn describe(node: &Node) -> String {
    let dev = || {
        let (maj, min) = (rustix::fs::major(node.rdev), rustix::fs::minor(node.rdev));
        format!("{maj}:{min}")
    };
    match node.kind {
        NodeKind::CharDevice => format!("character device {}", dev()),
        NodeKind::BlockDevice => format!("block device {}", dev()),
        NodeKind::Fifo => "fifo".into(),
        NodeKind::Socket => "socket".into(),
        NodeKind::Symlink => format!(
            "symlink to {}",
            tresor_format::tree::display_bytes(&node.target)
        ),
        NodeKind::File => "file".into(),
        NodeKind::Dir => "directory".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node {
            name: b"f".to_vec(),
            kind: NodeKind::File,
            mode: 0o4755,
            uid: 1234,
            gid: 5678,
            user: None,
            group: None,
            mtime: Timestamp {
                secs: -5_364_662_400,
                nanos: 500_000_000,
            },
            atime: Timestamp {
                secs: 1_000_000_000,
                nanos: 7,
            },
            ctime: Timestamp::default(),
            size: 0,
            device: 0,
            inode: 0,
            links: 1,
            rdev: rustix::fs::makedev(1, 3),
            target: vec![],
            xattrs: vec![],
            sparse: false,
            content: vec![],
            subtree: None,
        }
    }

    fn stat(uid: u32, gid: u32, mode: u32, mtime: (i64, i64), atime: (i64, i64)) -> Stat {
        // SAFETY: `Stat` is a plain C struct; all-zero is a valid value.
        let mut st: Stat = unsafe { std::mem::zeroed() };
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mode = 0o100000 | mode;
        st.st_mtime = mtime.0;
        st.st_mtime_nsec = mtime.1 as _;
        st.st_atime = atime.0;
        st.st_atime_nsec = atime.1 as _;
        st
    }

    /// A file restored onto a file system that clamps 1800 to 1901-12-13T20:45:52Z without
    /// nanoseconds, drops the setuid bit and keeps root as owner: every difference, with the
    /// values wanted and got.
    #[test]
    fn read_back_differences_name_wanted_and_got() {
        let n = node();
        let w = Wanted {
            node: &n,
            mode: Some(0o4755),
            owner: true,
        };
        let st = stat(0, 0, 0o755, (-2_147_483_648, 0), (1_000_000_000, 7));
        let d = compare(&w, &st);
        let want = vec![
            (DiffKind::Owner, "1234:5678".to_string(), "0:0".to_string()),
            (DiffKind::Mode, "4755".into(), "0755".into()),
            (
                DiffKind::Mtime,
                "1800-01-01T00:00:00.5Z".into(),
                "1901-12-13T20:45:52Z".into(),
            ),
        ];
        assert_eq!(d, want);
        // Nothing differs: nothing reported; owners and symlink modes only when asked.
        let same = stat(
            1234,
            5678,
            0o4755,
            (-5_364_662_400, 500_000_000),
            (1_000_000_000, 7),
        );
        assert_eq!(compare(&w, &same), vec![]);
        let w = Wanted {
            node: &n,
            mode: None,
            owner: false,
        };
        assert_eq!(
            compare(
                &w,
                &stat(0, 0, 0, (-5_364_662_400, 500_000_000), (1_000_000_000, 7))
            ),
            vec![]
        );
        assert_eq!(describe(&n.clone()), "file");
        let dev = Node {
            kind: NodeKind::CharDevice,
            ..n
        };
        assert_eq!(describe(&dev), "character device 1:3");
        assert_eq!(
            show_time(i64::MAX, 0),
            "9223372036854775807.000000000 s since the epoch"
        );
    }

    #[test]
    fn the_list_is_bounded_and_the_counts_exact() {
        let d = Diffs::default();
        for i in 0..MAX_LISTED + 5 {
            d.add(
                format!("p{i}"),
                DiffKind::Mtime,
                "a".into(),
                "b".into(),
                true,
            );
        }
        d.add(
            "z".into(),
            DiffKind::Owner,
            "1:1".into(),
            "0:0".into(),
            false,
        );
        let (list, counts) = d.finish();
        assert_eq!(list.len(), MAX_LISTED);
        assert_eq!(counts.mtime, MAX_LISTED as u64 + 5);
        assert_eq!(counts.owner, 1);
        assert_eq!(counts.total(), MAX_LISTED as u64 + 6);
    }
}
