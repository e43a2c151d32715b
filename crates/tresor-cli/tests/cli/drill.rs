//! `tresor drill` (issue 17): an intact repository passes and successive drills reach every
//! pack; a flipped byte in a data pack, a deleted pack and a changed source file each fail the
//! drill (exit 7) naming the file; a put-only key cannot drill (13); `--history` lists the runs;
//! a drill record planted by a put-only key changes no coverage; `--metrics-textfile` holds the
//! drill's figures and check's repository size; a damaged snapshot object is not drilled from
//! this machine's cached copy.

use std::path::{Path, PathBuf};
use std::process::Output;
use tresor_testkit::prelude::*;
use tresor_testkit::tree::pseudo_random;

/// A repository of 1 MiB packs and a source of eight 400 KiB files of random bytes (several
/// data packs, one tree pack). Returns the source.
fn small_repo(env: &Env) -> PathBuf {
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
    for i in 0..8u64 {
        std::fs::write(src.join(format!("f{i}")), pseudo_random(i, 400 << 10)).unwrap();
    }
    env.backup_json(&[&src], &[], 0);
    src
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn drill(env: &Env, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["drill", "--json"];
    args.extend_from_slice(extra);
    let v = json(&env.run_code(&args, code));
    super::json_contract::check("drill", &v);
    v
}

/// The data packs (all but the smallest pack, the tree pack), largest first.
fn data_packs(repo: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<(u64, PathBuf)> = Vec::new();
    for shard in std::fs::read_dir(repo.join("data")).unwrap() {
        for p in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = p.unwrap().path();
            packs.push((std::fs::metadata(&p).unwrap().len(), p));
        }
    }
    packs.sort();
    packs.remove(0);
    packs.reverse();
    packs.into_iter().map(|(_, p)| p).collect()
}

/// Flip one bit of byte 100 of `pack` (inside its first blob).
fn flip_a_byte(pack: &Path) {
    let mut bytes = std::fs::read(pack).unwrap();
    bytes[100] ^= 1;
    std::fs::write(pack, bytes).unwrap();
}

fn mismatch_paths(v: &serde_json::Value, kind: &str) -> Vec<String> {
    v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn intact_repository_passes_and_rotation_reaches_every_pack() {
    let env = Env::new();
    let src = small_repo(&env);
    let packs = data_packs(&env.repo).len() + 1;
    assert!(packs >= 4, "{packs} packs");
    let mut runs = 0;
    let mut last = serde_json::Value::Null;
    // One file per drill: each drill must reach a pack no drill reached before.
    while runs < packs {
        runs += 1;
        last = drill(&env, &["--sample", "1", "--seed", &runs.to_string()], 0);
        assert_eq!(last["result"], "passed", "{last}");
        assert_eq!(last["files"], 1, "{last}");
        assert_eq!(last["bytes"], 400 << 10, "{last}");
        assert!(last["record"].is_string(), "{last}");
        if last["coverage"]["packs_covered"] == last["coverage"]["packs_total"] {
            break;
        }
    }
    assert_eq!(
        last["coverage"]["packs_share"], 1.0,
        "after {runs} drills: {last}"
    );
    assert!(runs < packs, "{runs} drills for {packs} packs");
    assert_eq!(last["coverage"]["snapshots_share"], 1.0);
    assert_eq!(last["candidates"], 8);
    // The estimate: 8 files of 400 KiB from the snapshot's summary.
    assert_eq!(last["estimates"][0]["files"], 8);
    assert_eq!(last["estimates"][0]["bytes"], 8 * (400 << 10));
    assert_eq!(last["hosts"][0]["files"], 8);
    assert!(last["estimates"][0]["seconds"].as_f64().unwrap() > 0.0);
    // The sandbox is gone; a drill of everything with a target leaves the target empty.
    let target = env.path("sandbox");
    let all = drill(
        &env,
        &["--share", "100%", "--target", target.to_str().unwrap()],
        0,
    );
    assert_eq!(all["files"], 8);
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    // History lists every run, oldest first, with coverage growing to 100 %.
    let h = json(&env.ok(&["drill", "--history", "--json"]));
    super::json_contract::check("drill history", &h);
    let drills = h["drills"].as_array().unwrap();
    assert_eq!(drills.len(), runs + 1);
    assert!(drills.iter().all(|d| d["result"] == "passed"));
    assert_eq!(drills.last().unwrap()["coverage"], 1.0);
    assert_eq!(drills.last().unwrap()["files"], 8);
    let text = String::from_utf8(env.ok(&["drill", "--history"]).stdout).unwrap();
    assert_eq!(text.matches("passed").count(), runs + 1, "{text}");
    assert!(text.contains("coverage: packs"), "{text}");
    drop(src);
}

#[test]
fn a_flipped_byte_in_a_data_pack_fails_naming_the_file() {
    let env = Env::new();
    let src = small_repo(&env);
    flip_a_byte(&data_packs(&env.repo)[0]);
    let v = drill(&env, &["--share", "100%"], 7);
    assert_eq!(v["result"], "failed");
    let bad = mismatch_paths(&v, "data");
    assert_eq!(bad.len(), 1, "{v}");
    assert!(bad[0].starts_with(src.to_str().unwrap()), "{v}");
    let o = env.run_code(&["drill", "--share", "100%"], 7);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("error: {}", bad[0])), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("drill FAILED: 1 mismatch"));
    // The damaged pack is not counted as covered.
    assert!(v["coverage"]["packs_share"].as_f64().unwrap() < 1.0, "{v}");
}

