//! `tresor mount` through a real FUSE mount: the snapshots as directories, contents and
//! metadata compared with the source, read-only, Ctrl-C unmounts, put-only keys refused,
//! damaged data gives EIO naming the file while the rest stays readable.

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tresor_testkit::prelude::*;
use tresor_testkit::require::{Need, require, require_all};

/// Whether FUSE can be used here at all: without it the tests say so and pass on a developer
/// machine, and fail in CI (`tresor_testkit::require`).
pub(crate) fn fuse_available() -> bool {
    require(Need::Fuse)
}

/// Mounts at `dir`, topmost last, as "TYPE SOURCE" ("fuse tresor", "tmpfs tmpfs", …).
fn mounts_at(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .filter_map(|l| {
            let mut after = l.split(" - ").nth(1)?.split(' ');
            Some(format!("{} {}", after.next()?, after.next()?))
        })
        .collect()
}

/// Mount a tmpfs on `dir` (root only).
fn mount_tmpfs(dir: &Path) {
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "mount -t tmpfs {dir:?}");
}

/// A new repository for a mount test, or `None` (the test passes) where FUSE is missing.
fn fuse_env() -> Option<Env> {
    fuse_available().then(|| {
        let env = Env::new();
        env.init();
        env
    })
}

fn is_mounted(dir: &Path) -> bool {
    !mounts_at(dir).is_empty()
}

fn is_tresor_mounted(dir: &Path) -> bool {
    mounts_at(dir).iter().any(|t| t == "fuse tresor")
}

/// A running `tresor mount`; unmounted (lazily, by force) if the test fails half-way.
pub(crate) struct Mount {
    child: Option<Child>,
    dir: PathBuf,
}

impl Mount {
    fn start(env: &Env, dir: &Path, extra: &[&str]) -> Mount {
        Mount::start_with(env.cmd(), dir, extra)
    }

