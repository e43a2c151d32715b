//! What a backup stores when the source is not all readable, and what makes entries "changed"
//! (issue 13, items 4 and the walk-through):
//!
//! * directories that can be entered but not listed (`--x`), or not opened at all, are stored
//!   with their metadata and no entries, named in a warning; the rest is backed up; exit 3. A
//!   directory above a backup path only has to be enterable. Excluded, they cause nothing;
//! * a missing backup path among several is a warning (exit 3) and the others are backed up;
//!   none left is an error;
//! * reading the source between two backups changes nothing in the second;
//! * `--stdin` snapshots are named by their file, so retention and parents go per file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tresor_testkit::prelude::*;

/// The user the unprivileged backups run as (`setpriv`; tests run as root).
const USER: u32 = 1234;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), stderr(o)))
}

/// `ls --json latest`: path → (type, mode), every entry of the latest snapshot.
fn listing(env: &Env) -> Vec<(String, String, u64)> {
    let o = env.ok(&["ls", "--json", "latest"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["path"].as_str().unwrap().to_string(),
                v["type"].as_str().unwrap().to_string(),
                v["mode"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Entries of `listing` below `root` (relative paths), in order.
fn below(list: &[(String, String, u64)], root: &Path) -> Vec<(String, String, u64)> {
    let prefix = format!("{}/", root.display());
    list.iter()
        .filter_map(|(p, t, m)| {
            let rel = p.strip_prefix(&prefix)?;
            Some((rel.to_string(), t.clone(), *m))
        })
        .collect()
}

fn mkdir(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Run tresor as [`USER`].
fn as_user(env: &Env, args: &[&str]) -> Output {
    std::process::Command::new("setpriv")
        .args([
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
        .env_remove("TRESOR_PASSWORD_COMMAND")
        .output()
        .unwrap()
}

/// A repository [`USER`] can write, and a source owned by root in which `locked` (0711) can be
/// entered but not listed and `closed` (0700) not even entered by the user; `private` (0711)
/// holds a readable `public`. `None` when not root or without `setpriv` (never in CI).
fn user_scene() -> Option<(Env, PathBuf)> {
    if !require_all(&[Need::Root, Need::Setpriv]) {
        return None;
    }
    let env = Env::new();
    env.init();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(&env.repo)
        .status()
        .unwrap();
    assert!(chown.success());
    let src = env.path("src");
    mkdir(&src, 0o755);
    std::fs::write(src.join("a"), b"a").unwrap();
    for (d, mode) in [
        ("locked/sub", 0o755),
        ("locked", 0o711),
        ("closed", 0o700),
        ("open", 0o755),
    ] {
        mkdir(&src.join(d), mode);
    }
    std::fs::write(src.join("locked/inner"), b"inner").unwrap();
    std::fs::write(src.join("closed/f"), b"f").unwrap();
    std::fs::write(src.join("open/g"), b"g").unwrap();
    mkdir(&src.join("private/public"), 0o755);
    std::fs::set_permissions(src.join("private"), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::write(src.join("private/public/p"), b"p").unwrap();
    Some((env, src))
}

/// Item 4: unlistable directories are entries with their metadata and no contents, each named
/// in a warning; everything else is there; exit 3.
#[test]
fn directories_that_cannot_be_listed_are_stored_empty_and_named() {
    let Some((env, src)) = user_scene() else {
        return;
    };
    let s = src.to_str().unwrap();
    let o = as_user(&env, &["backup", "--json", s]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v = json(&o);
    let why = "cannot list the directory (Permission denied (os error 13)): stored with its \
               metadata, without its entries";
    assert_eq!(
        v["error_list"],
        serde_json::json!([
            format!("{s}/closed: {why}"),
            format!("{s}/locked: {why}"),
            format!("{s}/private: {why}")
        ])
    );
    assert_eq!(v["errors"], 3);
    let entries = below(&listing(&env), &src);
    let want = [
        ("a", "file", 0o644),
        ("closed", "dir", 0o700),
        ("locked", "dir", 0o711),
        ("open", "dir", 0o755),
        ("open/g", "file", 0o644),
        ("private", "dir", 0o711),
    ];
    let got: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|(p, t, m)| (p.as_str(), t.as_str(), *m))
        .collect();
    assert_eq!(got, want);

    // Excluded, the same directories cause no warning: exit 0, not in the snapshot.
    let o = as_user(
        &env,
        &[
            "backup",
            "--json",
            "--exclude",
            "locked",
            "--exclude",
            "closed/",
            "--exclude",
            "/**/src/private",
            s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["error_list"], serde_json::json!([]));
    let names: Vec<String> = below(&listing(&env), &src)
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| !p.contains('/'))
        .collect();
    assert_eq!(names, ["a", "open"]);
}

/// A backup path below a directory that can be entered but not listed (`/home/alice` with mode
/// 0711) backs up like any other.
#[test]
fn a_path_below_an_enterable_directory_backs_up() {
    let Some((env, src)) = user_scene() else {
        return;
    };
    let public = src.join("private/public");
    let o = as_user(&env, &["backup", "--json", public.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["files_new"], 1);
    let list = listing(&env);
    let private = src.join("private");
    assert_eq!(
        below(&list, &private),
        [
            ("public".to_string(), "dir".to_string(), 0o755),
            ("public/p".to_string(), "file".to_string(), 0o644)
        ]
    );
    // The directory above keeps its own metadata.
    let p = private.display().to_string();
    assert!(list.contains(&(p, "dir".into(), 0o711)), "{list:?}");
}

/// Walk-through: one missing path among several is a warning; the others are backed up and are
/// the snapshot's paths; all missing is an error and writes nothing.
#[test]
fn missing_backup_paths_are_left_out_with_a_warning() {
    let env = Env::new();
    env.init();
    let (a, b, gone) = (env.path("a"), env.path("b"), env.path("gone"));
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("x"), b"x").unwrap();
    std::fs::write(&b, b"b").unwrap();
    let v = env.backup_json(&[&a, &gone, &b], &[], 3);
    assert_eq!(
        v["error_list"],
        serde_json::json!([format!(
            "{}: No such file or directory (os error 2) (not backed up)",
            gone.display()
        )])
    );
    assert_eq!(v["files_new"], 2, "{v}");
    let o = env.ok(&["snapshots", "--json"]);
    let snaps = json(&o);
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!([a.display().to_string(), b.display().to_string()])
    );
    let o = env.run_code(
        &["backup", gone.to_str().unwrap(), "/nonexistent-tresor"],
        1,
    );
    let err = stderr(&o);
    assert!(
        err.starts_with("tresor: none of the backup paths can be read: ")
            && err.contains(&format!("{}: No such file", gone.display()))
            && err.contains("/nonexistent-tresor: No such file")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// Every file below `dir`, read through (as `cat` would, updating access times).
fn read_all(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            n += read_all(&p);
        } else if e.file_type().unwrap().is_file() {
            std::fs::read(&p).unwrap();
            n += 1;
        }
    }
    n
}

fn atime_of(p: &Path) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.atime(), m.atime_nsec())
}

/// Walk-through: reading the source between two backups (which changes access times) leaves
/// every file and directory unmodified in the second.
#[test]
fn reading_the_source_changes_nothing_in_the_next_backup() {
    let env = Env::new();
    env.init();
    // Not under /tmp: the snapshot holds the source's ancestors too, and tests running beside
    // this one change /tmp's mtime (a real change, a new tree). /var/tmp is ours alone.
    let home = tempfile::Builder::new()
        .prefix("tresor-exactness-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let src = home.path().join("src");
    for d in ["d1/d2", "d3"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (i, f) in ["f0", "d1/f1", "d1/d2/f2", "d3/f3"].iter().enumerate() {
        std::fs::write(src.join(f), pseudo_random(i as u64, 10_000)).unwrap();
    }
    let first = env.backup_json(&[&src], &[], 0);
    assert_eq!(first["files_new"], 4);
    let before = atime_of(&src.join("d1/f1"));
    assert_eq!(read_all(&src), 4);
    // The file system records reads (relatime): otherwise this test could not fail.
    assert_ne!(
        atime_of(&src.join("d1/f1")),
        before,
        "reading did not change the atime"
    );
    let second = env.backup_json(&[&src], &[], 0);
    for (k, want) in [
        ("files_new", 0),
        ("files_changed", 0),
        ("files_unmodified", 4),
        ("dirs_new", 0),
        ("dirs_changed", 0),
    ] {
        assert_eq!(second[k], want, "{k}: {second}");
    }
    // src and its three subdirectories, and the directories above src.
    assert_eq!(
        second["dirs_unmodified"].as_u64(),
        first["dirs_new"].as_u64(),
        "{second}"
    );
    assert_eq!(second["tree_blobs"], 0, "no tree changed: {second}");
}

fn backup_stdin(env: &Env, name: &str, data: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let mut child = env
        .cmd()
        .args(["backup", "--json", "--stdin", "--stdin-filename", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json(&o)
}

/// Walk-through: a `--stdin` snapshot's path is `/NAME`, so each stdin file has its own parent
/// chain and its own retention group.
#[test]
fn stdin_snapshots_are_grouped_per_file_name() {
    let env = Env::new();
    env.init();
    let db1 = backup_stdin(&env, "db.sql", b"version 1");
    let other = backup_stdin(&env, "other.sql", b"other");
    let db2 = backup_stdin(&env, "db.sql", b"version 2");
    assert_eq!(db1["parent"], serde_json::Value::Null);
    assert_eq!(other["parent"], serde_json::Value::Null);
    assert_eq!(db2["parent"], db1["snapshot_id"]);
    env.ok(&["forget", "--keep-last", "1"]);
    let snaps = json(&env.ok(&["snapshots", "--json"]));
    let kept: Vec<(String, serde_json::Value)> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["paths"].clone()))
        .collect();
    assert_eq!(
        kept,
        [
            (
                other["snapshot_id"].as_str().unwrap().to_string(),
                serde_json::json!(["/other.sql"])
            ),
            (
                db2["snapshot_id"].as_str().unwrap().to_string(),
                serde_json::json!(["/db.sql"])
            ),
        ]
    );
}

/// The local tree cache is read tree by tree as the walk needs it, each checked against its id
/// then: bytes changed in the file after it was written make that tree no parent (its files are
/// read again), never a wrong one — the snapshot restores byte for byte — and an unchanged
/// backup with an intact cache reads no file.
#[test]
fn a_damaged_tree_cache_costs_reading_files_again_never_a_wrong_snapshot() {
    let env = Env::new();
    env.init();
    let (src, cache) = (env.path("src"), env.path("cache"));
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for i in 0..40u64 {
            let data = pseudo_random(i + 7 * d.len() as u64, 100 + i as usize * 13);
            std::fs::write(src.join(d).join(format!("f{i:02}")), data).unwrap();
        }
    }
    let with_cache = ["--cache-dir", cache.to_str().unwrap()];
    let backup = |extra: &[&str]| {
        let mut args = with_cache.to_vec();
        args.extend(["backup", "--json", src.to_str().unwrap()]);
        args.extend_from_slice(extra);
        json(&env.ok(&args))
    };
    backup(&[]);
    let v = backup(&[]);
    assert_eq!(v["files_unmodified"], 120, "{v}");
    let file = tree_cache_file(&cache);
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    for at in [n / 3, n / 2, 2 * n / 3] {
        bytes[at] ^= 0x55;
    }
    std::fs::write(&file, &bytes).unwrap();
    // A file changed without changing its size or mtime would be kept from a wrong parent:
    // here every parent the backup uses is checked, so the snapshot is the source's.
    let v = backup(&[]);
    let total = v["files_new"].as_u64().unwrap()
        + v["files_changed"].as_u64().unwrap()
        + v["files_unmodified"].as_u64().unwrap();
    assert_eq!(total, 120, "{v}");
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let restored = t.join(src.strip_prefix("/").unwrap());
    for d in ["a", "b", "c"] {
        for i in 0..40u64 {
            let want = pseudo_random(i + 7 * d.len() as u64, 100 + i as usize * 13);
            let got = std::fs::read(restored.join(d).join(format!("f{i:02}"))).unwrap();
            assert!(got == want, "{d}/f{i:02}");
        }
    }
    // The cache written by that backup is whole again.
    assert_eq!(backup(&[])["files_unmodified"], 120);
}

/// A backup whose parent trees come from the repository (the first with a cache directory)
/// keeps those trees' own bytes for the cache it writes (checked against their ids when they
/// were read): the next backup takes every parent from that cache, finds every file unmodified
/// and reads none; a change below is still seen.
#[test]
fn parent_trees_read_from_the_repository_make_a_whole_tree_cache() {
    let env = Env::new();
    env.init();
    let (src, cache) = (env.path("src"), env.path("cache"));
    for d in ["a", "b/c"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for i in 0..30u64 {
            let data = pseudo_random(i + 3 * d.len() as u64, 200 + i as usize * 7);
            std::fs::write(src.join(d).join(format!("f{i:02}")), data).unwrap();
        }
    }
    let backup = |global: &[&str]| {
        let mut args = global.to_vec();
        args.extend(["backup", "--json", src.to_str().unwrap()]);
        json(&env.ok(&args))
    };
    let first = backup(&["--no-cache"]);
    assert_eq!(first["files_new"], 60, "{first}");
    let with_cache = ["--cache-dir", cache.to_str().unwrap()];
    let v = backup(&with_cache);
    assert_eq!(v["files_unmodified"], 60, "{v}");
    // src, a, b and b/c: the parent's trees (the directories above src changed: the cache).
    assert_eq!(v["dirs_unmodified"], 4, "{v}");
    let from_repo = v["requests"]["get"].as_u64().unwrap();
    let v = backup(&with_cache);
    assert_eq!(v["files_unmodified"], 60, "{v}");
    // Every parent from the cache (a cached tree that failed its check would have its files
    // read again), none fetched from the repository (15 GETs then 7 here).
    assert_eq!(v["bytes_read"], 0, "{v}");
    assert!(v["requests"]["get"].as_u64().unwrap() < from_repo, "{v}");
    std::fs::write(src.join("b/c/f05"), b"changed").unwrap();
    let v = backup(&with_cache);
    assert_eq!(
        (v["files_changed"].as_u64(), v["files_unmodified"].as_u64()),
        (Some(1), Some(59)),
        "{v}"
    );
}

/// A tree cache file cut short (an empty file, half of it, all but its last byte — a full disk,
/// a copy interrupted) is no cache, never a wrong parent: the backup takes its parent trees from
/// the repository, finds every file unmodified and writes a whole cache again.
#[test]
fn a_tree_cache_cut_short_is_no_cache() {
    let env = Env::new();
    env.init();
    let (src, cache) = (env.path("src"), env.path("cache"));
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..30u64 {
        std::fs::write(src.join(format!("d/f{i:02}")), pseudo_random(i, 300)).unwrap();
    }
    let backup = || {
        let args = ["--cache-dir", cache.to_str().unwrap(), "backup", "--json"];
        json(&env.ok(&[&args[..], &[src.to_str().unwrap()]].concat()))
    };
    backup();
    // Twice: the first backup made the cache directory in the test's directory, an ancestor
    // of the source whose times its trees hold (their varints can change the file's length).
    backup();
    let file = tree_cache_file(&cache);
    let whole = std::fs::read(&file).unwrap();
    for cut in [0, whole.len() / 2, whole.len() - 1] {
        std::fs::write(&file, &whole[..cut]).unwrap();
        let v = backup();
        assert_eq!(v["files_unmodified"], 30, "cut at {cut}: {v}");
        assert_eq!(v["errors"], 0, "cut at {cut}: {v}");
        assert_eq!(
            std::fs::read(&file).unwrap().len(),
            whole.len(),
            "cut at {cut}"
        );
    }
}

/// The CLI tests' commands ([`Env::cmd`]) keep their default cache in the test's temporary
/// directory, never in the home of whoever runs the tests (it was `~/.cache/tresor`: some 800
/// directories a run, left behind).
#[test]
fn test_commands_keep_their_default_cache_in_the_test_directory() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"cached").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    let config = walk_files(&env.repo.join("config")).remove(0);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    let id = config["id"].as_str().unwrap();
    let own = env.cache_home().join("tresor").join(id);
    assert!(
        walk_files(&own).iter().any(|p| p.ends_with("seen")),
        "{own:?}"
    );
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap();
    assert!(!home.join(".cache/tresor").join(id).exists());
}

/// The tree cache file (`parent-…`) below the cache directory `cache`.
fn tree_cache_file(cache: &Path) -> PathBuf {
    walk_files(cache)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .as_encoded_bytes()
                .starts_with(b"parent-")
        })
        .expect("a tree cache file")
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
