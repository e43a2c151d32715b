//! Bad input and damage: clear one-line errors, documented exit codes, nothing lost.

use std::path::{Path, PathBuf};
use tresor_testkit::prelude::*;

fn objects(repo: &Path, kind: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo.join(kind)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn flip_byte(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x40;
    std::fs::write(p, b).unwrap();
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A repository with one small and one big file, backed up once.
fn setup() -> (Env, PathBuf) {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("small"), b"small file").unwrap();
    std::fs::write(src.join("d/big"), pseudo_random(3, 6 << 20)).unwrap();
    env.backup_json(&[&src], &[], 0);
    (env, src)
}

#[test]
fn wrong_password_is_one_line_and_exit_12() {
    let (env, _) = setup();
    let o = env
        .cmd()
        .env("TRESOR_PASSWORD", "wrong")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong password"));
    assert!(!stderr(&o).contains("wrong\n") && !stderr(&o).contains(PASSWORD));
}

#[test]
fn missing_repository_is_exit_10() {
    let env = Env::new();
    let o = env.run_code(&["snapshots"], 10);
    assert!(stderr(&o).contains("no repository"), "{}", stderr(&o));
    env.init();
    let o = env.run_code(&["init"], 1);
    assert!(stderr(&o).contains("already exists"));
}

#[test]
fn password_file_permissions_are_enforced() {
    let (env, _) = setup();
    let f = env.path("pw");
    std::fs::write(&f, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args(["snapshots", "--password-file", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("readable by group or others"),
        "{}",
        stderr(&o)
    );
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args([
            "snapshots",
            "--insecure-password-file",
            "--password-file",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args(["snapshots", "--password-file", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args([
            "snapshots",
            "--password-command",
            &format!("echo '{PASSWORD}'"),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .stdin(std::process::Stdio::null())
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no password"));
}

/// Each way of damaging a pack is found by `check --read-data` and by restore.
#[test]
fn damaged_packs_are_reported() {
    for (what, damage) in [
        ("flip", &(|p: &Path| flip_byte(p, 100)) as &dyn Fn(&Path)),
        ("truncate", &|p: &Path| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
        ("append", &|p: &Path| {
            let mut b = std::fs::read(p).unwrap();
            b.extend_from_slice(b"garbage");
            std::fs::write(p, b).unwrap();
        }),
        ("delete", &|p: &Path| std::fs::remove_file(p).unwrap()),
    ] {
        let (env, src) = setup();
        // The biggest pack holds the data of d/big.
        let packs = objects(&env.repo, "data");
        let big = packs
            .iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
            .clone();
        let name = big.file_name().unwrap().to_str().unwrap().to_string();
        damage(&big);
        let o = env.run(&["check", "--read-data"]);
        assert_eq!(o.status.code(), Some(5), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&name),
            "{what}: check names the pack: {}",
            stderr(&o)
        );
        let t = env.path("t");
        let o = env.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
        let rel = src.strip_prefix("/").unwrap();
        if what == "append" {
            // Appended bytes leave every blob intact: restore gets all data back.
            assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
            assert_eq!(
                std::fs::read(t.join(rel).join("d/big")).unwrap(),
                pseudo_random(3, 6 << 20)
            );
            continue;
        }
        assert_eq!(
            o.status.code(),
            Some(5),
            "{what}: restore exit code: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("d/big"),
            "{what}: restore names the file: {}",
            stderr(&o)
        );
        // A file not named in the errors is restored intact (whether `small` shares the damaged
        // pack depends on which worker packed it).
        if !stderr(&o).contains("/small:") {
            assert_eq!(
                std::fs::read(t.join(rel).join("small")).unwrap(),
                b"small file",
                "{what}"
            );
        }
        // Restoring again reports the same damage: a damaged file is never left looking complete.
        let o2 = env.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
        assert_eq!(
            o2.status.code(),
            Some(5),
            "{what}: second restore: {}",
            stderr(&o2)
        );
    }
}

#[test]
fn damaged_index_snapshot_key_and_tree_are_reported() {
    // Index object.
    let (env, _) = setup();
    flip_byte(&objects(&env.repo, "index")[0], 60);
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("index"), "{}", stderr(&o));
    // Snapshot.
    let (env, _) = setup();
    let snap = objects(&env.repo, "snapshots")[0].clone();
    flip_byte(&snap, 50);
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        stderr(&o).contains(snap.file_name().unwrap().to_str().unwrap()),
        "{}",
        stderr(&o)
    );
    // Asked for by id, a damaged snapshot is damage (exit 5, naming it), not "not found"; it can
    // still be forgotten by its id.
    let name = snap.file_name().unwrap().to_str().unwrap().to_string();
    let t = env.path("t");
    for args in [
        vec!["restore", &name[..8], "--target", t.to_str().unwrap()],
        vec!["ls", &name[..8]],
    ] {
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(5), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&name[..8]), "{}", stderr(&o));
        assert!(
            !stderr(&o).contains("no snapshot matches"),
            "{}",
            stderr(&o)
        );
    }
    env.ok(&["forget", &name[..8]]);
    assert!(objects(&env.repo, "snapshots").is_empty());
    // Key file: appended bytes change its hash; the only key no longer opens.
    let (env, _) = setup();
    let key = objects(&env.repo, "keys")[0].clone();
    let mut b = std::fs::read(&key).unwrap();
    b.extend_from_slice(b" ");
    std::fs::write(&key, b).unwrap();
    let o = env.run(&["snapshots"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not match its name"),
        "{}",
        stderr(&o)
    );
    // Tree pack (the smallest pack holds the trees).
    let (env, _) = setup();
    let packs = objects(&env.repo, "data");
    let small = packs
        .iter()
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    flip_byte(&small, 10);
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
    let o = env.run(&["ls", "latest"]);
    assert_eq!(o.status.code(), Some(5));
}

#[test]
fn restore_never_writes_outside_the_target() {
    let (env, src) = setup();
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let t = env.path("t");
    let base = t.join(src.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&base).unwrap();
    // A symlink where directory d should be, pointing outside; a symlink where a file should be.
    std::os::unix::fs::symlink(&outside, base.join("d")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), base.join("small")).unwrap();
    std::fs::write(outside.join("victim"), b"untouched").unwrap();
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside"
    );
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(base.join("d")).unwrap().is_dir());
    assert_eq!(std::fs::read(base.join("small")).unwrap(), b"small file");
    // A longer existing file is replaced completely.
    std::fs::write(base.join("small"), vec![b'x'; 100_000]).unwrap();
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(std::fs::read(base.join("small")).unwrap(), b"small file");
}

#[test]
fn unreadable_source_gives_exit_3_and_a_snapshot() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("closed")).unwrap();
    std::fs::write(src.join("open"), b"readable").unwrap();
    std::fs::write(src.join("secret"), b"unreadable").unwrap();
    std::fs::write(src.join("closed/inner"), b"x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(src.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = env.cmd();
    if is_root() {
        // Root reads everything: run as nobody, with a repository nobody may write.
        for p in [env.dir.path(), &env.repo] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut stack = vec![env.repo.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                rustix::fs::chownat(
                    rustix::fs::CWD,
                    &p,
                    Some(rustix::fs::Uid::from_raw(65534)),
                    None,
                    rustix::fs::AtFlags::empty(),
                )
                .unwrap();
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        rustix::fs::chownat(
            rustix::fs::CWD,
            &env.repo,
            Some(rustix::fs::Uid::from_raw(65534)),
            None,
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_tresor"),
        ])
        .env("TRESOR_REPOSITORY", &env.repo)
        .env("TRESOR_PASSWORD", PASSWORD);
    }
    let o = cmd
        .args(["backup", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["errors"], 2, "{s}");
    let list = s["error_list"].to_string();
    assert!(list.contains("secret") && list.contains("closed"), "{list}");
    assert!(s["snapshot_id"].is_string());
    std::fs::set_permissions(src.join("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn backup_of_a_missing_path_fails_clearly() {
    let env = Env::new();
    env.init();
    let o = env.run_code(&["backup", "/nonexistent/tresor/path"], 1);
    assert!(stderr(&o).contains("/nonexistent/tresor/path"));
    assert_eq!(stderr(&o).lines().count(), 1);
}

/// A damaged data blob is reported once, with every snapshot and file that uses it.
#[test]
fn a_damaged_blob_names_every_snapshot_and_file_it_hits() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = pseudo_random(11, 300 << 10);
    std::fs::write(src.join("a.bin"), &data).unwrap();
    env.backup_json(&[&src], &[], 0);
    std::fs::write(src.join("copy.bin"), &data).unwrap();
    env.backup_json(&[&src], &[], 0);
    let o = env.ok(&["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let shorts: Vec<String> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["short_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shorts.len(), 2);
    // The data pack is the largest; its first blob is the file's content.
    let packs = objects(&env.repo, "data");
    let data_pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(data_pack, 5000);
    let o = env.run(&["check", "--read-data", "--json"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|e| e.starts_with("blob "))
        .collect();
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    let e = errors[0];
    for s in &shorts {
        assert!(e.contains(&format!("snapshot {s} file")), "{s}: {e}");
    }
    assert!(e.contains("a.bin") && e.contains("copy.bin"), "{e}");
}

#[test]
fn unwritable_stdout_ends_like_sigpipe_or_with_one_line() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    env.ok(&["backup", src.to_str().unwrap()]);
    for args in [
        &["snapshots"][..],
        &["ls", "latest"],
        &["snapshots", "--json"],
    ] {
        // The reader is gone before tresor writes its first line.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = env
            .cmd()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("internal error"),
            "{err}"
        );
    }
}

/// A version-1 repository (format §14): every command refuses it with one line naming the
/// version, exit 1 (it is not damaged, just not this tresor's), and writes nothing.
#[test]
fn a_version_1_repository_is_refused_by_name() {
    let env = Env::new();
    // The config of a version-1 repository, as tresor 0.1 wrote it; no other object.
    let config = br#"{
  "version": 1,
  "id": "a3f1e2d4c5b6a7980112233445566778899aabbccddeeff0011223344556677",
  "chunker": {
    "algorithm": "fastcdc-v2020",
    "min_size": 262144,
    "avg_size": 1048576,
    "max_size": 4194304
  },
  "pack_size": 16777216,
  "compression_level": 3
}"#;
    std::fs::create_dir_all(env.repo.join("config")).unwrap();
    let name = blake3::hash(config).to_hex();
    std::fs::write(env.repo.join("config").join(name.as_str()), config).unwrap();
    let listing = || {
        let mut v: Vec<PathBuf> = walk(&env.repo);
        v.sort();
        v
    };
    let before = listing();
    assert_eq!(before, vec![env.repo.join("config").join(name.as_str())]);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let src = src.display().to_string();
    for args in [
        vec!["snapshots"],
        vec!["check"],
        vec!["key", "list"],
        vec!["backup", src.as_str()],
        vec!["cat", "config"],
        vec!["prune"],
    ] {
        let o = env.run_code(&args, 1);
        assert_eq!(
            stderr(&o),
            "tresor: unsupported repository version 1 (this tresor reads versions 2 and 3)\n",
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = env.run_code(&["init"], 1);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(listing(), before, "nothing written");
    assert_eq!(
        std::fs::read(env.repo.join("config").join(name.as_str())).unwrap(),
        config
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