    /// `cmd` (`tresor` with its environment) `mount DIR EXTRA…`, once mounted.
    pub(crate) fn start_with(mut cmd: std::process::Command, dir: &Path, extra: &[&str]) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let child = cmd
            .arg("mount")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while !is_tresor_mounted(dir) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                let out = m.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "tresor mount exited with {status}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not mounted after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Send SIGINT (Ctrl-C) to the command.
    fn signal(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(self.child.as_ref().unwrap()),
            rustix::process::Signal::INT,
        )
        .unwrap();
    }

    /// Ctrl-C the command; returns its exit code and stderr once it has ended.
    pub(crate) fn interrupt(mut self) -> (Option<i32>, String) {
        self.signal();
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tresor mount still running 30 s after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status();
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Holes are not shown through the mount (sizes are, and holes read as zeros).
fn without_sparse(
    mut s: std::collections::BTreeMap<Vec<u8>, Entry>,
) -> std::collections::BTreeMap<Vec<u8>, Entry> {
    for e in s.values_mut() {
        e.sparse = false;
    }
    s
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn mounted_snapshots_match_the_source_field_by_field() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let Some(env) = fuse_env() else { return };
    let src = make_tree(env.dir.path());
    let first = scan(&src, is_root());
    env.backup_json(&[&src], &["--tag", "daily"], 0);
    let old_small = std::fs::read(src.join("small.txt")).unwrap();
    // Snapshot times have one-second resolution in the directory names: make them differ.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(src.join("dir/sub/deeper/leaf"), b"changed leaf").unwrap();
    let second = scan(&src, is_root());
    env.backup_json(&[&src], &["--tag", "weekly"], 0);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2);

    let mnt = env.path("mnt");
    let m = Mount::start(&env, &mnt, &[]);
    assert_eq!(names(&mnt), ["hosts", "ids", "snapshots", "tags"]);
    let snaps = names(&mnt.join("snapshots"));
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    assert_eq!(snaps[2], "latest");
    assert_eq!(
        std::fs::read_link(mnt.join("snapshots/latest")).unwrap(),
        Path::new(&snaps[1]),
        "latest points at the newer snapshot"
    );
    let short: Vec<String> = ids.iter().map(|i| i[..8].to_string()).collect();
    let mut sorted = short.clone();
    sorted.sort();
    assert_eq!(names(&mnt.join("ids")), sorted);
    assert_eq!(names(&mnt.join("tags")), ["daily", "weekly"]);
    assert_eq!(
        names(&mnt.join("tags/daily")),
        [snaps[0].as_str(), "latest"]
    );
    let host = names(&mnt.join("hosts"));
    assert_eq!(host.len(), 1);

    // Every entry, content and metadata field, as in the source at each backup.
    let inside = |root: PathBuf| root.join(src.strip_prefix("/").unwrap());
    let shown_new = scan(&inside(mnt.join("snapshots/latest")), is_root());
    assert_same(&without_sparse(second), &without_sparse(shown_new));
    let shown_old = scan(&inside(mnt.join("ids").join(&short[0])), is_root());
    assert_same(&without_sparse(first.clone()), &without_sparse(shown_old));
    let by_host = scan(
        &inside(mnt.join("hosts").join(&host[0]).join(&snaps[0])),
        is_root(),
    );
    assert_same(&without_sparse(first), &without_sparse(by_host));
    assert_eq!(
        std::fs::read(inside(mnt.join("ids").join(&short[0])).join("dir/sub/deeper/leaf")).unwrap(),
        b"leaf"
    );
    assert_eq!(
        std::fs::read(inside(mnt.join("snapshots/latest")).join("small.txt")).unwrap(),
        old_small
    );

    // Reads at odd offsets across blob boundaries of the 9 MiB file.
    let big = std::fs::read(src.join("dir/big.bin")).unwrap();
    let f = std::fs::File::open(inside(mnt.join("snapshots/latest")).join("dir/big.bin")).unwrap();
    for (off, len) in [
        (0usize, 1usize),
        (1_048_573, 300_000),
        (4_000_001, 2_500_000),
        (big.len() - 10, 100),
    ] {
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off as u64).unwrap();
        let want = &big[off..(off + len).min(big.len())];
        assert_eq!(&buf[..n], want, "read of {len} bytes at {off}");
    }
    // Holes read as zeros.
    let sparse = std::fs::read(inside(mnt.join("snapshots/latest")).join("sparse")).unwrap();
    assert_eq!(sparse, std::fs::read(src.join("sparse")).unwrap());

    // Read-only.
    let err = std::fs::write(inside(mnt.join("snapshots/latest")).join("new"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_erofs()), "{err}");
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(inside(mnt.join("snapshots/latest")).join("small.txt"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_erofs()), "{err}");

    // Ctrl-C while a file is open: busy, so it keeps serving and says so.
    m.signal();
    std::thread::sleep(Duration::from_millis(500));
    assert!(is_mounted(&mnt), "still mounted while a file is open");
    let mut buf = [0u8; 4];
    f.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, big[..4]);
    drop(f);
    // The second Ctrl-C detaches it and ends the command.
    let (code, stderr) = m.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is busy"), "{stderr}");
    assert!(!is_mounted(&mnt), "unmounted after Ctrl-C");
    assert!(names(&mnt).is_empty());
}

fn libc_erofs() -> i32 {
    rustix::io::Errno::ROFS.raw_os_error()
}