/// A drill reads the snapshots from the repository, not from this machine's cache of the ones
/// it opened before: a snapshot object damaged since is not drilled from the cached copy. The
/// only snapshot damaged: nothing to drill, exit 5 naming it.
#[test]
fn a_damaged_snapshot_object_is_not_drilled_from_the_cache() {
    let env = Env::new();
    small_repo(&env);
    env.ok(&["snapshots"]);
    let dir = env.repo.join("snapshots");
    let snap = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = snap.file_name().unwrap().to_str().unwrap().to_string();
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[50] ^= 1;
    std::fs::write(&snap, bytes).unwrap();
    // This machine's own listing still has it (the cache), the drill does not.
    let own = env.run(&["ls", &name[..8]]);
    assert_eq!(
        own.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let o = env.run_code(&["drill", "--share", "100%"], 5);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no snapshot to drill"), "{err}");
    assert!(err.contains(&name[..8]), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_deleted_pack_fails_naming_its_files() {
    let env = Env::new();
    let src = small_repo(&env);
    std::fs::remove_file(&data_packs(&env.repo)[0]).unwrap();
    let v = drill(&env, &["--share", "100%"], 7);
    let bad = mismatch_paths(&v, "data");
    assert!(!bad.is_empty() && bad.len() < 8, "{v}");
    for p in &bad {
        assert!(p.starts_with(src.to_str().unwrap()), "{p}");
    }
    assert_eq!(v["mismatches"].as_array().unwrap().len(), bad.len(), "{v}");
}

#[test]
fn a_source_changed_without_a_new_backup_fails_with_compare_source() {
    let env = Env::new();
    let src = small_repo(&env);
    let clean = drill(&env, &["--share", "100%", "--compare-source"], 0);
    assert_eq!(clean["source"]["compared"], 8, "{clean}");
    // Same size, mtime put back: a backup trusting size and mtime would not notice.
    let f = src.join("f3");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[1000] ^= 0x55;
    std::fs::write(&f, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&f).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    // Another file changed with a new mtime: skipped, not a mismatch.
    std::fs::write(src.join("f5"), pseudo_random(99, 400 << 10)).unwrap();
    let v = drill(&env, &["--share", "100%", "--compare-source"], 7);
    assert_eq!(
        mismatch_paths(&v, "source_changed"),
        [f.to_str().unwrap()],
        "{v}"
    );
    assert_eq!(v["source"]["compared"], 7, "{v}");
    assert_eq!(v["source"]["skipped"], 1, "{v}");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 1, "{v}");
    // Without --compare-source the repository itself is fine.
    drill(&env, &["--share", "100%"], 0);
    // Snapshots of another host: nothing to compare, and the drill says so.
    env.backup_json(&[&src], &["--host", "elsewhere"], 0);
    let args = [
        "drill",
        "--compare-source",
        "--host",
        "elsewhere",
        "--sample",
        "2",
    ];
    let o = env.run_code(&args, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "warning: --compare-source compares nothing: no drilled snapshot is of this host"
        ),
        "{err}"
    );
}

#[test]
fn a_put_only_key_cannot_drill_and_its_planted_record_changes_no_coverage() {
    let env = Env::new();
    small_repo(&env);
    let pw = env.password_file("po", "put-only password\n");
    env.add_put_only_key("vps", &pw);
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .env("TRESOR_PASSWORD_FILE", &pw)
        .args(["drill"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(13));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a put-only key cannot drill: it cannot read"),
        "{err}"
    );
    // A record signed by the put-only key claiming every pack: readers ignore it.
    plant_put_only_record(&env, &pw);
    let h = json(&env.ok(&["drill", "--history", "--json"]));
    assert_eq!(h["drills"].as_array().unwrap().len(), 0, "{h}");
    assert_eq!(h["coverage"]["packs_covered"], 0, "{h}");
    assert_eq!(h["ignored_records"], 1, "{h}");
    let v = drill(&env, &["--sample", "1"], 0);
    assert_eq!(v["ignored_records"], 1);
    assert!(v["coverage"]["packs_share"].as_f64().unwrap() < 1.0, "{v}");
}

/// Write, with the put-only key's own signer, a drill record listing every pack.
fn plant_put_only_record(env: &Env, pw: &Path) {
    let password = std::fs::read_to_string(pw).unwrap();
    let storage = std::sync::Arc::new(tresor_storage::local::LocalStorage::new(env.repo.clone()));
    let repo = tresor_core::Repository::open(storage, password.trim_end()).unwrap();
    let packs = data_packs(&env.repo)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    let record = tresor_format::drill::DrillRecord {
        version: 2,
        time: "2026-12-01T00:00:00Z".into(),
        hostname: "vps".into(),
        key: repo.key_id(),
        snapshots: Vec::new(),
        packs,
        files: 1,
        bytes: 1,
        result: tresor_format::drill::DrillResult::Passed,
        mismatches: 0,
        seconds: 1.0,
        bytes_per_sec: 1.0,
        files_per_sec: 1.0,
        nonce: tresor_format::drill::DrillRecord::new_nonce().unwrap(),
    };
    tresor_core::drill::record::write(&repo, &record).unwrap();
}

/// The bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() {
            bytes_under(&p)
        } else {
            std::fs::metadata(&p).unwrap().len()
        };
    }
    n
}

