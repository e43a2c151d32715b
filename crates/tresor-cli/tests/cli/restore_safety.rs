//! Restore into hostile targets and of privileged snapshots (issue 10): planted symlinks, hard
//! links and setuid candidates in the target, as root and as another user; snapshots written by
//! put-only keys with setuid files, device nodes and capabilities; `--no-owner`,
//! `--no-special-files` and the xattr allow-list. Every test asserts that nothing outside the
//! target changed and that honest files restore byte for byte.

use tresor_testkit::prelude::*;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

const USER: u32 = 1234;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

/// Per path: mode, owner, size, mtime (seconds, nanoseconds) and content.
type State = BTreeMap<PathBuf, (u32, u32, u64, i64, i64, Vec<u8>)>;

/// Everything below `dir` except the paths in `skip`: mode, owner, size, mtime and content.
fn state(dir: &Path, skip: &[PathBuf]) -> State {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if skip.contains(&p) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                vec![]
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            let v = (
                m.mode(),
                m.uid(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                content,
            );
            out.insert(p, v);
        }
    }
    out
}

fn chown(path: &Path, uid: u32) {
    rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(uid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn file(path: &Path, content: &[u8], mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A small tree with a setuid and a setgid program (root's), a directory, a multi-blob file and
/// a symlink.
fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    file(&src.join("dir/f"), b"in dir", 0o644);
    file(&src.join("small"), b"small file", 0o644);
    file(&src.join("big"), &pseudo_random(5, 3 << 20), 0o644);
    file(&src.join("setuid"), b"the real setuid program", 0o4755);
    file(&src.join("setgid"), b"the real setgid program", 0o2755);
    std::os::unix::fs::symlink("small", src.join("link")).unwrap();
    src
}

/// Files outside every target: an admin's secret, a user's file and a user's directory.
fn outside(env: &Env) -> PathBuf {
    let o = env.path("outside");
    std::fs::create_dir_all(o.join("userdir")).unwrap();
    file(&o.join("secret"), b"root's secret", 0o600);
    file(&o.join("mine"), b"a user's own file", 0o644);
    file(&o.join("userdir/keep"), b"keep", 0o644);
    for p in ["mine", "userdir", "userdir/keep"] {
        chown(&o.join(p), USER);
    }
    o
}

/// Plant, where restore will put the snapshot's entries: the directory as a symlink to a
/// directory outside, `small` as a hard link to a file outside, `big` and `link` as symlinks to
/// it, and a setuid candidate — the user's own program with the size and mtime of the real one.
fn plant(restored: &Path, src: &Path, out: &Path, victim: &str) {
    std::fs::create_dir_all(restored).unwrap();
    std::os::unix::fs::symlink(out.join("userdir"), restored.join("dir")).unwrap();
    std::fs::hard_link(out.join(victim), restored.join("small")).unwrap();
    std::os::unix::fs::symlink(out.join(victim), restored.join("big")).unwrap();
    std::os::unix::fs::symlink(out.join(victim), restored.join("link")).unwrap();
    let real = std::fs::metadata(src.join("setuid")).unwrap();
    let fake = vec![b'X'; real.len() as usize];
    file(&restored.join("setuid"), &fake, 0o755);
    let t = rustix::fs::Timespec {
        tv_sec: real.mtime(),
        tv_nsec: real.mtime_nsec(),
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        restored.join("setuid"),
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    for p in ["setuid", "dir", "small", "big", "link"] {
        chown(&restored.join(p), USER);
    }
    chown(restored, USER);
}

/// As root: the planted symlinks and hard link are replaced, never followed or written
/// through, and the planted setuid candidate is replaced by the real program instead of being
/// made setuid root (the old code kept it as "already correct" and chmodded it 04755).
#[test]
fn planted_entries_are_replaced_and_never_made_setuid_root() {
    if !require(Need::Root) {
        return;
    }
    let env = Env::new();
    env.init();
    let src = source(&env);
    let out = outside(&env);
    env.backup_json(&[&src], &[], 0);
    let t = env.path("t");
    let restored = t.join(src.strip_prefix("/").unwrap());
    plant(&restored, &src, &out, "secret");
    let skip = [env.repo.clone(), env.cache_home(), t.clone()];
    let before = state(env.dir.path(), &skip);
    let o = env.ok(&[
        "restore",
        "latest",
        "--target",
        t.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(json(&o)["errors"], 0, "{}", stdout(&o));
    assert_eq!(
        state(env.dir.path(), &skip),
        before,
        "something outside changed"
    );
    assert_same(&scan(&src, true), &scan(&restored, true));
    let m = std::fs::metadata(restored.join("setuid")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o4755, 0));
    assert_eq!(
        std::fs::read(restored.join("setuid")).unwrap(),
        b"the real setuid program"
    );
}

/// `setpriv` runs tresor as another user (tests run as root here and in CI).
fn as_user(env: &Env, args: &[&str]) -> Output {
    let mut c = std::process::Command::new("setpriv");
    c.args([
        format!("--reuid={USER}"),
        format!("--regid={USER}"),
        "--clear-groups".into(),
    ])
    .arg(tresor_bin())
    .arg("--no-cache")
    .args(args)
    .env("TRESOR_REPOSITORY", &env.repo)
    .env("TRESOR_PASSWORD", PASSWORD)
    .env_remove("TRESOR_PASSWORD_FILE")
    .env_remove("TRESOR_PASSWORD_COMMAND");
    c.output().unwrap()
}

/// As a user: planted links to the user's own files outside the target are not followed, and
/// root's setuid/setgid programs are restored without those bits (the user's copy must not be
/// setuid to the user), with a warning naming each; honest files restore byte for byte.
#[test]
fn as_a_user_links_are_not_followed_and_setid_bits_need_the_owner() {
    let Some((env, src)) = user_scene() else {
        return;
    };
    let out = outside(&env);
    let t = env.path("t");
    let restored = t.join(src.strip_prefix("/").unwrap());
    plant(&restored, &src, &out, "mine");
    let mut up = restored.clone();
    while up != env.dir.path() {
        chown(&up, USER);
        up = up.parent().unwrap().to_path_buf();
    }
    let skip = [env.repo.clone(), env.cache_home(), t.clone()];
    let before = state(env.dir.path(), &skip);
    let target = t.to_str().unwrap();
    let o = as_user(&env, &["restore", "latest", "--target", target, "--json"]);
    // Restored with differences: the owners (root's) of every entry.
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(
        state(env.dir.path(), &skip),
        before,
        "something outside changed"
    );
    for (name, content) in [
        ("setuid", &b"the real setuid program"[..]),
        ("setgid", b"the real setgid program"),
    ] {
        let m = std::fs::metadata(restored.join(name)).unwrap();
        let got = (m.mode() & 0o7777, m.uid(), m.gid());
        assert_eq!(got, (0o755, USER, USER), "{name}");
        assert_eq!(std::fs::read(restored.join(name)).unwrap(), content);
    }
    let r = json(&o);
    assert_eq!(r["owner_skipped"], true, "{r}");
    // Four directories, five files and a symlink belong to root in the snapshot: counted, not
    // listed one by one.
    assert_eq!(r["owners_not_restored"], 10, "{r}");
    let counts = serde_json::json!({"owner": 10, "mode": 0, "mtime": 0, "atime": 0,
        "xattr": 0, "entry": 0, "total": 10});
    assert_eq!(r["difference_counts"], counts, "{r}");
    assert_eq!(r["differences"], serde_json::json!([]), "{r}");
    let mut dropped: Vec<String> = serde_json::from_value(r["privileges_dropped"].clone()).unwrap();
    dropped.sort();
    let named = |n: &str| restored.join(n).display().to_string();
    assert_eq!(dropped, vec![named("setgid"), named("setuid")]);
    let mut a = scan(&src, false);
    let mut b = scan(&restored, false);
    for s in [&mut a, &mut b] {
        s.remove(&b"setuid"[..]);
        s.remove(&b"setgid"[..]);
    }
    assert_same(&a, &b);
}

/// In text mode the warning about dropped setuid/setgid bits names each file.
#[test]
fn as_a_user_dropped_privileges_are_named_in_warnings() {
    let Some((env, src)) = user_scene() else {
        return;
    };
    let t = env.path("t");
    std::fs::create_dir(&t).unwrap();
    chown(&t, USER);
    let skip = [env.repo.clone(), env.cache_home(), t.clone()];
    let before = state(env.dir.path(), &skip);
    let o = as_user(
        &env,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        state(env.dir.path(), &skip),
        before,
        "something outside changed"
    );
    let w = stderr(&o);
    let restored = t.join(src.strip_prefix("/").unwrap());
    for name in ["setuid", "setgid"] {
        let line = format!(
            "warning: {}: setuid/setgid bits or file capability not applied: its owner was not restored",
            restored.join(name).display()
        );
        assert!(w.contains(&line), "{w}");
    }
    let owners = "warning: owners not restored: 10 entries (not running as root)\n";
    assert!(w.contains(owners), "{w}");
    let summary =
        "restored with 10 differences: owner 10, mode 0, mtime 0, atime 0, xattr 0, entry 0";
    assert!(stdout(&o).contains(summary), "{}", stdout(&o));
}

/// A repository with a backup of [`source`] that user [`USER`] can read; `None` when not root
/// or `setpriv` is missing (never in CI).
fn user_scene() -> Option<(Env, PathBuf)> {
    if !require_all(&[Need::Root, Need::Setpriv]) {
        return None;
    }
    let env = Env::new();
    env.init();
    let src = source(&env);
    env.backup_json(&[&src], &[], 0);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let chown_r = std::process::Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(&env.repo)
        .status()
        .unwrap();
    assert!(chown_r.success());
    Some((env, src))
}

/// A capability value (cap_net_raw+ep, VFS_CAP_REVISION_2).
fn capability() -> Vec<u8> {
    let mut cap = Vec::new();
    for v in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&v.to_le_bytes());
    }
    cap
}

/// The privileged tree: setuid and setgid programs (root's and a user's), a character device,
/// a fifo, a file with a capability, one with user.* and trusted.* attributes.
fn privileged_source(env: &Env) -> PathBuf {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    let src = env.path("psrc");
    std::fs::create_dir_all(&src).unwrap();
    file(&src.join("setuid"), b"root's setuid program", 0o4755);
    file(&src.join("setgid"), b"root's setgid program", 0o2755);
    file(&src.join("setuid-user"), b"a user's setuid program", 0o4755);
    chown(&src.join("setuid-user"), USER);
    std::fs::set_permissions(
        src.join("setuid-user"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    file(&src.join("capable"), b"has a capability", 0o755);
    xattr::set(src.join("capable"), "security.capability", &capability()).unwrap();
    file(&src.join("notes"), b"has attributes", 0o644);
    xattr::set(src.join("notes"), "user.note", b"u").unwrap();
    xattr::set(src.join("notes"), "trusted.note", b"t").unwrap();
    let dev = rustix::fs::makedev(1, 3);
    let m = Mode::from_bits_truncate(0o600);
    mknodat(CWD, src.join("chardev"), FileType::CharacterDevice, m, dev).unwrap();
    mknodat(CWD, src.join("fifo"), FileType::Fifo, m, 0).unwrap();
    src
}

fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(p, name).unwrap()
}

/// A repository with two snapshots of [`privileged_source`]: one written by a put-only key (a
/// host that may have been broken into), one by the full key.
struct Privileged {
    env: Env,
    src: PathBuf,
    put_only: String,
    full: String,
    before: State,
}

impl Privileged {
    /// `None` when not running as root (never in CI).
    fn new() -> Option<Self> {
        if !require(Need::Root) {
            return None;
        }
        let env = Env::new();
        env.init();
        let src = privileged_source(&env);
        let pw = env.password_file("host-pw", "host password\n");
        let pw_arg = pw.to_str().unwrap();
        let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
        let mut add = vec!["key", "add", "--put-only", "--host", "vps"];
        add.extend(["--new-password-file", pw_arg]);
        add.extend(kdf);
        env.ok(&add);
        let o = env
            .cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .args([
                "--no-cache",
                "backup",
                "--host",
                "vps",
                src.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let put_only = env.snapshot_ids().pop().unwrap();
        env.backup_json(&[&src], &[], 0);
        let full = env.snapshot_ids().pop().unwrap();
        assert_ne!(put_only, full);
        let before = state(env.dir.path(), &[env.repo.clone(), env.cache_home()]);
        Some(Privileged {
            env,
            src,
            put_only,
            full,
            before,
        })
    }

    /// Restore snapshot `id` into the new target `t` with `flags`; returns the JSON summary and
    /// the restored copy of the source.
    fn restore(&self, id: &str, t: &str, flags: &[&str]) -> (serde_json::Value, PathBuf) {
        let t = self.env.path(t);
        let mut args = vec!["restore", id, "--target", t.to_str().unwrap(), "--json"];
        args.extend_from_slice(flags);
        let r = json(&self.env.ok(&args));
        (r, t.join(self.src.strip_prefix("/").unwrap()))
    }

    /// Nothing but the repository, the cache (its request log) and `target` changed in the
    /// test directory.
    fn assert_only(&self, target: &str) {
        let skip = [
            self.env.repo.clone(),
            self.env.cache_home(),
            self.env.path(target),
        ];
        let now = state(self.env.dir.path(), &skip);
        let mut before = self.before.clone();
        before.retain(|p, _| !p.starts_with(self.env.path(target)));
        assert_eq!(now, before, "something outside {target} changed");
    }
}

/// A put-only key's snapshot restores without device nodes, setuid/setgid bits and
/// security.* attributes, counted, with one note saying how to get them; the rest as usual.
#[test]
fn put_only_snapshots_withhold_privileges() {
    let Some(p) = Privileged::new() else { return };
    let (r, d) = p.restore(&p.put_only, "t", &[]);
    assert_eq!(r["snapshot_signer"], "put-only", "{r}");
    let want = serde_json::json!({"devices": 1, "setid_files": 3, "xattrs": 1});
    assert_eq!(r["withheld"], want, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    for name in ["setuid", "setgid", "setuid-user"] {
        let m = std::fs::metadata(d.join(name)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "{name}");
    }
    assert!(!d.join("chardev").exists());
    assert!(
        std::fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(xattr_of(&d.join("capable"), "security.capability"), None);
    assert_eq!(xattr_of(&d.join("notes"), "user.note"), Some(b"u".to_vec()));
    assert_eq!(xattr_of(&d.join("notes"), "trusted.note"), None);
    assert_eq!(
        std::fs::read(d.join("setuid")).unwrap(),
        b"root's setuid program"
    );
    p.assert_only("t");
    let t = p.env.path("t2");
    let o = p
        .env
        .ok(&["restore", &p.put_only, "--target", t.to_str().unwrap()]);
    let note = "withheld because a put-only key wrote this snapshot: 1 device nodes, \
                setuid/setgid bits of 3 files, 1 security/trusted attributes \
                (--trust-privileged applies them)";
    assert!(stdout(&o).contains(note), "{}", stdout(&o));
}

/// `--trust-privileged` (with every attribute included) restores a put-only key's snapshot
/// exactly.
#[test]
fn trust_privileged_restores_everything() {
    let Some(p) = Privileged::new() else { return };
    let flags = ["--trust-privileged", "--include-xattr", "*"];
    let (r, d) = p.restore(&p.put_only, "t", &flags);
    let none = serde_json::json!({"devices": 0, "setid_files": 0, "xattrs": 0});
    assert_eq!(r["withheld"], none, "{r}");
    assert_same(&scan(&p.src, true), &scan(&d, true));
    p.assert_only("t");
}

/// A full key's snapshot gets privileged metadata by default; trusted.* is not on the default
/// xattr list.
#[test]
fn full_key_snapshots_are_privileged_by_default() {
    let Some(p) = Privileged::new() else { return };
    let (r, d) = p.restore(&p.full, "t", &[]);
    assert_eq!(r["snapshot_signer"], "full", "{r}");
    assert_eq!(r["xattrs_filtered"], 1, "{r}");
    let mut want = scan(&p.src, true);
    let notes = want.get_mut(&b"notes"[..]).unwrap();
    notes.xattrs.retain(|(n, _)| n != b"trusted.note");
    assert_same(&want, &scan(&d, true));
    p.assert_only("t");
}

/// `--no-owner --no-special-files --exclude-xattr 'user.*'`: no fifo or device; files belong
/// to root, so the user's setuid program loses its bit and the capability (which needs the
/// owner) is not written — both named; root's own setuid program keeps its bit.
#[test]
fn no_owner_no_special_files_and_excluded_xattrs() {
    let Some(p) = Privileged::new() else { return };
    let flags = [
        "--no-owner",
        "--no-special-files",
        "--exclude-xattr",
        "user.*",
    ];
    let (r, d) = p.restore(&p.full, "t", &flags);
    assert_eq!(r["special_skipped"], 2, "{r}");
    assert_eq!(r["owner_skipped"], true, "{r}");
    let mut dropped: Vec<String> = serde_json::from_value(r["privileges_dropped"].clone()).unwrap();
    dropped.sort();
    let named: Vec<String> = ["capable", "setuid-user"]
        .iter()
        .map(|n| d.join(n).display().to_string())
        .collect();
    assert_eq!(dropped, named);
    assert!(!d.join("chardev").exists() && !d.join("fifo").exists());
    let m = std::fs::metadata(d.join("setuid-user")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, 0));
    assert_eq!(
        std::fs::read(d.join("setuid-user")).unwrap(),
        b"a user's setuid program"
    );
    let m = std::fs::metadata(d.join("setuid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!(xattr_of(&d.join("capable"), "security.capability"), None);
    assert_eq!(xattr_of(&d.join("notes"), "user.note"), None);
    p.assert_only("t");
}
