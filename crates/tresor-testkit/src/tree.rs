//! Trees to back up and their comparison: [`make_tree`] builds a tree holding every file type,
//! odd names, modes, times, xattrs, hard links and a sparse file; [`scan`] reads a tree's
//! metadata and contents; [`assert_same`] compares two scans entry by entry, field by field.

use crate::require::is_root;
use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, Permissions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create (or truncate) the file `path` holding `data`.
pub fn write(path: &Path, data: &[u8]) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
}

/// Deterministic pseudo-random bytes (splitmix64): `len` bytes that depend on `seed` only.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Set the access and modification times of `path` (not following a symlink) to `secs` seconds
/// and `nanos` nanoseconds after the epoch.
pub fn set_times(path: &Path, secs: i64, nanos: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// The `system.posix_acl_access` value (Linux xattr format, version 2) of ACL entries
/// `(tag, permissions, id)`: tags 0x01 user-obj, 0x02 user, 0x04 group-obj, 0x08 group,
/// 0x10 mask, 0x20 other; id `u32::MAX` where none applies.
pub fn posix_acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    acl
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>, flags: AtFlags) {
    let (uid, gid) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
    rustix::fs::chownat(CWD, path, uid, gid, flags).unwrap();
}

fn mknod(path: &Path, kind: FileType, mode: u32, dev: u64) {
    rustix::fs::mknodat(CWD, path, kind, Mode::from_bits_truncate(mode), dev).unwrap();
}

/// Build a tree at `root/src` holding every file type, odd names, odd modes and times,
/// xattrs, hardlinks, a sparse file and multi-chunk files; as root also device nodes, owners,
/// a file capability and a POSIX ACL. Returns its root.
pub fn make_tree(root: &Path) -> PathBuf {
    let t = root.join("src");
    fs::create_dir_all(t.join("dir/sub/deeper")).unwrap();
    files_and_names(&t);
    links_and_specials(&t);
    hardlinks_sparse_and_modes(&t);
    xattrs_and_owners(&t);
    times(&t);
    t
}

/// Plain files (empty, small, multi-chunk, compressible) and files with odd names.
fn files_and_names(t: &Path) {
    write(&t.join("empty"), b"");
    write(&t.join("small.txt"), b"hello tresor\n");
    write(
        &t.join("dir/big.bin"),
        &pseudo_random(1, 9 * 1024 * 1024 + 123),
    );
    let mut text = Vec::new();
    for i in 0..200_000 {
        text.extend_from_slice(format!("line {i} of a compressible file\n").as_bytes());
    }
    write(&t.join("dir/text.log"), &text);
    write(&t.join("dir/sub/deeper/leaf"), b"leaf");
    write(&t.join(OsStr::from_bytes(b"non-utf8-\xff\xfe")), b"bytes");
    write(&t.join("new\nline"), b"newline");
    write(&t.join("-leading-dash"), b"dash");
    write(&t.join("with space and ünïcödé"), b"unicode");
    write(&t.join("n".repeat(255)), b"long name");
    write(&t.join("*glob?[chars]"), b"glob");
}

