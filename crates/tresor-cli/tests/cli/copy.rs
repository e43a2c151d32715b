//! `tresor copy` (issue 15): snapshots between repositories with other keys and passwords; a
//! restore from the target equals the source tree; a second copy copies nothing; filters
//! select; a put-only target key copies its own host's snapshots only; S3 → local and local →
//! S3.

use serde_json::Value;
use std::path::Path;
use std::process::Output;
use tresor_testkit::prelude::*;

const SOURCE_PW: &str = "the source's own password";

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn code(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The source: a repository of its own with another password.
struct Source {
    env: Env,
}

impl Source {
    fn new() -> Self {
        let s = Source { env: Env::new() };
        s.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
        s
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self
            .env
            .cmd()
            .env("TRESOR_PASSWORD", SOURCE_PW)
            .args(args)
            .output()
            .unwrap();
        code(&o, 0);
        o
    }

    fn backup(&self, path: &Path, extra: &[&str]) -> String {
        let mut args = vec!["backup", "--json", "--no-cache"];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        json(&self.ok(&args))["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// `copy --json` from `src` into `target` with `extra` arguments, the source's password from a
/// file; the outcome with exit code `want`.
fn copy(target: &Env, src: &Source, extra: &[&str], want: i32) -> Output {
    let pw = target.password_file("source.pw", &format!("{SOURCE_PW}\n"));
    let o = target
        .cmd()
        .arg("--cache-dir")
        .arg(target.path("cache"))
        .args(["copy", "--json", "--from-repo"])
        .arg(&src.env.repo)
        .arg("--from-password-file")
        .arg(&pw)
        .args(extra)
        .output()
        .unwrap();
    code(&o, want);
    o
}

/// Every object file below `repo`.
fn objects(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![repo.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(repo).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn restore_and_compare(target: &Env, snapshot: &str, src: &Path, into: &str) {
    let t = target.path(into);
    target.ok(&["restore", snapshot, "--target", t.to_str().unwrap()]);
    assert_same(
        &scan(src, is_root()),
        &scan(&t.join(src.strip_prefix("/").unwrap()), is_root()),
    );
}

#[test]
fn local_to_local_then_nothing_the_second_time() {
    let src = Source::new();
    let tree = make_tree(src.env.dir.path());
    let first = src.backup(&tree, &["--tag", "one"]);
    std::fs::write(tree.join("added-later"), pseudo_random(7, 300_000)).unwrap();
    let second = src.backup(&tree, &["--host", "other"]);
    let target = Env::new();
    target.init();
    let r = json(&copy(&target, &src, &[], 0));
    super::json_contract::check("copy", &r);
    assert_eq!(r["message_type"], "summary");
    assert_eq!(
        (r["copied"].as_u64(), r["skipped"].as_u64()),
        (Some(2), Some(0))
    );
    let sources: Vec<&str> = r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, [first.as_str(), second.as_str()]);
    assert!(r["data_blobs"].as_u64().unwrap() > 0, "{r}");
    let copy2 = r["snapshots"][1]["target"].as_str().unwrap().to_string();
    // The copy keeps the snapshot's fields and names its source.
    let s: Value = json(&src.ok(&["cat", "snapshot", &second]));
    let c: Value = json(&target.ok(&["cat", "snapshot", &copy2]));
    for f in [
        "time", "hostname", "paths", "tags", "username", "uid", "gid", "excludes",
    ] {
        assert_eq!(s[f], c[f], "{f}");
    }
    assert_eq!(s["summary"], c["summary"]);
    assert_eq!(c["original"], second.as_str());
    assert_ne!(
        s["tree"], c["tree"],
        "tree ids are keyed by each repository"
    );
    restore_and_compare(&target, &copy2, &tree, "restored");
    target.ok(&["check", "--read-data"]);
    // Second copy: everything skipped, nothing written, no data read.
    let before = objects(&target.repo);
    let r = json(&copy(&target, &src, &[], 0));
    assert_eq!(
        (r["copied"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(r["objects_written"], 0);
    assert_eq!(r["bytes_read"], 0);
    assert_eq!(r["snapshots"][1]["target"], copy2.as_str());
    assert_eq!(objects(&target.repo), before);
}

#[test]
fn filters_and_ids_select_what_is_copied() {
    let src = Source::new();
    let dir = src.env.path("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), pseudo_random(1, 100_000)).unwrap();
    let daily = src.backup(&dir, &["--tag", "daily"]);
    std::fs::write(dir.join("g"), pseudo_random(2, 100_000)).unwrap();
    let weekly = src.backup(&dir, &["--tag", "weekly"]);
    let other = src.backup(&dir, &["--host", "other", "--tag", "daily"]);
    let target = Env::new();
    target.init();
    let picked = |r: &Value| -> Vec<String> {
        let list = r["snapshots"].as_array().unwrap().iter();
        list.map(|s| s["source"].as_str().unwrap().to_string())
            .collect()
    };
    let me = json(&src.ok(&["cat", "snapshot", &daily]))["hostname"]
        .as_str()
        .unwrap()
        .to_string();
    let r = json(&copy(&target, &src, &["--tag", "daily", "--host", &me], 0));
    assert_eq!(picked(&r), [daily.as_str()]);
    let r = json(&copy(&target, &src, &[&weekly[..8]], 0));
    assert_eq!(picked(&r), [weekly.as_str()]);
    assert_eq!(r["copied"], 1);
    let r = json(&copy(&target, &src, &["--tag", "daily"], 0));
    assert_eq!(picked(&r), [daily, other]);
    assert_eq!(
        (r["copied"].as_u64(), r["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    // The other host's snapshot shares all its data with the ones copied before (its trees
    // above the source directory hold that moment's metadata of /tmp and may be new).
    assert_eq!(r["data_blobs"], 0);
    assert_eq!(target.snapshot_ids().len(), 3);
}

#[test]
fn a_put_only_target_key_copies_its_own_host_only() {
    let src = Source::new();
    let dir = src.env.path("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), pseudo_random(3, 200_000)).unwrap();
    let vps = src.backup(&dir, &["--host", "vps"]);
    src.backup(&dir, &["--host", "db"]);
    let target = Env::new();
    target.init();
    let pw = target.password_file("vps.pw", "vps password\n");
    target.add_put_only_key("vps", &pw);
    let as_vps = |extra: &[&str], want: i32| {
        let spw = target.password_file("source.pw", &format!("{SOURCE_PW}\n"));
        let o = target
            .cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .env("TRESOR_FROM_REPOSITORY", &src.env.repo)
            .env("TRESOR_FROM_PASSWORD_FILE", &spw)
            .arg("--cache-dir")
            .arg(target.path("vps-cache"))
            .args(["copy", "--json"])
            .args(extra)
            .output()
            .unwrap();
        code(&o, want);
        o
    };
    // All snapshots: the db one is refused, in one line, before anything is written.
    let before = objects(&target.repo);
    let o = as_vps(&[], 1);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("put-only key certified for host \"vps\""),
        "{err}"
    );
    assert_eq!(objects(&target.repo), before);
    let r = json(&as_vps(&["--host", "vps"], 0));
    assert_eq!(r["copied"], 1);
    let copied = r["snapshots"][0]["target"].as_str().unwrap().to_string();
    restore_and_compare(&target, &copied, &dir, "restored");
    let c: Value = json(&target.ok(&["cat", "snapshot", &copied]));
    assert_eq!(c["original"], vps.as_str());
    // Again: the key's local record says it was copied; nothing is read or written.
    let before = objects(&target.repo);
    let r = json(&as_vps(&["--host", "vps"], 0));
    assert_eq!(
        (r["copied"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(r["bytes_read"], 0);
    assert_eq!(objects(&target.repo), before);
}

/// S3 → local and local → S3, through the suite's S3 server.
#[test]
fn s3_to_local_and_local_to_s3() {
    let Some(url) = s3_url_under("cli-copy") else {
        return;
    };
    let src = Source::new();
    let tree = make_tree(src.env.dir.path());
    src.backup(&tree, &[]);
    // local → S3
    let s3 = Env::new();
    let on_s3 = |args: &[&str]| {
        let pw = s3.password_file("source.pw", &format!("{SOURCE_PW}\n"));
        let o = s3
            .cmd()
            .env("TRESOR_REPOSITORY", &url)
            .env("TRESOR_FROM_PASSWORD_FILE", &pw)
            .arg("--no-cache")
            .args(args)
            .output()
            .unwrap();
        code(&o, 0);
        o
    };
    on_s3(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    let from = src.env.repo.to_str().unwrap();
    let r = json(&on_s3(&["copy", "--json", "--from-repo", from]));
    assert_eq!(r["copied"], 1);
    // S3 → local
    let local = Env::new();
    local.init();
    let o = local
        .cmd()
        .env("TRESOR_FROM_PASSWORD", PASSWORD)
        .args(["--no-cache", "copy", "--json", "--from-repo", &url])
        .output()
        .unwrap();
    code(&o, 0);
    let r = json(&o);
    assert_eq!(r["copied"], 1);
    let id = r["snapshots"][0]["target"].as_str().unwrap().to_string();
    let c: Value = json(&local.ok(&["cat", "snapshot", &id]));
    // The S3 copy's original is the first source's id: a chain names the first.
    let first = json(&src.ok(&["snapshots", "--json"]))[0]["id"].clone();
    assert_eq!(c["original"], first);
    restore_and_compare(&local, &id, &tree, "restored");
    let r = json(&on_s3(&["copy", "--json", "--from-repo", from]));
    assert_eq!(
        (r["copied"].as_u64(), r["objects_written"].as_u64()),
        (Some(0), Some(0))
    );
}

/// A snapshot a put-only key wrote in the source is not signed by the target's full key unless
/// the admin vouches for its privileged metadata (`--trust-privileged`): the copy would make
/// restore apply its setuid bits and device nodes (found by the review of issue 15).
#[test]
fn a_put_only_keys_snapshot_is_copied_only_when_vouched_for() {
    let src = Source::new();
    let dir = src.env.path("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), pseudo_random(4, 50_000)).unwrap();
    let pw = src.env.password_file("vps.pw", "vps password\n");
    let add: Vec<String> = put_only_key_args("vps", &pw);
    src.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    let o = src
        .env
        .cmd()
        .env("TRESOR_PASSWORD", "vps password")
        .args(["--no-cache", "backup", "--host", "vps"])
        .arg(&dir)
        .output()
        .unwrap();
    code(&o, 0);
    let target = Env::new();
    target.init();
    let before = objects(&target.repo);
    let o = copy(&target, &src, &[], 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("was not written by a full key") && err.contains("--trust-privileged"),
        "{err}"
    );
    assert_eq!(json(&o)["copied"], 0);
    assert_eq!(objects(&target.repo), before, "nothing written");
    let o = copy(&target, &src, &["--trust-privileged"], 0);
    assert_eq!(json(&o)["copied"], 1);
    restore_and_compare(&target, "latest", &dir, "restored");
}
