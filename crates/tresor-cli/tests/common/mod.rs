//! Shared helpers for the CLI tests: running tresor, generating trees, comparing trees.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the shared helpers"
)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSWORD: &str = "correct horse battery staple";

/// A test repository in a temp dir.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        Env { dir, repo }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tresor"));
        c.env("TRESOR_REPOSITORY", &self.repo)
            .env("TRESOR_PASSWORD", PASSWORD)
            .env_remove("TRESOR_PASSWORD_FILE")
            .env_remove("TRESOR_PASSWORD_COMMAND");
        c
    }

    /// Run tresor with args; returns the output (any exit code).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run and require exit code `code`.
    pub fn run_code(&self, args: &[&str], code: i32) -> Output {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "tresor {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        self.run_code(args, 0)
    }

    pub fn init(&self) {
        self.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    }

    /// A password file `name` in the test dir (mode 0600, as tresor requires) holding `content`.
    pub fn password_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Full ids of the snapshots (`snapshots --json`), oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        let o = self.ok(&["snapshots", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `backup --json` of paths; returns the summary.
    pub fn backup_json(&self, paths: &[&Path], extra: &[&str], code: i32) -> serde_json::Value {
        let mut args: Vec<String> = vec!["backup".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = self.run_code(&a, code);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("backup json: {e}: {}", String::from_utf8_lossy(&o.stdout)))
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn write(path: &Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
}

/// Deterministic pseudo-random bytes (splitmix64).
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

fn set_times(path: &Path, secs: i64, nanos: i64) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
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

/// Build a tree holding every file type, odd names, odd modes and times, xattrs, hardlinks,
/// a sparse file and multi-chunk files. Returns its root.
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
pub fn make_tree(root: &Path) -> PathBuf {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    let t = root.join("src");
    std::fs::create_dir_all(t.join("dir/sub/deeper")).unwrap();
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
    // Odd names.
    write(&t.join(OsStr::from_bytes(b"non-utf8-\xff\xfe")), b"bytes");
    write(&t.join("new\nline"), b"newline");
    write(&t.join("-leading-dash"), b"dash");
    write(&t.join("with space and ünïcödé"), b"unicode");
    write(&t.join("n".repeat(255)), b"long name");
    write(&t.join("*glob?[chars]"), b"glob");
    // Symlinks: relative, absolute, dangling, to a dir.
    std::os::unix::fs::symlink("small.txt", t.join("link-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", t.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", t.join("link-dangling")).unwrap();
    std::os::unix::fs::symlink("dir", t.join("link-dir")).unwrap();
    // Special files.
    mknodat(
        CWD,
        t.join("fifo"),
        FileType::Fifo,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .unwrap();
    mknodat(
        CWD,
        t.join("socket"),
        FileType::Socket,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    if is_root() {
        mknodat(
            CWD,
            t.join("chardev"),
            FileType::CharacterDevice,
            Mode::from_bits_truncate(0o600),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        mknodat(
            CWD,
            t.join("blockdev"),
            FileType::BlockDevice,
            Mode::from_bits_truncate(0o600),
            rustix::fs::makedev(7, 200),
        )
        .unwrap();
    }
    // Hardlinks (three names, two directories).
    write(&t.join("hard-a"), b"shared inode content");
    std::fs::hard_link(t.join("hard-a"), t.join("hard-b")).unwrap();
    std::fs::hard_link(t.join("hard-a"), t.join("dir/hard-c")).unwrap();
    // Sparse file: 8 MiB hole, data, 4 MiB hole at the end.
    {
        let f = std::fs::File::create(t.join("sparse")).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"data in the middle", 8 << 20).unwrap();
        f.set_len(12 << 20).unwrap();
    }
    // Modes.
    write(&t.join("setuid"), b"suid");
    std::fs::set_permissions(t.join("setuid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    write(&t.join("setgid"), b"sgid");
    std::fs::set_permissions(t.join("setgid"), std::fs::Permissions::from_mode(0o2750)).unwrap();
    std::fs::create_dir(t.join("sticky")).unwrap();
    std::fs::set_permissions(t.join("sticky"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    write(&t.join("readonly-file"), b"ro");
    std::fs::set_permissions(
        t.join("readonly-file"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    // Xattrs.
    xattr::set(t.join("small.txt"), "user.comment", b"an xattr value").unwrap();
    xattr::set(t.join("dir"), "user.dirattr", b"\x00\x01binary").unwrap();
    // Ownership (root only).
    if is_root() {
        rustix::fs::chownat(
            CWD,
            t.join("small.txt"),
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        rustix::fs::chownat(
            CWD,
            t.join("link-rel"),
            Some(rustix::fs::Uid::from_raw(4321)),
            None,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
    if is_root() {
        // A file capability (cap_net_raw+ep, VFS_CAP_REVISION_2) and a POSIX ACL; both must
        // survive the restore's chown.
        write(&t.join("capable"), b"has a capability");
        rustix::fs::chownat(
            CWD,
            t.join("capable"),
            Some(rustix::fs::Uid::from_raw(1234)),
            None,
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
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
    // Times: far past, far future, nanoseconds.
    set_times(&t.join("empty"), -2_208_988_800, 123_456_789); // 1900-01-01
    set_times(&t.join("-leading-dash"), 16_725_225_600, 999_999_999); // 2500-01-01
    set_times(&t.join("link-rel"), 1_000_000_000, 5);
    // A read-only directory with content (restore must still fill it).
    std::fs::create_dir(t.join("ro-dir")).unwrap();
    write(&t.join("ro-dir/inside"), b"inside a read-only dir");
    std::fs::set_permissions(t.join("ro-dir"), std::fs::Permissions::from_mode(0o555)).unwrap();
    set_times(&t.join("dir/sub"), 1_234_567_890, 42);
    t
}

/// Everything compared about one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub rdev: u64,
    pub target: Option<Vec<u8>>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub content_hash: Option<String>,
    pub sparse: bool,
    /// Index of the hardlink group (by first path), if nlink > 1.
    pub link_group: Option<Vec<u8>>,
}

/// Metadata (first, so reading contents cannot change it) and contents of every entry below `root`.
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
pub fn scan(root: &Path, with_owner: bool) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            paths.push((p, m));
        }
    }
    paths.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    for (p, m) in paths {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_file() {
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
        };
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = if ft.is_symlink() {
            Vec::new()
        } else {
            xattr::list(&p)
                .unwrap()
                .map(|n| {
                    (
                        n.as_bytes().to_vec(),
                        xattr::get(&p, &n).unwrap().unwrap_or_default(),
                    )
                })
                .collect()
        };
        xattrs.sort();
        let link_group = (ft.is_file() && m.nlink() > 1)
            .then(|| inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone());
        out.insert(
            rel,
            Entry {
                kind: kind.into(),
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
                target: ft.is_symlink().then(|| {
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                }),
                xattrs,
                content_hash: None,
                sparse: ft.is_file() && m.blocks() * 512 < m.size(),
                link_group,
            },
        );
    }
    for (rel, e) in out.iter_mut() {
        if e.kind == "file" {
            let p = root.join(OsStr::from_bytes(rel));
            e.content_hash = Some(
                blake3::hash(&std::fs::read(&p).unwrap())
                    .to_hex()
                    .to_string(),
            );
        }
    }
    out
}

/// Assert two scans are equal, entry by entry, field by field.
pub fn assert_same(a: &BTreeMap<Vec<u8>, Entry>, b: &BTreeMap<Vec<u8>, Entry>) {
    let ka: Vec<_> = a
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let kb: Vec<_> = b
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(ka, kb, "same set of paths");
    for (k, ea) in a {
        assert_eq!(ea, &b[k], "entry {}", String::from_utf8_lossy(k));
    }
}