/// Symlinks (relative, absolute, dangling, to a directory), a FIFO, a socket, and as root a
/// character and a block device.
fn links_and_specials(t: &Path) {
    std::os::unix::fs::symlink("small.txt", t.join("link-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", t.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", t.join("link-dangling")).unwrap();
    std::os::unix::fs::symlink("dir", t.join("link-dir")).unwrap();
    mknod(&t.join("fifo"), FileType::Fifo, 0o640, 0);
    mknod(&t.join("socket"), FileType::Socket, 0o600, 0);
    if is_root() {
        let (chr, blk) = (rustix::fs::makedev(1, 3), rustix::fs::makedev(7, 200));
        mknod(&t.join("chardev"), FileType::CharacterDevice, 0o600, chr);
        mknod(&t.join("blockdev"), FileType::BlockDevice, 0o600, blk);
    }
}

/// Three names of one inode in two directories, a sparse file, setuid/setgid/sticky and
/// read-only modes.
fn hardlinks_sparse_and_modes(t: &Path) {
    write(&t.join("hard-a"), b"shared inode content");
    fs::hard_link(t.join("hard-a"), t.join("hard-b")).unwrap();
    fs::hard_link(t.join("hard-a"), t.join("dir/hard-c")).unwrap();
    // Sparse file: 8 MiB hole, data, 4 MiB hole at the end.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(t.join("sparse")).unwrap();
        f.write_all_at(b"data in the middle", 8 << 20).unwrap();
        f.set_len(12 << 20).unwrap();
    }
    write(&t.join("setuid"), b"suid");
    chmod(&t.join("setuid"), 0o4755);
    write(&t.join("setgid"), b"sgid");
    chmod(&t.join("setgid"), 0o2750);
    fs::create_dir(t.join("sticky")).unwrap();
    chmod(&t.join("sticky"), 0o1777);
    write(&t.join("readonly-file"), b"ro");
    chmod(&t.join("readonly-file"), 0o444);
}

/// User xattrs; as root owners, a file capability and a POSIX ACL (both must survive the
/// restore's chown).
fn xattrs_and_owners(t: &Path) {
    xattr::set(t.join("small.txt"), "user.comment", b"an xattr value").unwrap();
    xattr::set(t.join("dir"), "user.dirattr", b"\x00\x01binary").unwrap();
    if !is_root() {
        return;
    }
    chown(
        &t.join("small.txt"),
        Some(1234),
        Some(5678),
        AtFlags::empty(),
    );
    chown(
        &t.join("link-rel"),
        Some(4321),
        None,
        AtFlags::SYMLINK_NOFOLLOW,
    );
    // cap_net_raw+ep, VFS_CAP_REVISION_2.
    write(&t.join("capable"), b"has a capability");
    chown(&t.join("capable"), Some(1234), None, AtFlags::empty());
    let mut cap = Vec::new();
    for v in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&v.to_le_bytes());
    }
    xattr::set(t.join("capable"), "security.capability", &cap).unwrap();
    write(&t.join("acl"), b"has an ACL");
    let acl = posix_acl(&[
        (0x01, 6, u32::MAX),
        (0x02, 4, 1234),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ]);
    xattr::set(t.join("acl"), "system.posix_acl_access", &acl).unwrap();
}

/// Times far in the past and future, with nanoseconds; a read-only directory with content.
fn times(t: &Path) {
    set_times(&t.join("empty"), -2_208_988_800, 123_456_789); // 1900-01-01
    set_times(&t.join("-leading-dash"), 16_725_225_600, 999_999_999); // 2500-01-01
    set_times(&t.join("link-rel"), 1_000_000_000, 5);
    // A read-only directory with content (restore must still fill it).
    fs::create_dir(t.join("ro-dir")).unwrap();
    write(&t.join("ro-dir/inside"), b"inside a read-only dir");
    chmod(&t.join("ro-dir"), 0o555);
    set_times(&t.join("dir/sub"), 1_234_567_890, 42);
}

/// Everything compared about one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `chardev` or `blockdev`.
    pub kind: String,
    /// Permission bits with setuid, setgid and sticky (0 for symlinks).
    pub mode: u32,
    /// Owner (0 unless scanned `with_owner`).
    pub uid: u32,
    /// Group (0 unless scanned `with_owner`).
    pub gid: u32,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Device number of device nodes.
    pub rdev: u64,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
    /// Extended attributes, sorted by name (none for symlinks).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Hex BLAKE3 of a file's contents.
    pub content_hash: Option<String>,
    /// Whether a file has fewer blocks than its size needs.
    pub sparse: bool,
    /// The first path (in byte order) of the file's hardlink group, if nlink > 1.
    pub link_group: Option<Vec<u8>>,
}

