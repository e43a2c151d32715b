//! The offline spool (issue 15, docs/format.md §17): `backup --spool` while the repository is
//! unreachable (an S3 location on a closed loopback port) or with `--spool-always`, then
//! `spool flush` into the real repository and a byte-identical restore; a put-only key's spool;
//! `spool status`.

use std::path::{Path, PathBuf};
use tresor_testkit::prelude::*;

fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.bin"), pseudo_random(5, 2_500_000)).unwrap();
    std::fs::write(src.join("d/b.txt"), b"bee\n").unwrap();
    std::os::unix::fs::symlink("d/b.txt", src.join("link")).unwrap();
    src
}

/// An S3 location nothing listens on.
fn unreachable_location() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("s3:http://127.0.0.1:{port}/bucket")
}

/// Every file below `dir` (relative paths).
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn only_config_key_trust(spool: &Path, trust_records: usize) {
    let f = files(spool);
    let count = |dir: &str| f.iter().filter(|p| p.starts_with(dir)).count();
    assert_eq!(
        (count("config/"), count("keys/"), count("trust/"), f.len()),
        (1, 1, trust_records, 2 + trust_records),
        "{f:?}"
    );
}

fn status(env: &Env, spool: &str) -> serde_json::Value {
    let o = env.ok(&["spool", "status", "--spool", spool, "--json"]);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn restore_same(env: &Env, id: &str, src: &Path) {
    let target = env.path(&format!("restored-{id}"));
    env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
    assert_same(
        &scan(src, true),
        &scan(&target.join(src.strip_prefix("/").unwrap()), true),
    );
}

#[test]
fn unreachable_repository_spools_then_flush_restores_identical() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let spool = env.path("spool");
    let (s, sp) = (src.to_str().unwrap(), spool.to_str().unwrap());
    // Reachable: a normal backup, and the spool prepared (mode 0700, config, key, trust).
    env.ok(&["backup", s, "--spool", sp]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    only_config_key_trust(&spool, 1);
    std::fs::write(src.join("d/new.txt"), b"written offline\n").unwrap();
    let offline = unreachable_location();
    let o = env
        .cmd()
        .args([
            "-r",
            &offline,
            "--retry-for",
            "0",
            "backup",
            s,
            "--spool",
            sp,
        ])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("cannot be reached") && warnings[0].contains(sp),
        "{err}"
    );
    assert_eq!(
        env.snapshot_ids().len(),
        1,
        "nothing reached the repository"
    );
    let st = status(&env, sp);
    assert_eq!(st["snapshots"], 1);
    assert_eq!(st["markers"], 1);
    assert!(st["packs"].as_u64().unwrap() >= 1);
    let out = env.ok(&["spool", "flush", "--spool", sp, "--json"]);
    let flushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(flushed["snapshots"], 1);
    assert_eq!(flushed["bytes"], st["bytes"]);
    only_config_key_trust(&spool, 1);
    assert_eq!(status(&env, sp)["bytes"], 0);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2);
    restore_same(&env, &ids[1], &src);
    env.ok(&["check", "--read-data"]);
    // A second flush has nothing to do.
    let again = env.ok(&["spool", "flush", "--spool", sp]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("uploaded 0 snapshots"));
}

#[test]
fn unreachable_without_a_prepared_spool_fails_and_says_why() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let sp = env.path("spool");
    let o = env
        .cmd()
        .args(["-r", &unreachable_location(), "--retry-for", "0", "backup"])
        .args([src.to_str().unwrap(), "--spool", sp.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holds no spool yet"), "{err}");
    assert!(!sp.exists());
}

#[test]
fn put_only_key_spools_always_and_flushes() {
    let env = Env::new();
    env.init();
    let pw = env.password_file("put.pw", "put-only password\n");
    let pwf = pw.to_str().unwrap();
    env.add_put_only_key("laptop", &pw);
    let src = source(&env);
    let sp = env.path("spool");
    let (s, spool) = (src.to_str().unwrap(), sp.to_str().unwrap());
    let put = |args: &[&str]| {
        let o = env
            .cmd()
            .env_remove("TRESOR_PASSWORD")
            .args(["--password-file", pwf])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let o = put(&["backup", s, "--spool", spool, "--spool-always"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--spool-always"));
    assert!(env.snapshot_ids().is_empty());
    assert_eq!(status(&env, spool)["snapshots"], 1);
    put(&["spool", "flush", "--spool", spool]);
    only_config_key_trust(&sp, 2);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 1);
    restore_same(&env, &ids[0], &src);
}