#[test]
fn metrics_hold_the_drill_outcome_and_the_repository_size() {
    use super::metrics::{scrape, value};
    let env = Env::new();
    small_repo(&env);
    let prom = env.path("tresor.prom");
    let p = prom.to_str().unwrap();
    let v = drill(&env, &["--share", "100%", "--metrics-textfile", p], 0);
    let s = scrape(&prom);
    assert_eq!(value(&s, "tresor_drill_last_exit_code", &[]), 0.0);
    let success = value(&s, "tresor_drill_last_success_timestamp_seconds", &[]);
    assert_eq!(value(&s, "tresor_drill_files", &[]), 8.0);
    assert_eq!(
        value(&s, "tresor_drill_bytes", &[]),
        f64::from(8 * (400 << 10))
    );
    assert_eq!(value(&s, "tresor_drill_mismatches", &[]), 0.0);
    // The same f64 through two text parsers (serde_json's default parsing is not always
    // correctly rounded): equal to 1e-12 relative.
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
    let rate = v["bytes_per_sec"].as_f64().unwrap();
    let got = value(&s, "tresor_drill_throughput_bytes_per_second", &[]);
    assert!(near(got, rate), "{got} {rate}");
    let cover = |of| value(&s, "tresor_drill_coverage_ratio", &[("of", of)]);
    let share = v["coverage"]["packs_share"].as_f64().unwrap();
    assert!(near(cover("packs"), share), "{share}");
    assert_eq!(cover("snapshots"), 1.0);
    let host = v["hosts"][0]["host"].as_str().unwrap();
    let est = value(&s, "tresor_drill_estimate_seconds", &[("host", host)]);
    let want = v["hosts"][0]["seconds"].as_f64().unwrap();
    assert!(near(est, want), "{est} {want}");
    assert!(est > 0.0);

    // check adds the repository's size: the bytes of the pack files on disk.
    let c = json(&env.ok(&["check", "--json", "--metrics-textfile", p]));
    let s = scrape(&prom);
    let size = value(&s, "tresor_repository_size_bytes", &[]);
    assert_eq!(size, bytes_under(&env.repo.join("data")) as f64);
    assert_eq!(c["pack_bytes"].as_f64().unwrap(), size);
    assert!(size > f64::from(8 * (400 << 10)), "{size}");
    assert_eq!(
        value(&s, "tresor_repository_packs", &[]),
        c["packs"].as_f64().unwrap()
    );
    assert_eq!(
        value(&s, "tresor_repository_blobs", &[]),
        c["blobs"].as_f64().unwrap()
    );
    assert_eq!(value(&s, "tresor_repository_snapshots", &[]), 1.0);

    // A failed drill records its exit code and mismatch; the last success stays.
    flip_a_byte(&data_packs(&env.repo)[0]);
    drill(&env, &["--share", "100%", "--metrics-textfile", p], 7);
    let s = scrape(&prom);
    assert_eq!(value(&s, "tresor_drill_last_exit_code", &[]), 7.0);
    assert_eq!(value(&s, "tresor_drill_mismatches", &[]), 1.0);
    assert_eq!(
        value(&s, "tresor_drill_last_success_timestamp_seconds", &[]),
        success
    );
    assert_eq!(value(&s, "tresor_check_last_exit_code", &[]), 0.0);
}

