//! Issue 13, restore classes 2, 3, 5 and 6, on real file systems (tmpfs, ext4 and ramfs
//! mounted for the test, a user namespace, another uid):
//! * 2 — what the target cannot reproduce (times out of ext4's range, refused attributes,
//!   device nodes without root, owners) is a difference naming path, wanted and got; exit 4;
//! * 3 — setuid/setgid bits and file capabilities follow the owner: not root, `chown` refused;
//! * 5 — an existing file stays only when its content is the snapshot's; `--overwrite` modes;
//!   only differing blobs are fetched; leftovers of an interrupted restore are removed;
//! * 6 — a file whose data is damaged never appears at its name (an older version there stays
//!   as it was), every other file restores, exit 5.

use tresor_testkit::prelude::*;

use serde_json::{Value, json};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: u32 = 1234;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&o.stdout), text(&o.stderr)))
}

/// Run `cmd`, requiring success.
fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o.stderr));
}

/// Root is needed to mount; CI runs as root, so there the test must not pass by skipping.
fn root_or_skip() -> bool {
    require(Need::Root)
}

/// A file system mounted for one test, unmounted (and its image removed) when dropped.
struct Mounted {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl Mounted {
    /// `tmpfs` or `ramfs` at `dir`.
    fn memory(fs: &str, dir: PathBuf) -> Mounted {
        std::fs::create_dir_all(&dir).unwrap();
        sh(Command::new("mount").args(["-t", fs, fs]).arg(&dir));
        Mounted { dir, image: None }
    }