/// Metadata (first, so reading contents cannot change it) and contents of every entry below
/// `root`, by path relative to it. Owners are 0 unless `with_owner`.
pub fn scan(root: &Path, with_owner: bool) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (p, m) in entries_below(root) {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let link_group = (m.is_file() && m.nlink() > 1)
            .then(|| inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone());
        let entry = Entry {
            link_group,
            ..entry_of(&p, &m, with_owner)
        };
        out.insert(rel, entry);
    }
    for (rel, e) in out.iter_mut() {
        if e.kind == "file" {
            let data = fs::read(root.join(OsStr::from_bytes(rel))).unwrap();
            e.content_hash = Some(blake3::hash(&data).to_hex().to_string());
        }
    }
    out
}

/// Every path below `root` with its metadata (not following symlinks), in byte order.
fn entries_below(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut stack = vec![root.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            paths.push((p, m));
        }
    }
    paths.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    paths
}

fn kind_name(ft: fs::FileType) -> &'static str {
    if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "chardev"
    } else {
        "blockdev"
    }
}

/// The entry of `p` from its metadata `m`, without contents and hardlink group.
fn entry_of(p: &Path, m: &fs::Metadata, with_owner: bool) -> Entry {
    let ft = m.file_type();
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = if ft.is_symlink() {
        Vec::new()
    } else {
        xattr::list(p)
            .unwrap()
            .map(|n| {
                (
                    n.as_bytes().to_vec(),
                    xattr::get(p, &n).unwrap().unwrap_or_default(),
                )
            })
            .collect()
    };
    xattrs.sort();
    Entry {
        kind: kind_name(ft).into(),
        mode: if ft.is_symlink() {
            0
        } else {
            m.mode() & 0o7777
        },
        uid: if with_owner { m.uid() } else { 0 },
        gid: if with_owner { m.gid() } else { 0 },
        size: if ft.is_dir() { 0 } else { m.size() },
        mtime: (m.mtime(), m.mtime_nsec()),
        rdev: m.rdev(),
        target: ft
            .is_symlink()
            .then(|| fs::read_link(p).unwrap().as_os_str().as_bytes().to_vec()),
        xattrs,
        content_hash: None,
        sparse: ft.is_file() && m.blocks() * 512 < m.size(),
        link_group: None,
    }
}

/// Assert two scans are equal: the same paths, and each entry field by field.
pub fn assert_same(a: &BTreeMap<Vec<u8>, Entry>, b: &BTreeMap<Vec<u8>, Entry>) {
    let names = |m: &BTreeMap<Vec<u8>, Entry>| -> Vec<String> {
        m.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    assert_eq!(names(a), names(b), "same set of paths");
    for (k, ea) in a {
        assert_eq!(ea, &b[k], "entry {}", String::from_utf8_lossy(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_depends_on_the_seed_only() {
        assert_eq!(pseudo_random(7, 100), pseudo_random(7, 100));
        assert_eq!(pseudo_random(7, 100)[..10], pseudo_random(7, 10)[..]);
        assert_ne!(pseudo_random(7, 100), pseudo_random(8, 100));
        assert_eq!(pseudo_random(1, 0), Vec::<u8>::new());
    }

    #[test]
    fn a_made_tree_scans_the_same_twice_and_a_change_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let t = make_tree(dir.path());
        let a = scan(&t, true);
        assert_same(&a, &scan(&t, true));
        assert_eq!(a[&b"hard-b"[..]].link_group, Some(b"dir/hard-c".to_vec()));
        assert_eq!(a[&b"dir/sub"[..]].mtime, (1_234_567_890, 42));
        assert_eq!(a[&b"link-rel"[..]].target, Some(b"small.txt".to_vec()));
        assert!(a[&b"sparse"[..]].sparse);
        assert_eq!(a[&b"setuid"[..]].mode, 0o4755);
        chmod(&t.join("small.txt"), 0o600);
        let b = scan(&t, true);
        let r = std::panic::catch_unwind(|| assert_same(&a, &b));
        assert!(r.is_err(), "a changed mode is a difference");
        fs::remove_file(t.join("fifo")).unwrap();
        let r = std::panic::catch_unwind(|| assert_same(&b, &scan(&t, true)));
        assert!(r.is_err(), "a missing entry is a difference");
        chmod(&t.join("ro-dir"), 0o755);
    }
}
