//! A backup held half-way while an admin prunes (issue 13, item 10), with the debug-build pause
//! hook of the archiver (`TRESOR_TEST_PAUSE_AFTER_FILES`, `TRESOR_TEST_PAUSE_DIR`: see
//! `tresor-core/src/archiver/pause.rs`).
//!
//! The paused backup has deduplicated against the packs of a forgotten snapshot (so the two
//! prunes condemn exactly the data it relies on) and has uploaded packs of its own that no index
//! lists yet. Both prunes finish while it waits; then it finishes, `check --read-data` is clean,
//! and its snapshot restores byte for byte. A later prune still deletes nothing it uses.

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};
use tresor_testkit::prelude::*;

/// Files in the fan-out folders of `data/` (not the spool files of a running backup's open
/// packs, `data/.tmp-spool-*`).
fn packs_in(repo: &Path) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(repo.join("data")).unwrap().flatten() {
        if shard.file_type().unwrap().is_dir() {
            n += std::fs::read_dir(shard.path()).unwrap().count();
        }
    }
    n
}

/// Wait (at most `limit`) until `p` exists, or the child ended.
fn wait_for(p: &Path, child: &mut Child, limit: Duration) {
    let until = Instant::now() + limit;
    while !p.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the backup ended ({status}) before it paused");
        }
        assert!(Instant::now() < until, "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (at most `limit`) for the child to end; kill it when it does not.
fn finish(mut child: Child, limit: Duration) -> Output {
    let until = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the backup did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn prune(env: &Env) -> serde_json::Value {
    let o = env.ok(&["prune", "--json", "--max-unused", "0%"]);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A repository (1 MiB packs) whose only snapshot, of ten files in `src`, is forgotten (its
/// packs unused but still indexed), and ten new files beside them in `src`. Returns `src`.
fn forgotten_snapshot_and_new_files(env: &Env) -> std::path::PathBuf {
    env.ok(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..10u64 {
        std::fs::write(src.join(format!("f{i}")), pseudo_random(i, 600 << 10)).unwrap();
    }
    env.backup_json(&[&src], &[], 0);
    let first = env.snapshot_ids();
    // Forgotten: its packs are unused, but still indexed when the next backup starts.
    env.ok(&["forget", &first[0]]);
    for i in 0..10u64 {
        std::fs::write(src.join(format!("g{i}")), pseudo_random(100 + i, 600 << 10)).unwrap();
    }
    src
}

#[test]
fn a_backup_held_half_way_survives_two_prunes() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let env = Env::new();
    let src = forgotten_snapshot_and_new_files(&env);
    let packs_before = packs_in(&env.repo);
    let pause = env.path("pause");
    std::fs::create_dir(&pause).unwrap();
    let child = env
        .cmd()
        .args(["backup", "--json", "--host", "held", src.to_str().unwrap()])
        .env("TRESOR_TEST_PAUSE_AFTER_FILES", "15")
        .env("TRESOR_TEST_PAUSE_DIR", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    wait_for(&pause.join("paused"), &mut child, Duration::from_secs(60));
    assert_eq!(std::fs::read_to_string(pause.join("paused")).unwrap(), "15");
    // The f files were deduplicated (they are in the forgotten snapshot's packs); of the g
    // files, five were read: their packs are being uploaded, not yet indexed.
    let until = Instant::now() + Duration::from_secs(30);
    while packs_in(&env.repo) < packs_before + 2 {
        assert!(Instant::now() < until, "the held backup uploaded no packs");
        std::thread::sleep(Duration::from_millis(20));
    }

    let p1 = prune(&env);
    assert!(
        p1["stats"]["packs_condemned"].as_u64().unwrap() >= 5,
        "the first prune condemns the forgotten snapshot's packs: {p1}"
    );
    eprintln!("first prune: {}", p1["stats"]);
    let p2 = prune(&env);
    eprintln!("second prune: {}", p2["stats"]);
    assert_eq!(
        p2["stats"]["packs_deleted"], 0,
        "nothing is deleted while the backup that needs it runs: {p2}"
    );
    std::fs::write(pause.join("continue"), b"").unwrap();
    let o = finish(child, Duration::from_secs(120));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files_new"], 20, "{v}");
    let id = v["snapshot_id"].as_str().unwrap().to_string();

    let check = |env: &Env| {
        let o = env.ok(&["check", "--read-data", "--json"]);
        let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(c["errors"], serde_json::json!([]), "{c}");
    };
    check(&env);
    let restore = |env: &Env, name: &str| {
        let t = env.path(name);
        env.ok(&["restore", &id, "--target", t.to_str().unwrap(), "--verify"]);
        assert_same(
            &scan(&src, false),
            &scan(&t.join(src.strip_prefix("/").unwrap()), false),
        );
    };
    restore(&env, "restored");
    // Later prunes (the host has a snapshot now) delete only what nothing uses.
    prune(&env);
    prune(&env);
    check(&env);
    restore(&env, "restored-again");
}