    /// A new 64 MiB ext4 file system (mkfs.ext4 defaults: 256-byte inodes, times 1901–2446)
    /// in a sparse image file, loop-mounted at `dir`.
    fn ext4(dir: PathBuf) -> Mounted {
        let image = dir.with_extension("img");
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(64 << 20).unwrap();
        drop(f);
        sh(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        std::fs::create_dir_all(&dir).unwrap();
        sh(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir));
        Mounted {
            dir,
            image: Some(image),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status();
        if !ok.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        if let Some(i) = &self.image {
            let _ = std::fs::remove_file(i);
        }
    }
}

fn set_mtime(p: &Path, secs: i64, nanos: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, flags).unwrap();
}

fn mtime(p: &Path) -> (i64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// 1800-01-01T00:00:00Z and 2500-01-01T00:00:00Z.
const Y1800: i64 = -5_364_662_400;
const Y2500: i64 = 16_725_225_600;

/// Every entry below `dir` whose name starts with `.tresor-restore-`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_name()
                .to_string_lossy()
                .starts_with(".tresor-restore-")
            {
                out.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// A difference as `restore --json` lists it.
fn diff(path: &Path, what: &str, wanted: &str, got: &str) -> Value {
    json!({"path": path.display().to_string(), "what": what, "wanted": wanted, "got": got})
}

/// Difference counts as `restore --json` gives them.
fn counts(owner: u64, mtime: u64, atime: u64, xattr: u64, entry: u64) -> Value {
    let total = owner + mtime + atime + xattr + entry;
    json!({"owner": owner, "mode": 0, "mtime": mtime, "atime": atime, "xattr": xattr,
        "entry": entry, "total": total})
}

// ---------------------------------------------------------------------------------------------
// Class 2: differences.

/// A source on tmpfs (which keeps any time): a file from 1800 (with half a second), one from
/// 2500, one with a 5000-byte and a 1-byte user attribute, one plain.
fn odd_source(env: &Env) -> (Mounted, PathBuf) {
    let m = Mounted::memory("tmpfs", env.path("srcfs"));
    let src = m.dir.join("src");
    std::fs::create_dir(&src).unwrap();
    for (name, content) in [("old", "old\n"), ("future", "future\n"), ("attrs", "a\n")] {
        std::fs::write(src.join(name), content).unwrap();
    }
    std::fs::write(src.join("plain"), pseudo_random(1, 100_000)).unwrap();
    xattr::set(src.join("attrs"), "user.big", &[b'x'; 5000]).unwrap();
    xattr::set(src.join("attrs"), "user.small", b"y").unwrap();
    set_mtime(&src.join("old"), Y1800, 500_000_000);
    set_mtime(&src.join("future"), Y2500, 0);
    set_mtime(&src, 1_600_000_000, 0);
    (m, src)
}

/// Restored onto ext4: the 1800 and 2500 times are clamped (1901-12-13T20:45:52Z,
/// 2446-05-10T22:38:55Z, no nanoseconds) and the 5000-byte attribute does not fit (ENOSPC);
/// each is a difference with wanted and got, in JSON and as a warning line; the exit code is
/// 4; contents and everything else are exact. (The old code exited 0 and said nothing.)
#[test]
fn times_and_attributes_ext4_cannot_hold_are_differences() {
    if !root_or_skip() {
        return;
    }
    let env = Env::new();
    env.init();
    let (_srcfs, src) = odd_source(&env);
    env.backup_json(&[&src], &[], 0);
    let ext4 = Mounted::ext4(env.path("ext4"));
    let t = ext4.dir.join("t");
    let o = env.run_code(
        &[
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
            "--json",
        ],
        4,
    );
    let r = json_of(&o);
    let d = t.join(src.strip_prefix("/").unwrap());
    let (w1800, w2500) = ("1800-01-01T00:00:00.5Z", "2500-01-01T00:00:00Z");
    let (g1901, g2446) = ("1901-12-13T20:45:52Z", "2446-05-10T22:38:55Z");
    let enospc = "refused: No space left on device (os error 28)";
    let want = json!([
        diff(&d.join("attrs"), "xattr", "user.big (5000 bytes)", enospc),
        diff(&d.join("future"), "atime", w2500, g2446),
        diff(&d.join("future"), "mtime", w2500, g2446),
        diff(&d.join("old"), "atime", w1800, g1901),
        diff(&d.join("old"), "mtime", w1800, g1901),
    ]);
    assert_eq!(r["differences"], want, "{r}");
    assert_eq!(r["difference_counts"], counts(0, 2, 2, 1, 0), "{r}");
    assert_eq!(
        (r["errors"].clone(), r["files_restored"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(mtime(&d.join("old")), (-2_147_483_648, 0));
    assert_eq!(mtime(&d.join("future")), (15_032_385_535, 0));
    assert_eq!(
        xattr::get(d.join("attrs"), "user.small").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(xattr::get(d.join("attrs"), "user.big").unwrap(), None);
    assert_eq!(
        std::fs::read(d.join("plain")).unwrap(),
        pseudo_random(1, 100_000)
    );
    assert_eq!(mtime(&d), (1_600_000_000, 0));
    // Text: exactly one warning per difference on stderr, the counts on stdout; same exit code.
    let o = env.run_code(&["restore", "latest", "--target", t.to_str().unwrap()], 4);
    assert_eq!(text(&o.stderr), warnings(&want));
    let summary =
        "restored with 5 differences: owner 0, mode 0, mtime 2, atime 2, xattr 1, entry 0";
    assert!(text(&o.stdout).contains(summary), "{}", text(&o.stdout));
}

/// The warning lines `restore` prints for `differences` (other than owners), in their order.
fn warnings(differences: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap().to_string();
    differences
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let (path, what, wanted, got) =
                (s(&d["path"]), s(&d["what"]), s(&d["wanted"]), s(&d["got"]));
            format!("warning: {path}: {what} differs: wanted {wanted}, got {got}\n")
        })
        .collect()
}

/// On ramfs, which has no extended attributes at all, both attributes are refused (ENOTSUP)
/// and named; times are kept exactly.
#[test]
fn attributes_a_file_system_without_xattrs_refuses_are_differences() {
    if !root_or_skip() {
        return;
    }
    let env = Env::new();
    env.init();
    let (_srcfs, src) = odd_source(&env);
    env.backup_json(&[&src], &[], 0);
    let ram = Mounted::memory("ramfs", env.path("ram"));
    let t = ram.dir.join("t");
    let o = env.run_code(
        &[
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
            "--json",
        ],
        4,
    );
    let r = json_of(&o);
    let d = t.join(src.strip_prefix("/").unwrap());
    let enotsup = "refused: Operation not supported (os error 95)";
    let want = json!([
        diff(&d.join("attrs"), "xattr", "user.big (5000 bytes)", enotsup),
        diff(&d.join("attrs"), "xattr", "user.small (1 bytes)", enotsup),
    ]);
    assert_eq!(r["differences"], want, "{r}");
    assert_eq!(r["difference_counts"], counts(0, 0, 0, 2, 0), "{r}");
    assert_eq!(mtime(&d.join("old")), (Y1800, 500_000_000));
    assert_eq!(mtime(&d.join("future")), (Y2500, 0));
    assert_eq!(std::fs::read(d.join("attrs")).unwrap(), b"a\n");
}

// ---------------------------------------------------------------------------------------------
// Class 3: privileges follow ownership (and class 2 for owners and device nodes).

/// A capability value (cap_net_raw+ep, VFS_CAP_REVISION_2).
fn capability() -> Vec<u8> {
    let mut cap = Vec::new();
    for v in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&v.to_le_bytes());
    }
    cap
}

fn chown(path: &Path, uid: u32) {
    let (u, g) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(uid),
    );
    let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
    rustix::fs::chownat(rustix::fs::CWD, path, Some(u), Some(g), flags).unwrap();
}

/// Root's setuid and setgid programs, a user's setuid program, root's and a user's file with a
/// capability, a character device and a fifo; everything readable by [`USER`].
fn privileged_source(env: &Env) -> PathBuf {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    let src = env.path("psrc");
    std::fs::create_dir_all(&src).unwrap();
    let file = |name: &str, uid: u32, mode: u32| {
        std::fs::write(src.join(name), format!("{name} program\n")).unwrap();
        chown(&src.join(name), uid);
        std::fs::set_permissions(src.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    file("setuid", 0, 0o4755);
    file("setgid", 0, 0o2755);
    file("setuid-user", USER, 0o4755);
    file("capable", 0, 0o755);
    file("capable-user", USER, 0o755);
    for name in ["capable", "capable-user"] {
        xattr::set(src.join(name), "security.capability", &capability()).unwrap();
    }
    let m = Mode::from_bits_truncate(0o644);
    let dev = rustix::fs::makedev(1, 3);
    mknodat(CWD, src.join("chardev"), FileType::CharacterDevice, m, dev).unwrap();
    mknodat(CWD, src.join("fifo"), FileType::Fifo, m, 0).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    src
}

/// A repository with a full key's backup of [`privileged_source`] (given to [`USER`] with
/// `for_user`).
fn privileged_scene(for_user: bool) -> Option<(Env, PathBuf)> {
    if !root_or_skip() {
        return None;
    }
    let env = Env::new();
    env.init();
    let src = privileged_source(&env);
    env.backup_json(&[&src], &[], 0);
    if for_user {
        sh(Command::new("chown")
            .arg("-R")
            .arg(format!("{USER}:{USER}"))
            .arg(&env.repo));
    }
    Some((env, src))
}

/// `tresor` run under `wrapper` (setpriv, unshare) with the test's repository.
fn wrapped(env: &Env, wrapper: &[&str], args: &[&str]) -> Output {
    let (prog, pre) = wrapper.split_first().unwrap();
    Command::new(prog)
        .args(pre)
        .arg(tresor_bin())
        .arg("--no-cache")
        .args(args)
        .env("TRESOR_REPOSITORY", &env.repo)
        .env("TRESOR_PASSWORD", PASSWORD)
        .env_remove("TRESOR_PASSWORD_FILE")
        .env_remove("TRESOR_PASSWORD_COMMAND")
        .output()
        .unwrap()
}

fn mode_owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn cap_of(p: &Path) -> Option<Vec<u8>> {
    xattr::get(p, "security.capability").unwrap()
}

/// As another user: root's setuid/setgid programs lose their bits (the copies belong to the
/// user), the user's own setuid program keeps its bit (owned as recorded); no capability is
/// written (restore did not set the owner) — each named; the device node is a difference; the
/// owners of root's entries are counted.
#[test]
fn not_root_privileges_follow_the_owner_and_differences_are_named() {
    let Some((env, src)) = privileged_scene(true) else {
        return;
    };
    let t = env.path("t");
    std::fs::create_dir(&t).unwrap();
    chown(&t, USER);
    let setpriv = ["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups"];
    let o = wrapped(
        &env,
        &setpriv,
        &[
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let r = json_of(&o);
    let d = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(mode_owner(&d.join("setuid")), (0o755, USER, USER));
    assert_eq!(mode_owner(&d.join("setgid")), (0o755, USER, USER));
    assert_eq!(mode_owner(&d.join("setuid-user")), (0o4755, USER, USER));
    assert_eq!(
        (cap_of(&d.join("capable")), cap_of(&d.join("capable-user"))),
        (None, None)
    );
    assert!(
        std::fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(!d.join("chardev").exists());
    let mut dropped: Vec<String> = serde_json::from_value(r["privileges_dropped"].clone()).unwrap();
    dropped.sort();
    let named = |n: &str| d.join(n).display().to_string();
    let want = ["capable", "capable-user", "setgid", "setuid"].map(named);
    assert_eq!(dropped, want);
    let not_root = "not created: not running as root";
    let want = json!([diff(
        &d.join("chardev"),
        "entry",
        "character device 1:3",
        not_root
    )]);
    assert_eq!(r["differences"], want, "{r}");
    // Root's: the directories down to the source (tmp, the test dir, psrc), three files, the
    // fifo.
    assert_eq!(r["difference_counts"], counts(7, 0, 0, 0, 1), "{r}");
    assert_eq!(r["devices_skipped"], 1, "{r}");
}

/// As root in a user namespace that maps only root (`unshare --map-root-user`): `chown` to the
/// user's id is refused (EINVAL), so the user's setuid program loses its bit and the user's
/// capability is not written — named, and the refused owners are differences listed by path;
/// device nodes cannot be made there (EPERM: a difference). Root's own setuid program and
/// capability stay.
#[test]
fn chown_refused_by_the_target_drops_privileges_and_is_a_difference() {
    let Some((env, src)) = privileged_scene(false) else {
        return;
    };
    let t = env.path("t");
    let unshare = ["unshare", "--user", "--map-root-user"];
    let o = wrapped(
        &env,
        &unshare,
        &[
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let r = json_of(&o);
    let d = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(mode_owner(&d.join("setuid")), (0o4755, 0, 0));
    assert_eq!(mode_owner(&d.join("setgid")), (0o2755, 0, 0));
    assert_eq!(mode_owner(&d.join("setuid-user")), (0o755, 0, 0));
    assert_eq!(cap_of(&d.join("capable-user")), None);
    assert!(!d.join("chardev").exists());
    let mut dropped: Vec<String> = serde_json::from_value(r["privileges_dropped"].clone()).unwrap();
    dropped.sort();
    let named = |n: &str| d.join(n).display().to_string();
    assert_eq!(dropped, vec![named("capable-user"), named("setuid-user")]);
    let owner = |n: &str| diff(&d.join(n), "owner", "1234:1234", "0:0");
    let eperm = "not created: Operation not permitted (os error 1)";
    let want = json!([
        owner("capable-user"),
        diff(&d.join("chardev"), "entry", "character device 1:3", eperm),
        owner("setuid-user"),
    ]);
    assert_eq!(r["differences"], want, "{r}");
    assert_eq!(r["difference_counts"], counts(2, 0, 0, 0, 1), "{r}");
    assert_eq!(r["errors"], 0, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Class 5: restore over existing files.

/// The content blob ids of the file at snapshot path `path` (`cat snapshot`, `cat tree`).
fn content_ids(env: &Env, path: &Path) -> Vec<String> {
    let snap = json_of(&env.ok(&["cat", "snapshot", "latest"]));
    let mut tree = snap["tree"].as_str().unwrap().to_string();
    let names: Vec<_> = path.iter().skip(1).collect();
    for (i, name) in names.iter().enumerate() {
        let t = json_of(&env.ok(&["cat", "tree", &tree]));
        // `cat tree` shows names as text (plain names here: nothing escaped).
        let want = name.to_str().unwrap();
        let node = t["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == want)
            .unwrap()
            .clone();
        if i + 1 == names.len() {
            return serde_json::from_value(node["content"].clone()).unwrap();
        }
        tree = node["subtree"].as_str().unwrap().to_string();
    }
    unreachable!("an empty path")
}

/// The lengths of the blobs of the file at snapshot path `path`.
fn blob_lengths(env: &Env, path: &Path) -> Vec<u64> {
    let ids = content_ids(env, path);
    ids.iter()
        .map(|id| env.ok(&["cat", "blob", id]).stdout.len() as u64)
        .collect()
}

/// A source with an 8 MiB file (several blobs) and a small one, backed up and restored into
/// `t`; returns the source and the restored copy.
fn restored_scene(env: &Env) -> (PathBuf, PathBuf) {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), pseudo_random(7, 8 << 20)).unwrap();
    std::fs::write(src.join("small"), b"small\n").unwrap();
    env.backup_json(&[&src], &[], 0);
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    (src.clone(), t.join(src.strip_prefix("/").unwrap()))
}

fn restore_json(env: &Env, code: i32, extra: &[&str]) -> Value {
    let t = env.path("t");
    let mut args = vec![
        "restore",
        "latest",
        "--target",
        t.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    json_of(&env.run_code(&args, code))
}

/// The case: a restored file changed in place without changing its size or mtime.
/// `if-changed` trusts size and mtime and leaves it (documented); the default checks the
/// content, rebuilds the file and fetches only the blob that differs, copying the others from
/// the old file. (The old code kept the changed file as "already correct".)
#[test]
fn a_file_changed_without_changing_size_or_mtime_is_restored_by_content() {
    let env = Env::new();
    let (src, d) = restored_scene(&env);
    let big = d.join("big");
    let before = mtime(&big);
    let at = 3_000_000u64;
    let mut bytes = std::fs::read(&big).unwrap();
    bytes[at as usize] ^= 0xff;
    std::fs::write(&big, &bytes).unwrap();
    set_mtime(&big, before.0, before.1);
    let r = restore_json(&env, 0, &["--overwrite", "if-changed"]);
    assert_eq!(
        (r["files_skipped"].clone(), r["files_restored"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        std::fs::read(&big).unwrap(),
        bytes,
        "if-changed trusts size and mtime"
    );
    let r = restore_json(&env, 0, &[]);
    assert_eq!(std::fs::read(&big).unwrap(), pseudo_random(7, 8 << 20));
    assert_eq!(mtime(&big), before);
    let lens = blob_lengths(&env, &src.join("big"));
    assert!(lens.len() >= 3, "{lens:?}");
    let mut end = 0;
    let hit = lens
        .iter()
        .find(|l| {
            end += *l;
            at < end
        })
        .copied()
        .unwrap();
    let want = json!({"files_restored": 1, "files_skipped": 1, "blobs_fetched": 1,
        "bytes_fetched": hit, "bytes_reused": (8 << 20) - hit, "bytes_restored": 8 << 20});
    let got: serde_json::Map<String, Value> = want
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), r[k].clone()))
        .collect();
    assert_eq!(Value::Object(got), want, "{r}");
    assert!(temporaries(&env.path("t")).is_empty());
}

/// `if-newer` leaves entries at least as new as the snapshot's (content, mode and mtime) and
/// replaces older ones; `never` leaves every existing entry; both restore what is missing.
#[test]
fn if_newer_and_never_leave_what_they_say() {
    let env = Env::new();
    let (src, d) = restored_scene(&env);
    let plant = |name: &str, content: &[u8], secs: i64| {
        std::fs::remove_file(d.join(name)).unwrap();
        std::fs::write(d.join(name), content).unwrap();
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
        set_mtime(&d.join(name), secs, 0);
    };
    plant("big", b"a newer local version", 4_000_000_000);
    plant("small", b"an older local version", 1_000_000_000);
    let r = restore_json(&env, 0, &["--overwrite", "if-newer"]);
    assert_eq!(
        (r["entries_kept"].clone(), r["files_restored"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        std::fs::read(d.join("big")).unwrap(),
        b"a newer local version"
    );
    assert_eq!(mode_owner(&d.join("big")).0, 0o600);
    assert_eq!(mtime(&d.join("big")), (4_000_000_000, 0));
    assert_eq!(std::fs::read(d.join("small")).unwrap(), b"small\n");
    assert_eq!(mtime(&d.join("small")), mtime(&src.join("small")));
    plant("small", b"an older local version", 1_000_000_000);
    std::fs::remove_file(d.join("big")).unwrap();
    let r = restore_json(&env, 0, &["--overwrite", "never"]);
    assert_eq!(
        (r["entries_kept"].clone(), r["files_restored"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        std::fs::read(d.join("small")).unwrap(),
        b"an older local version"
    );
    assert_eq!(mtime(&d.join("small")), (1_000_000_000, 0));
    assert_eq!(
        std::fs::read(d.join("big")).unwrap(),
        pseudo_random(7, 8 << 20)
    );
    let o = env.run_code(
        &[
            "restore",
            "latest",
            "--target",
            "x",
            "--overwrite",
            "sometimes",
        ],
        2,
    );
    let err = text(&o.stderr);
    let values = "[possible values: always, if-changed, if-newer, never]";
    assert!(err.contains(values), "{err}");
}

/// What an interrupted restore (kill -9) leaves: a temporary file. The next restore removes it
/// (not a snapshot entry of that name) and completes.
#[test]
fn leftovers_of_an_interrupted_restore_are_removed() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(".tresor-restore-mine"), b"a snapshot entry").unwrap();
    std::fs::write(src.join("f"), b"f\n").unwrap();
    env.backup_json(&[&src], &[], 0);
    let d = env.path("t").join(src.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(".tresor-restore-0123456789abcdef"), b"half a file").unwrap();
    std::fs::write(d.join(".tresor-restore-mine"), b"old").unwrap();
    let r = restore_json(&env, 0, &[]);
    assert_eq!(r["leftovers_removed"], 1, "{r}");
    assert_eq!(
        temporaries(&env.path("t")),
        vec![d.join(".tresor-restore-mine")]
    );
    assert_eq!(
        std::fs::read(d.join(".tresor-restore-mine")).unwrap(),
        b"a snapshot entry"
    );
}

/// Files are created in a new directory with their final permission bits (no chmod after):
/// every pattern — none for the owner, write only, read only, the sticky bit, all — restores
/// exactly, with `--verify` (which reads back through the descriptor the file was written
/// with), in a new directory and over older files; no differences reported.
#[test]
fn every_permission_pattern_restores_exactly() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let root = rustix::process::geteuid().is_root();
    // Without root, a file the owner cannot read cannot be backed up.
    let mut modes = vec![0o400, 0o444, 0o604, 0o640, 0o755, 0o1644, 0o777];
    if root {
        modes.extend([0o000, 0o200, 0o070]);
    }
    for (i, m) in modes.iter().enumerate() {
        let p = src.join(format!("m{m:04o}"));
        std::fs::write(&p, pseudo_random(40 + i as u64, 5000 + i * 777)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*m)).unwrap();
    }
    env.backup_json(&[&src], &[], 0);
    let d = env.path("t").join(src.strip_prefix("/").unwrap());
    for round in ["new", "over older files"] {
        let r = restore_json(&env, 0, &["--verify"]);
        assert_eq!(r["differences"], json!([]), "{round}: {r}");
        for (i, m) in modes.iter().enumerate() {
            let p = d.join(format!("m{m:04o}"));
            assert_eq!(mode_owner(&p).0, *m, "{round}: {}", p.display());
            assert!(
                std::fs::read(&p).unwrap() == pseudo_random(40 + i as u64, 5000 + i * 777),
                "{round}: {}",
                p.display()
            );
            assert_eq!(mtime(&p), mtime(&src.join(format!("m{m:04o}"))));
        }
        for m in &modes {
            let p = d.join(format!("m{m:04o}"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::write(&p, b"older").unwrap();
        }
    }
}

/// A default ACL on the target (here `d:o::---`, set as the raw `system.posix_acl_default`
/// xattr) is inherited by every directory the restore makes and masks the bits files are
/// created with (the umask does not apply then): a 0644 file would come out 0640. Such a
/// directory is not taken as the restore's own (no creation with final bits), and bits that
/// differ after creation are set after all: every mode exact, no differences.
#[test]
fn a_default_acl_on_the_target_does_not_change_restored_modes() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for (name, m) in [("a", 0o644), ("sub/b", 0o755), ("sub/c", 0o604)] {
        std::fs::write(src.join(name), name.as_bytes()).unwrap();
        std::fs::set_permissions(src.join(name), std::fs::Permissions::from_mode(m)).unwrap();
    }
    env.backup_json(&[&src], &[], 0);
    let t = env.path("t");
    std::fs::create_dir_all(&t).unwrap();
    // POSIX ACL xattr: version 2, then (tag, perm, id) entries: user::rwx group::rwx other::---.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 7), (0x20, 0)] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    let flags = rustix::fs::XattrFlags::empty();
    rustix::fs::setxattr(&t, "system.posix_acl_default", &acl, flags).unwrap();
    // The inheritance is real here: a file made in a new directory loses its bits for others.
    std::fs::create_dir(t.join("probe")).unwrap();
    let probe = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(t.join("probe/f"))
        .unwrap();
    assert_eq!(probe.metadata().unwrap().mode() & 0o7777, 0o640);
    let r = restore_json(&env, 0, &[]);
    assert_eq!(r["differences"], json!([]), "{r}");
    let d = t.join(src.strip_prefix("/").unwrap());
    for (name, m) in [("a", 0o644), ("sub/b", 0o755), ("sub/c", 0o604)] {
        assert_eq!(mode_owner(&d.join(name)).0, m, "{name}");
        assert_eq!(std::fs::read(d.join(name)).unwrap(), name.as_bytes());
    }
}

/// Root restoring a `root:root` file into a new directory under a setgid directory of another
/// group: the new directory inherits the setgid bit and the group, so files made in it would
/// get that group — such a directory is not taken as the restore's own, and the file gets its
/// owner and group set: exactly `root:root`, its mode, no differences.
#[test]
fn a_setgid_target_does_not_give_restored_files_its_group() {
    if !require(Need::Root) {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), b"secret").unwrap();
    std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    env.backup_json(&[&src], &[], 0);
    let t = env.path("t");
    std::fs::create_dir_all(&t).unwrap();
    std::os::unix::fs::chown(&t, None, Some(54321)).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let r = restore_json(&env, 0, &[]);
    assert_eq!(r["differences"], json!([]), "{r}");
    let f = t.join(src.strip_prefix("/").unwrap()).join("sub/f");
    assert_eq!(mode_owner(&f), (0o640, 0, 0));
}

/// What an interrupted restore leaves in a directory it created: the interrupted-restore
/// marker, and the file being written under its own name, at its full size (the parallel
/// writer sizes it first) but only partly written, with some mode (here 0600), the time of the
/// write — and the directory still 0700. The next restore rewrites it in every overwrite mode
/// (the marker makes `never` and `if-newer` judge by content too), copying the written part;
/// the directory gets its mode back and the marker is gone. Without the marker, `never` keeps
/// what it finds (a file someone put there).
#[test]
fn a_file_an_interrupted_restore_left_partly_written_is_rewritten() {
    let env = Env::new();
    let (src, d) = restored_scene(&env);
    let want = pseudo_random(7, 8 << 20);
    let modes: [&[&str]; 4] = [
        &["--overwrite", "if-changed"],
        &[],
        &["--overwrite", "never"],
        &["--overwrite", "if-newer"],
    ];
    for extra in modes {
        std::fs::write(d.join(".tresor-restore-incomplete"), b"").unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(d.join("big"))
            .unwrap();
        f.set_len(8 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &want[..3 << 20], 0).unwrap();
        drop(f);
        std::fs::set_permissions(d.join("big"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let r = restore_json(&env, 0, extra);
        assert_eq!(
            (r["files_restored"].clone(), r["files_skipped"].clone()),
            (json!(1), json!(1)),
            "{extra:?}: {r}"
        );
        assert!(r["bytes_reused"].as_u64().unwrap() > 0, "{r}");
        assert!(std::fs::read(d.join("big")).unwrap() == want, "{extra:?}");
        assert_eq!(mtime(&d.join("big")), mtime(&src.join("big")));
        assert_eq!(mode_owner(&d.join("big")).0, mode_owner(&src.join("big")).0);
        assert_eq!(mode_owner(&d).0, mode_owner(&src).0);
        assert!(temporaries(&env.path("t")).is_empty());
    }
    std::fs::write(d.join("big"), b"put there by someone").unwrap();
    let r = restore_json(&env, 0, &["--overwrite", "never"]);
    assert_eq!(r["entries_kept"], json!(2), "{r}");
    assert_eq!(
        std::fs::read(d.join("big")).unwrap(),
        b"put there by someone"
    );
}

// ---------------------------------------------------------------------------------------------
// Class 6: no damaged file at its final name.

/// Flip a byte in every data pack written since `before` (a list of pack names).
fn damage_new_data_packs(env: &Env, before: &[String]) -> usize {
    let mut n = 0;
    for p in packs(&env.repo) {
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let header = text(&env.ok(&["cat", "pack", &name]).stdout);
        if before.contains(&name) || !header.contains("\"Data\"") {
            continue;
        }
        let mut b = std::fs::read(&p).unwrap();
        b[100] ^= 0x40;
        std::fs::write(&p, b).unwrap();
        n += 1;
    }
    n
}

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

/// `good` backed up first; then `bad` (6 MiB: several blobs, the parallel writer) and its hard
/// link `bad-link`, whose new packs are damaged.
fn damaged_scene(env: &Env) -> PathBuf {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("good"), pseudo_random(2, 3 << 20)).unwrap();
    env.backup_json(&[&src], &[], 0);
    let before: Vec<String> = packs(&env.repo)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    std::fs::write(src.join("bad"), pseudo_random(3, 6 << 20)).unwrap();
    std::fs::hard_link(src.join("bad"), src.join("bad-link")).unwrap();
    env.backup_json(&[&src], &[], 0);
    assert!(damage_new_data_packs(env, &before) >= 1);
    src
}

/// A file whose data is corrupt is never at its name: in a new target it does not exist (nor
/// its hard link, nor any temporary file); over an older version, that version stays exactly
/// as it was; the other file restores byte for byte; both paths named; exit 5. (The old code
/// left a partial file at the name, and removed the older version first.)
#[test]
fn a_damaged_file_never_appears_at_its_name() {
    let env = Env::new();
    let src = damaged_scene(&env);
    let t = env.path("t");
    let d = t.join(src.strip_prefix("/").unwrap());
    let r = restore_json(&env, 5, &[]);
    assert_eq!(
        (r["damaged"].clone(), r["errors"].clone()),
        (json!(2), json!(2)),
        "{r}"
    );
    let mut named: Vec<&str> = r["error_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    named.sort();
    let want = [d.join("bad"), d.join("bad-link")].map(|p| p.display().to_string());
    assert_eq!(named, want);
    assert!(!d.join("bad").exists() && !d.join("bad-link").exists());
    assert_eq!(temporaries(&t), Vec::<PathBuf>::new());
    assert_eq!(
        std::fs::read(d.join("good")).unwrap(),
        pseudo_random(2, 3 << 20)
    );
    // An older version at the name stays as it was (content, mode, mtime), also with --verify.
    std::fs::write(d.join("bad"), b"an older version").unwrap();
    std::fs::set_permissions(d.join("bad"), std::fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&d.join("bad"), 1_234_567_890, 5);
    for extra in [&[][..], &["--verify"]] {
        let r = restore_json(&env, 5, extra);
        assert_eq!(r["damaged"], 2, "{r}");
        assert_eq!(std::fs::read(d.join("bad")).unwrap(), b"an older version");
        assert_eq!(mode_owner(&d.join("bad")).0, 0o640);
        assert_eq!(mtime(&d.join("bad")), (1_234_567_890, 5));
        assert!(!d.join("bad-link").exists());
        assert_eq!(temporaries(&t), Vec::<PathBuf>::new());
    }
}