#[test]
fn put_only_key_cannot_mount() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let Some(env) = fuse_env() else { return };
    std::fs::write(env.path("src"), b"data").unwrap();
    env.ok(&["backup", env.path("src").to_str().unwrap()]);
    let pw = env.password_file("host-password", "host password");
    env.ok(&[
        "key",
        "add",
        "--put-only",
        "--host",
        "vps",
        "--new-password-file",
        pw.to_str().unwrap(),
    ]);
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .env("TRESOR_PASSWORD_FILE", &pw)
        .arg("mount")
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(13));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("can write but not read"), "{err}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn damaged_data_reads_as_eio_and_names_the_file() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let Some(env) = fuse_env() else { return };
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("victim"), pseudo_random(7, 3 << 20)).unwrap();
    env.backup_json(&[&src], &[], 0);
    // Flip a byte in the middle of every data pack (tree packs stay intact).
    let mut flipped = 0;
    for d in std::fs::read_dir(env.repo.join("data")).unwrap() {
        for p in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = p.unwrap().path();
            let o = env.ok(&["cat", "pack", p.file_name().unwrap().to_str().unwrap()]);
            let blobs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            if blobs[0]["blob_type"] == "Data" {
                let at = blobs[0]["offset"].as_u64().unwrap() + 100;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .read(true)
                    .open(&p)
                    .unwrap();
                let mut b = [0u8];
                f.read_at(&mut b, at).unwrap();
                b[0] ^= 0xff;
                f.write_at(&b, at).unwrap();
                flipped += 1;
            }
        }
    }
    assert!(flipped >= 1);
    let mnt = env.path("mnt");
    let m = Mount::start(&env, &mnt, &[]);
    let dir = mnt
        .join("snapshots/latest")
        .join(src.strip_prefix("/").unwrap());
    assert_eq!(names(&dir), ["victim"], "directories still list");
    assert_eq!(
        std::fs::metadata(dir.join("victim")).unwrap().len(),
        3 << 20
    );
    let err = std::fs::read(dir.join("victim")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::IO.raw_os_error()),
        "{err}"
    );
    let (code, stderr) = m.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    // `latest` is a symlink: the kernel asks for the file under the snapshot's own name.
    let path = format!("{}/victim: blob", src.display());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(!errors.is_empty(), "{stderr}");
    let mut unique = errors.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        errors.len(),
        "each problem said once: {stderr}"
    );
    for e in errors {
        assert!(
            e.contains("repository damaged: /snapshots/2") && e.contains(&path),
            "the damage names the file's path in the mount: {e}"
        );
        assert!(e.contains("blob"), "and the blob: {e}");
        assert_eq!(e.matches("repository damaged").count(), 1, "{e}");
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn acls_are_enforced_and_ending_leaves_what_is_mounted_below() {
    let _serial = exclusive(); // see tresor_testkit::serial
    // Root for tmpfs, setfacl and other uids.
    if !require_all(&[Need::Fuse, Need::Root]) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    env.init();
    // Other users must be able to walk to the file (the test dir is 0700).
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.join("f"), b"topsecret").unwrap();
    std::fs::set_permissions(src.join("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // An ACL (user, user:1234 with no rights, group, mask, other) — as `setfacl -m u:1234:---`.
    let acl = posix_acl(&[
        (0x01, 6, u32::MAX),
        (0x02, 0, 1234),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 4, u32::MAX),
    ]);
    xattr::set(src.join("f"), "system.posix_acl_access", &acl).unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    // The mount point is itself a mount (a tmpfs with a file): it must survive.
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    mount_tmpfs(&mnt);
    std::fs::write(mnt.join("precious"), b"below").unwrap();
    let m = Mount::start(&env, &mnt, &["--allow-other"]);
    let f = mnt
        .join("snapshots/latest")
        .join(src.strip_prefix("/").unwrap())
        .join("f");
    let cat_as = |uid: u32| {
        std::process::Command::new("cat")
            .arg(&f)
            .uid(uid)
            .gid(uid)
            .output()
            .unwrap()
    };
    let denied = cat_as(1234);
    assert!(!denied.status.success(), "the ACL denies uid 1234");
    let why = String::from_utf8_lossy(&denied.stderr);
    assert!(why.contains("Permission denied"), "{why}");
    let other = cat_as(1235);
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert_eq!(other.stdout, b"topsecret");
    // Something mounted over ours: Ctrl-C must not unmount it.
    mount_tmpfs(&mnt);
    std::fs::write(mnt.join("above"), b"above").unwrap();
    m.signal();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        mounts_at(&mnt),
        ["tmpfs tmpfs", "fuse tresor", "tmpfs tmpfs"],
        "all three still mounted"
    );
    assert_eq!(std::fs::read(mnt.join("above")).unwrap(), b"above");
    std::process::Command::new("umount")
        .arg(&mnt)
        .status()
        .unwrap();
    let (code, stderr) = m.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("something else is mounted over"),
        "{stderr}"
    );
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(
        mounts_at(&mnt),
        ["tmpfs tmpfs"],
        "the tmpfs below is still mounted"
    );
    assert_eq!(std::fs::read(mnt.join("precious")).unwrap(), b"below");
    std::process::Command::new("umount")
        .arg(&mnt)
        .status()
        .unwrap();
}

#[test]
fn mount_points_that_cannot_work_are_refused() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let env = Env::new();
    env.init();
    let file = env.path("file");
    std::fs::write(&file, b"x").unwrap();
    for (dir, says) in [
        (env.path("missing"), "no such directory"),
        (file, "not a directory"),
        (env.repo.clone(), "the repository"),
        (env.dir.path().to_path_buf(), "the repository"),
    ] {
        let o = env.run(&["mount", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{dir:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{dir:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