/// Every file under `dir` (relative paths, sorted), skipping `skip`.
fn listing(dir: &Path, skip: &[&Path]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if skip.contains(&p.as_path()) {
                continue;
            }
            if p.is_dir() && !p.is_symlink() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

/// Hostile names (a newline, a terminal escape, invalid UTF-8, a backslash, in a `...`
/// directory) and a file owned by 1234:1234: a drill of everything passes (owners compared as
/// root); with the files changed behind the backup's back, the report names each by the
/// display rule in JSON (which stays valid) and text (no raw control byte), and nothing is
/// written outside the sandbox, which is left empty.
#[test]
fn hostile_names_and_owners_are_drilled_and_shown_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let dots = src.join("...");
    std::fs::create_dir_all(&dots).unwrap();
    let names: [&[u8]; 4] = [b"new\nline", b"\x1b[2J", b"bad\xff\xfe", b"..\\.."];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| dots.join(std::ffi::OsStr::from_bytes(n)))
        .collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(f, pseudo_random(i as u64, 3000)).unwrap();
    }
    let owned = src.join("owned");
    std::fs::write(&owned, b"owned by 1234").unwrap();
    std::os::unix::fs::chown(&owned, Some(1234), Some(1234)).unwrap();
    env.backup_json(&[&src], &[], 0);
    let target = env.path("sandbox");
    let t = target.to_str().unwrap();
    let before = listing(env.dir.path(), &[&env.repo, &env.cache_home()]);
    let clean = drill(
        &env,
        &["--share", "100%", "--compare-source", "--target", t],
        0,
    );
    assert_eq!(clean["files"], 5, "{clean}");
    assert_eq!(clean["source"]["compared"], 5, "{clean}");
    // Same sizes and mtimes, other bytes: each is named.
    for f in &files {
        let mtime = std::fs::metadata(f).unwrap().modified().unwrap();
        std::fs::write(f, pseudo_random(77, 3000)).unwrap();
        let h = std::fs::File::options().write(true).open(f).unwrap();
        h.set_modified(mtime).unwrap();
    }
    let v = drill(
        &env,
        &["--share", "100%", "--compare-source", "--target", t],
        7,
    );
    let mut got = mismatch_paths(&v, "source_changed");
    got.sort();
    let base = dots.to_str().unwrap();
    let mut want: Vec<String> = ["..\\\\..", "\\x1b[2J", "bad\\xff\\xfe", "new\\nline"]
        .iter()
        .map(|n| format!("{base}/{n}"))
        .collect();
    want.sort();
    assert_eq!(got, want, "{v}");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 4, "{v}");
    let o = env.run_code(
        &[
            "drill",
            "--share",
            "100%",
            "--compare-source",
            "--target",
            t,
        ],
        7,
    );
    let text = [o.stdout, o.stderr].concat();
    assert!(!text.contains(&0x1b) && !text.contains(&0xff), "{text:?}");
    let text = String::from_utf8(text).unwrap();
    for w in &want {
        assert_eq!(
            text.matches(&format!("{w} (snapshot ")).count(),
            1,
            "{w}: {text}"
        );
    }
    assert!(!text.contains("new\nline"), "{text}");
    // Nothing but the (empty) sandbox was added outside the repository.
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    let mut after = listing(env.dir.path(), &[&env.repo, &env.cache_home()]);
    after.retain(|p| p != Path::new("sandbox"));
    assert_eq!(after, before);
}

