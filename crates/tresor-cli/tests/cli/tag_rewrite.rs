//! `tresor tag` and `tresor rewrite` (issue 15): exact tags and `original` of the replacements
//! (read back with `cat snapshot`), the old snapshots gone, restic's selection by filters; the
//! paths a rewrite leaves out (listings before and after), unchanged subtrees keeping their ids,
//! `--dry-run` writing nothing, `--forget`, prune freeing the excluded data afterwards, and
//! put-only keys refused before anything is written.

use serde_json::Value;
use std::path::{Path, PathBuf};
use tresor_testkit::prelude::*;

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn snapshot(env: &Env, id: &str) -> Value {
    serde_json::from_slice(&env.ok(&["cat", "snapshot", id]).stdout).unwrap()
}

fn tags(v: &Value) -> Vec<&str> {
    let t = v["tags"].as_array().unwrap();
    t.iter().map(|t| t.as_str().unwrap()).collect()
}

fn backup(env: &Env, src: &Path, extra: &[&str]) -> String {
    let v = env.backup_json(&[src], extra, 0);
    v["snapshot_id"].as_str().unwrap().to_string()
}

/// Every object file of the repository, with its size.
fn objects(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::metadata(&p).unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn tag_add_remove_set_replace_snapshots_with_their_original() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    let h1 = backup(&env, &src, &["--host", "h1", "--tag", "a,b"]);
    let h2 = backup(&env, &src, &["--host", "h2", "--tag", "a"]);

    // --host selects as restic does; --add then --remove; `old -> new`.
    let o = env.ok(&[
        "tag", "--host", "h1", "--add", "c", "--remove", "a", "--json",
    ]);
    let docs = json_lines(&o);
    assert_eq!(docs.len(), 2, "{docs:?}");
    super::json_contract::check("tag", &docs[0]);
    super::json_contract::check("tag summary", &docs[1]);
    assert_eq!(docs[0]["message_type"], "changed");
    assert_eq!(docs[0]["old_snapshot_id"], h1.as_str());
    assert_eq!(docs[0]["forgotten"], true);
    assert_eq!(docs[1]["changed_snapshots"], 1);
    let n1 = docs[0]["new_snapshot_id"].as_str().unwrap().to_string();
    let s = snapshot(&env, &n1);
    assert_eq!(tags(&s), ["b", "c"]);
    assert_eq!(s["original"], h1.as_str());
    assert_eq!(s["hostname"], "h1");
    let mut ids = env.snapshot_ids();
    ids.sort();
    let mut want = vec![n1.clone(), h2.clone()];
    want.sort();
    assert_eq!(ids, want, "the old snapshot is gone");
    env.run_code(&["cat", "snapshot", &h1], 1);

    // --set replaces; a chain of edits names the first snapshot; text is `old -> new`.
    let o = env.ok(&["tag", &n1, "--set", "x, y"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let (old, new) = text.lines().next().unwrap().split_once(" -> ").unwrap();
    assert_eq!(old, n1);
    let s = snapshot(&env, new);
    assert_eq!(tags(&s), ["x", "y"]);
    assert_eq!(s["original"], h1.as_str());
    assert!(text.contains("modified 1 snapshot(s)"), "{text}");

    // Nothing to change: no new snapshot.
    let before = env.snapshot_ids();
    let o = env.ok(&["tag", new, "--add", "x", "--json"]);
    assert_eq!(json_lines(&o)[0]["changed_snapshots"], 0);
    assert_eq!(env.snapshot_ids(), before);

    // No id and no filter: every snapshot (restic); --set "" clears the tags.
    let o = env.ok(&["tag", "--set", "", "--json"]);
    assert_eq!(json_lines(&o).last().unwrap()["changed_snapshots"], 2);
    for id in env.snapshot_ids() {
        assert_eq!(tags(&snapshot(&env, &id)), Vec::<&str>::new());
    }
    // Usage errors: no edit, --set with --add.
    env.run_code(&["tag", "latest"], 2);
    env.run_code(&["tag", "latest", "--set", "a", "--add", "b"], 2);
    env.run_code(&["tag", "latest", "--add", "a,,b"], 1);
    env.ok(&["check"]);
}

#[test]
fn put_only_keys_may_neither_tag_nor_rewrite() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    let pw = env.password_file("put.pw", "put-only password\n");
    let p = pw.to_str().unwrap();
    env.add_put_only_key("vps", &pw);
    let put = |args: &[&str]| {
        env.cmd()
            .env_remove("TRESOR_PASSWORD")
            .arg("--password-file")
            .arg(p)
            .args(args)
            .output()
            .unwrap()
    };
    let o = put(&["backup", "--host", "vps", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let id = env.snapshot_ids().remove(0);
    let before = objects(&env.repo);
    for args in [
        vec!["tag", id.as_str(), "--add", "x"],
        vec!["rewrite", id.as_str(), "--exclude", "f"],
    ] {
        let o = put(&args);
        assert_eq!(o.status.code(), Some(13), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("put-only key") && err.contains("needs a full key"),
            "{err}"
        );
        assert_eq!(objects(&env.repo), before, "{args:?} wrote nothing");
    }
    // The full key does not re-sign a put-only key's snapshot unasked: that would vouch for
    // its privileged metadata (restore applies it from full keys' snapshots only).
    for args in [
        vec!["tag", id.as_str(), "--add", "x"],
        vec!["rewrite", id.as_str(), "--exclude", "f"],
    ] {
        let o = env.run_code(&args, 1);
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.contains("was not written by a full key") && err.contains("--trust-privileged"),
            "{err}"
        );
        assert_eq!(objects(&env.repo), before, "{args:?} wrote nothing");
    }
    // With --trust-privileged it re-signs it and keeps its host name.
    let o = env.ok(&["tag", &id, "--add", "x", "--json", "--trust-privileged"]);
    let new = json_lines(&o)[0]["new_snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = snapshot(&env, &new);
    assert_eq!(s["hostname"], "vps");
    assert_eq!(tags(&s), ["x"]);
    assert_eq!(env.snapshot_ids(), [new]);
}

/// The paths a `rewrite --dry-run` of snapshot `id` with `args` leaves out, sorted.
fn dry_run_removed(env: &Env, id: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["rewrite", id, "--dry-run", "--json"];
    all.extend(args);
    let v = &json_lines(&env.ok(&all))[0];
    let mut removed: Vec<String> = (v["rewritten"][0]["removed"].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    removed.sort();
    removed
}

/// `ls` of a snapshot: its paths, one a line, in order.
fn ls(env: &Env, id: &str) -> Vec<String> {
    let o = env.ok(&["ls", id]);
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The subtree id of directory `path` (absolute) in snapshot `id`.
fn subtree(env: &Env, id: &str, path: &Path) -> String {
    let mut tree = snapshot(env, id)["tree"].as_str().unwrap().to_string();
    for c in path.components().skip(1) {
        let t: Value = serde_json::from_slice(&env.ok(&["cat", "tree", &tree]).stdout).unwrap();
        let name = c.as_os_str().to_str().unwrap();
        let nodes = t["nodes"].as_array().unwrap();
        let n = nodes.iter().find(|n| n["name"] == name).unwrap();
        tree = n["subtree"].as_str().unwrap().to_string();
    }
    tree
}

/// A source with files to keep, a big directory and a `*.tmp` file to leave out.
fn rewrite_source(src: &Path) {
    std::fs::create_dir_all(src.join("keep/sub")).unwrap();
    std::fs::create_dir_all(src.join("junk")).unwrap();
    std::fs::write(src.join("keep/a"), "a\n").unwrap();
    std::fs::write(src.join("keep/sub/b"), pseudo_random(7, 100_000)).unwrap();
    std::fs::write(src.join("keep/c.tmp"), "tmp\n").unwrap();
    std::fs::write(src.join("d"), "d\n").unwrap();
    std::fs::write(src.join("junk/big"), pseudo_random(8, 3 << 20)).unwrap();
}

#[test]
fn rewrite_leaves_out_exactly_the_excluded_paths_and_prune_frees_them() {
    let env = Env::new();
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
    rewrite_source(&src);
    let old = backup(&env, &src, &["--host", "h", "--tag", "t"]);
    let s = src.to_str().unwrap();
    let gone = [format!("{s}/junk/"), format!("{s}/keep/c.tmp")];
    let excl = ["--exclude", "*.tmp", "--exclude", "junk"];

    // A dry run reports and writes nothing.
    let repo_before = objects(&env.repo);
    let mut args = vec!["rewrite", &old, "--dry-run", "--json"];
    args.extend(excl);
    let v = &json_lines(&env.ok(&args))[0];
    super::json_contract::check("rewrite", v);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["rewritten"][0]["old"], old.as_str());
    assert_eq!(v["rewritten"][0]["new"], Value::Null);
    let removed: Vec<&str> = (v["rewritten"][0]["removed"].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap())
        .collect();
    let mut sorted = removed.clone();
    sorted.sort();
    assert_eq!(sorted, gone);
    assert_eq!(objects(&env.repo), repo_before);
    // --iexclude ignores case: the same entries.
    let iexcl = ["--iexclude", "*.TMP", "--iexclude", "JUNK"];
    assert_eq!(dry_run_removed(&env, &old, &iexcl), gone);

    // Without --forget: a new snapshot tagged `rewrite`, the old one stays.
    let mut args = vec!["rewrite", &old, "--json"];
    args.extend(excl);
    let v = &json_lines(&env.ok(&args))[0];
    super::json_contract::check("rewrite", v);
    let new = v["rewritten"][0]["new"].as_str().unwrap().to_string();
    assert_eq!(v["rewritten"][0]["forgotten"], false);
    let sn = snapshot(&env, &new);
    assert_eq!(tags(&sn), ["t", "rewrite"]);
    assert_eq!(sn["original"], old.as_str());
    assert_eq!(sn["hostname"], "h");
    assert_eq!(sn["summary"], Value::Null);
    let (before, after) = (ls(&env, &old), ls(&env, &new));
    let expect: Vec<String> = (before.iter())
        .filter(|p| !p.starts_with(&format!("{s}/junk")) && !p.ends_with(".tmp"))
        .cloned()
        .collect();
    assert_eq!(before.len(), expect.len() + 3, "{before:?}");
    assert_eq!(after, expect);
    // Unchanged subtrees keep their ids; changed ones are new.
    let sub = src.join("keep/sub");
    assert_eq!(subtree(&env, &old, &sub), subtree(&env, &new, &sub));
    let keep = src.join("keep");
    assert_ne!(subtree(&env, &old, &keep), subtree(&env, &new, &keep));

    // With --forget: no `rewrite` tag, the old snapshot gone; the same trees as before.
    let mut args = vec!["rewrite", &old, "--forget", "--json"];
    args.extend(excl);
    let v = &json_lines(&env.ok(&args))[0];
    let third = v["rewritten"][0]["new"].as_str().unwrap().to_string();
    assert_eq!(v["rewritten"][0]["forgotten"], true);
    let st = snapshot(&env, &third);
    assert_eq!(tags(&st), ["t"]);
    assert_eq!(st["tree"], sn["tree"]);
    env.run_code(&["cat", "snapshot", &old], 1);
    env.ok(&["forget", &new]);
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(&third));
    // Nothing left to exclude: nothing rewritten.
    let mut args = vec!["rewrite", "--json"];
    args.extend(excl);
    assert_eq!(
        json_lines(&env.ok(&args))[0]["rewritten"],
        Value::Array(vec![])
    );

    prune_frees_and_restores(&env, &src, &third);
}

/// Prune frees the excluded data (two phases: host h backs up again in between), and snapshot
/// `id` restores the remaining files of `src` byte for byte.
fn prune_frees_and_restores(env: &Env, src: &Path, id: &str) {
    // Prune frees the excluded data (two phases: host h backs up again in between).
    let data = |env: &Env| {
        objects(&env.repo.join("data"))
            .iter()
            .map(|o| o.1)
            .sum::<u64>()
    };
    let full = data(env);
    env.ok(&["prune", "--max-unused", "0%"]);
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("o"), "o\n").unwrap();
    backup(env, &other, &["--host", "h"]);
    env.ok(&["prune", "--max-unused", "0%"]);
    let freed = full - data(env);
    assert!(freed > (5 << 20) / 2, "freed {freed} bytes of {full}");
    env.ok(&["check", "--read-data"]);

    // The rewritten snapshot restores the remaining files byte for byte.
    let target = env.path("restored");
    env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
    let r = target.join(src.strip_prefix("/").unwrap());
    for f in ["keep/a", "keep/sub/b", "d"] {
        assert_eq!(
            std::fs::read(r.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap()
        );
    }
    assert!(!r.join("junk").exists() && !r.join("keep/c.tmp").exists());
}
