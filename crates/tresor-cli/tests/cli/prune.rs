//! `tresor prune` and `tresor repair` from the command line: plan and JSON output, exit codes,
//! kill -9 at any moment of a prune, and repairing a repository that lost its index or a pack.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tresor_testkit::prelude::*;

fn init_small(env: &Env) {
    env.ok(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_in(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn bytes_in(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        bytes_in(&e.path())
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// `tresor forget ID`: a snapshot deleted by hand would be reported as hidden by the storage
/// (format §16, forget records).
fn forget(env: &Env, id: &str) {
    env.ok(&["forget", id]);
}

/// Write version `v` of the source: some files stay, some change with every version.
fn write_source(src: &Path, v: u64) {
    let _ = std::fs::remove_dir_all(src);
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("stay{i}")), pseudo_random(i, 200 << 10)).unwrap();
    }
    for i in 0..6u64 {
        let seed = 1000 + v * 10 + i;
        std::fs::write(
            src.join(format!("sub/v{i}")),
            pseudo_random(seed, 300 << 10),
        )
        .unwrap();
    }
    std::fs::write(src.join("small"), format!("version {v}")).unwrap();
}

fn restore_matches(env: &Env, id: &str, src: &Path) {
    let target = env.path(&format!("restore-{id}"));
    let _ = std::fs::remove_dir_all(&target);
    env.ok(&[
        "restore",
        id,
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let restored: PathBuf = target.join(src.strip_prefix("/").unwrap());
    assert_same(&scan(src, false), &scan(&restored, false));
}

#[test]
fn prune_prints_its_plan_frees_space_and_keeps_snapshots() {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    write_source(&src, 1);
    env.backup_json(&[&src], &["--host", "h"], 0);
    write_source(&src, 2);
    env.backup_json(&[&src], &["--host", "h"], 0);
    let ids = env.snapshot_ids();
    forget(&env, &ids[0]);
    let packs = files_in(&env.repo.join("data"));
    let bytes = bytes_in(&env.repo.join("data"));

    // Dry run: the plan, and nothing changes.
    let o = env.ok(&["prune", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert!(
        !v["plan"]["condemn_unused"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert_eq!(files_in(&env.repo.join("data")), packs);
    let o = env.ok(&["prune", "--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("condemn:") && text.contains("dry run"),
        "{text}"
    );

    // Bad arguments are usage errors of the command.
    env.run_code(&["prune", "--max-unused", "lots"], 1);
    env.run_code(&["prune", "--max-repack-size", "3Q"], 1);

    // Phase 1: condemned, nothing deleted; the repository checks clean meanwhile.
    let o = env.ok(&["prune", "--json", "--max-unused", "0%"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["stats"]["packs_condemned"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["stats"]["packs_deleted"], 0);
    env.ok(&["check", "--read-data"]);
    restore_matches(&env, &ids[1], &src);

    // Phase 2 after host h backed up again.
    env.backup_json(&[&src], &["--host", "h"], 0);
    let o = env.ok(&["prune"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("approved"), "{text}");
    assert!(bytes_in(&env.repo.join("data")) < bytes);
    env.ok(&["check", "--read-data"]);
    restore_matches(&env, &ids[1], &src);
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .flat_map(|e| {
                    if e.path().is_dir() {
                        names(&e.path())
                    } else {
                        vec![e.file_name().to_string_lossy().into_owned()]
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn kill_9_at_any_moment_of_a_prune_leaves_a_repository_check_accepts() {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    let mut interrupted = 0;
    for round in 0..8u64 {
        // New work for prune: a new version backed up, the oldest snapshot forgotten.
        write_source(&src, round);
        env.backup_json(&[&src], &["--host", "h"], 0);
        let ids = env.snapshot_ids();
        if ids.len() > 2 {
            forget(&env, &ids[0]);
        }
        // Kill points: when the repack writes its first pack, when a prune record appears, when
        // index objects start to go, or after a few milliseconds.
        let watch = match round % 4 {
            0 => Some(env.repo.join("data")),
            1 => Some(env.repo.join("prune")),
            2 => Some(env.repo.join("index")),
            _ => None,
        };
        let before = watch.as_deref().map(names);
        let mut child = env
            .cmd()
            .args(["prune", "--quiet", "--max-unused", "0%"])
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        loop {
            let changed = match (&watch, &before) {
                (Some(w), Some(b)) => names(w) != *b,
                _ => started.elapsed() >= Duration::from_millis(2 + round * 3),
            };
            if changed || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever was left: check accepts it.
        env.ok(&["check", "--read-data"]);
    }
    eprintln!("{interrupted} of 8 prunes killed while running");
    assert!(
        interrupted >= 3,
        "only {interrupted} prunes were killed while running"
    );
    // The next prunes finish the job: packs a killed repack left unindexed are condemned by
    // the second run that sees them, and deleted once the host has backed up again.
    let mut settled = false;
    for _ in 0..4 {
        env.ok(&["prune"]);
        env.backup_json(&[&src], &["--host", "h"], 0);
        let o = env.ok(&["prune", "--dry-run", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let plan = &v["plan"];
        if plan["generations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["packs"] == 0)
            && plan["unindexed_seen"].as_array().unwrap().is_empty()
            && plan["condemn_unindexed"].as_array().unwrap().is_empty()
        {
            settled = true;
            break;
        }
    }
    assert!(settled, "prune did not finish the job");
    let r = env.ok(&["check", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(
        r["warnings"].as_array().unwrap().is_empty(),
        "no unindexed packs left: {r}"
    );
    let r = env.ok(&["check", "--read-data", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    restore_matches(&env, "latest", &src);
    for id in env.snapshot_ids() {
        let t = env.path(&format!("all-{id}"));
        env.ok(&["restore", &id, "--target", t.to_str().unwrap(), "--verify"]);
    }
}

#[test]
fn repair_index_and_snapshots_from_the_command_line() {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    write_source(&src, 1);
    env.backup_json(&[&src], &[], 0);

    // Every index object lost.
    for e in std::fs::read_dir(env.repo.join("index")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    env.run_code(&["check"], 5);
    env.ok(&["repair", "index", "--dry-run"]);
    assert_eq!(
        files_in(&env.repo.join("index")),
        0,
        "dry run writes nothing"
    );
    let o = env.ok(&["repair", "index", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["report"]["packs"].as_u64().unwrap() > 0, "{v}");
    env.ok(&["check", "--read-data"]);
    restore_matches(&env, "latest", &src);

    // A pack lost: repair snapshots says which files it leaves out.
    let pack = {
        let mut shards: Vec<_> = std::fs::read_dir(env.repo.join("data"))
            .unwrap()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
            .map(|e| e.path())
            .collect();
        shards.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
        shards.pop().unwrap() // the largest: a data pack
    };
    std::fs::remove_file(&pack).unwrap();
    env.run_code(&["check"], 5);
    let o = env.ok(&["repair", "snapshots", "--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("left out"), "{text}");
    assert_eq!(env.snapshot_ids().len(), 1, "dry run writes nothing");
    let o = env.ok(&["repair", "snapshots", "--forget", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fixed = &v["report"]["repaired"][0];
    assert_eq!(fixed["forgotten"], true, "{v}");
    let removed: Vec<String> = fixed["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(!removed.is_empty());
    // The lost pack is still listed; prune drops it from the index.
    env.ok(&["prune"]);
    env.ok(&["check", "--read-data"]);
    // The repaired snapshot restores every file that was not left out.
    let target = env.path("restored");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    let mut want = scan(&src, false);
    want.retain(|k, _| {
        let p = format!("{}/{}", src.display(), String::from_utf8_lossy(k));
        !removed.iter().any(|r| r.starts_with(&format!("{p} (")))
    });
    let got = scan(&restored, false);
    let files = |m: &std::collections::BTreeMap<Vec<u8>, Entry>| {
        m.iter()
            .filter(|(_, e)| e.kind == "file")
            .map(|(k, e)| (k.clone(), e.content_hash.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(files(&got), files(&want));
    let tags = env.ok(&["snapshots", "--json"]);
    assert!(String::from_utf8_lossy(&tags.stdout).contains("repaired"));
}

/// A fresh prefix in the S3 test bucket (`tresor_testkit::require`: skipped without a server,
/// failing in CI).
fn s3_url() -> Option<String> {
    tresor_testkit::require::s3_url_under("prune")
}

/// Two hosts back up three times each while prune runs over and over (and snapshots are
/// forgotten); then every kept snapshot restores and check --read-data is clean.
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn concurrent_backups_and_prunes(env: &Env, location: &str) {
    let cmd = |args: &[&str]| {
        let o = env
            .cmd()
            .env("TRESOR_REPOSITORY", location)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    cmd(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
    let snaps = || -> Vec<(String, String)> {
        let o = cmd(&["snapshots", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["host"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let srcs: Vec<PathBuf> = (0..2).map(|h| env.path(&format!("host{h}"))).collect();
    for (h, src) in srcs.iter().enumerate() {
        write_source(src, h as u64 * 100);
        cmd(&[
            "backup",
            "-q",
            "--host",
            &format!("host{h}"),
            src.to_str().unwrap(),
        ]);
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let done = &done;
        let pruner = s.spawn(|| {
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || runs < 2 {
                // Forget the oldest snapshot of a host that has three, now and then.
                let list = snaps();
                for h in 0..2 {
                    let host = format!("host{h}");
                    let mine: Vec<_> = list.iter().filter(|(_, x)| *x == host).collect();
                    if mine.len() >= 3 && runs % 2 == 0 {
                        cmd(&["forget", &mine[0].0]);
                    }
                }
                cmd(&["prune", "-q", "--max-unused", "0%"]);
                runs += 1;
            }
            runs
        });
        let backups: Vec<_> = srcs
            .iter()
            .enumerate()
            .map(|(h, src)| {
                let cmd = &cmd;
                s.spawn(move || {
                    for v in 1..4u64 {
                        write_source(src, h as u64 * 100 + v);
                        let host = format!("host{h}");
                        cmd(&["backup", "-q", "--host", &host, src.to_str().unwrap()]);
                    }
                })
            })
            .collect();
        for b in backups {
            b.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(pruner.join().unwrap() >= 2);
    });
    // Everything still restores; then more prunes with fresh snapshots finish the deletions.
    cmd(&["check", "--read-data"]);
    for _ in 0..2 {
        for (h, src) in srcs.iter().enumerate() {
            cmd(&[
                "backup",
                "-q",
                "--host",
                &format!("host{h}"),
                src.to_str().unwrap(),
            ]);
        }
        cmd(&["prune", "-q"]);
    }
    cmd(&["check", "--read-data"]);
    for (id, host) in snaps() {
        let t = env.path(&format!("restore-{id}"));
        cmd(&["restore", &id, "--target", t.to_str().unwrap(), "--verify"]);
        let h: usize = host.trim_start_matches("host").parse().unwrap();
        let latest = snaps()
            .into_iter()
            .filter(|(_, x)| *x == host)
            .map(|(i, _)| i)
            .next_back()
            .unwrap();
        if latest == id {
            let restored = t.join(srcs[h].strip_prefix("/").unwrap());
            assert_same(&scan(&srcs[h], false), &scan(&restored, false));
        }
    }
}

#[test]
fn concurrent_backups_and_prunes_on_a_local_repository() {
    let env = Env::new();
    let loc = env.repo.display().to_string();
    concurrent_backups_and_prunes(&env, &loc);
}

#[test]
fn concurrent_backups_and_prunes_on_s3() {
    let Some(url) = s3_url() else { return };
    let env = Env::new();
    concurrent_backups_and_prunes(&env, &url);
}

/// `forget --prune` removes the snapshots and then runs prune (its plan is printed, the unused
/// data is condemned); `--dry-run` shows both and changes nothing. A prune with nothing else to
/// do still deletes the start markers of finished backups.
#[test]
fn forget_with_prune_prunes_and_markers_of_finished_backups_go() {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    write_source(&src, 1);
    env.backup_json(&[&src], &["--host", "h"], 0);
    assert_eq!(files_in(&env.repo.join("markers")), 1);
    // Nothing to prune, but the finished backup's marker goes.
    let o = env.ok(&["prune", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stats"]["markers_deleted"], 1, "{v}");
    assert_eq!(files_in(&env.repo.join("markers")), 0);

    write_source(&src, 2);
    env.backup_json(&[&src], &["--host", "h"], 0);
    let ids = env.snapshot_ids();
    let records = files_in(&env.repo.join("prune"));
    let o = env.ok(&["forget", "--keep-last", "1", "--prune", "--dry-run"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("prune run") && text.contains("dry run"),
        "{text}"
    );
    assert_eq!(env.snapshot_ids(), ids, "a dry run removes nothing");
    assert_eq!(files_in(&env.repo.join("prune")), records);

    let o = env.ok(&["forget", "--keep-last", "1", "--prune"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("prune run"), "{text}");
    assert!(text.contains("condemned"), "{text}");
    assert_eq!(env.snapshot_ids(), vec![ids[1].clone()]);
    assert!(
        files_in(&env.repo.join("prune")) > records,
        "prune wrote its state"
    );
    assert_eq!(files_in(&env.repo.join("markers")), 0);
    // What it freed now and what a later run frees, with the condition.
    assert!(text.contains("freed now: 0 packs deleted (0 B)"), "{text}");
    assert!(
        text.contains("by the first prune run after every host in {\"h\"} has backed up again"),
        "{text}"
    );
    env.ok(&["check", "--read-data"]);
    restore_matches(&env, &ids[1], &src);

    // The next prune waits for h, and says since when and how to release it.
    let o = env.ok(&["prune"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("waiting for host"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("  waiting for host \"h\": no snapshot since 20")
            && line.ends_with(
                "; if \"h\" is gone or no backup of it is running, release it with \
                 `tresor prune --inactive-host h`"
            ),
        "{line}"
    );
    let o = env.ok(&["prune", "--json", "--dry-run"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = &v["plan"]["generations"][0]["waiting"][0];
    let time = env.ok(&["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&time.stdout).unwrap();
    assert_eq!(w["host"], "h", "{v}");
    let ts = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(ts(&w["last_snapshot"]), ts(&snaps[0]["time"]), "{v}");
    assert_eq!(w["release"], "tresor prune --inactive-host h", "{v}");
    // Released: the packs go now.
    let o = env.ok(&["prune", "--inactive-host", "h"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("freed now: 0 packs"), "{text}");
    assert!(!text.contains("freed later"), "{text}");
    env.ok(&["check", "--read-data"]);
    restore_matches(&env, &ids[1], &src);
}

/// A snapshot written by `tag` (it records `original`) is not the end of its host's backup:
/// a generation armed while the host's backup could be running still waits for that host
/// (format §16 step 4). Before the rule, the tagged copy counted and approved the generation.
#[test]
fn a_tagged_snapshot_does_not_approve_a_generation() {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    write_source(&src, 1);
    env.backup_json(&[&src], &["--host", "h"], 0);
    write_source(&src, 2);
    env.backup_json(&[&src], &["--host", "h"], 0);
    env.ok(&["forget", "--keep-last", "1", "--prune"]);
    let waiting = |env: &Env| {
        let o = env.ok(&["prune", "--json", "--dry-run"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["plan"]["generations"][0]["waiting"].clone()
    };
    assert_eq!(waiting(&env)[0]["host"], "h");
    env.ok(&["tag", "latest", "--add", "kept"]);
    let snaps = env.ok(&["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&snaps.stdout).unwrap();
    assert_eq!(snaps[0]["tags"], serde_json::json!(["kept"]), "{snaps}");
    assert_eq!(
        waiting(&env)[0]["host"],
        "h",
        "the tagged snapshot must not count"
    );
    // A real backup of h ends the wait.
    write_source(&src, 3);
    env.backup_json(&[&src], &["--host", "h"], 0);
    let w = waiting(&env);
    assert!(w.is_null() || w == serde_json::json!([]), "{w}");
}