/// `tresor run` with a drill step: a flipped byte makes the drill fail, the job exits 7, the
/// profile's webhook gets the failure with the drill's error line in the log tail, and the
/// metrics file holds the drill's exit code and mismatch under the profile's label.
#[test]
fn a_failing_drill_step_of_a_run_notifies_and_writes_its_metrics() {
    use super::metrics::{receiver, scrape, value};
    let env = Env::new();
    let src = small_repo(&env);
    flip_a_byte(&data_packs(&env.repo)[0]);
    let (url, handle) = receiver();
    let prom = env.path("tresor.prom");
    let config = env.path("tresor.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.p]\nsources = [{src:?}]\nafter_backup = [\"drill\"]\n\
             drill_share = \"100%\"\nmetrics_textfile = {prom:?}\n\
             notify = {{ webhook = {{ url = \"{url}/hook\", events = [\"failure\"] }} }}\n",
            src = src.display().to_string(),
            prom = prom.display().to_string(),
        ),
    )
    .unwrap();
    let o = env.run_code(&["--config", config.to_str().unwrap(), "run", "p"], 7);
    let err = String::from_utf8_lossy(&o.stderr);
    let (request, body) = handle.join().unwrap();
    assert_eq!(request, "POST /hook HTTP/1.1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["exit_code"].as_i64()),
        (Some("failure"), Some(7)),
        "{v}"
    );
    let tail = v["log_tail"].as_str().unwrap();
    assert!(
        tail.contains(&format!("error: {}/f", src.display())),
        "{tail}\n{err}"
    );
    let s = scrape(&prom);
    let p = [("profile", "p")];
    assert_eq!(value(&s, "tresor_drill_last_exit_code", &p), 7.0);
    assert_eq!(value(&s, "tresor_drill_mismatches", &p), 1.0);
    assert_eq!(value(&s, "tresor_drill_files", &p), 8.0);
    let ok = [("profile", "p"), ("paths", src.to_str().unwrap())];
    assert_eq!(value(&s, "tresor_backup_last_exit_code", &ok), 0.0);
}
