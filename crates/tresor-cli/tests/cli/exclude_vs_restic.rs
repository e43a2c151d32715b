//! Differential test of exclude patterns (issue 13, item 9): a table of pattern cases, each
//! backed up by tresor (`backup`, then `ls`) and by restic (`backup --dry-run -vv`) from the same
//! tree; the sets of paths each keeps must be equal. The cases cover `*`, `?`, classes and
//! escapes, `**`, anchoring, trailing `/` (ignored by restic, also for files), negation and its
//! order, `.`/`..` in patterns, non-ASCII names, and environment variables in exclude files.
//!
//! Needs the `restic` binary (installed by `scripts/test.sh`; Debian `apt-get install restic`).
//! Without it the test prints a notice and passes, unless `CI` is set: then it fails.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use tresor_testkit::prelude::*;

/// Files of the tree (directories are made as needed); a name ending in `/` is an empty
/// directory.
const TREE: &[&str] = &[
    "a.txt",
    "b.tmp",
    ".hidden",
    "foo",
    "$lit",
    "dir.tmp/k",
    "cache/c1",
    "cache/sub/c2",
    "x/cache",
    "x/foo/bar/z",
    "x/foo/y",
    "deep/foo/p/q/bar/z2",
    "deep/foobar/f",
    "logs/keep.log",
    "logs/drop.log",
    "n[1]/file",
    "ü/ümlaut",
    "empty/",
];

/// The cases: patterns given with `--exclude` (`{src}` is the tree's absolute path), and
/// whether they go through an exclude file instead.
const CASES: &[(&[&str], bool)] = &[
    (&["*.tmp"], false),
    (&["foo"], false),
    (&["foo/"], false),
    (&["cache/"], false),
    (&["{src}/cache"], false),
    (&["{src}/cache/"], false),
    (&["/cache"], false),
    (&["foo/**/bar"], false),
    (&["deep/**"], false),
    (&["**/z*"], false),
    (&["/**/foo"], false),
    (&["x/*"], false),
    (&["*.log", "!keep.log"], false),
    (&["!keep.log", "*.log"], false),
    (&["logs", "!logs/keep.log"], false),
    (&["/**/foo", "!**/x/foo"], false),
    (&["?.txt"], false),
    (&["[ab].*"], false),
    (&["[^a].t*"], false),
    (&["n\\[1\\]"], false),
    (&["n[[]1]"], false),
    (&["ü"], false),
    (&["?mlaut"], false),
    (&["src/./x/../deep"], false),
    (&["{src}/../src/logs"], false),
    (&[".*"], false),
    (&["deep/foo*"], false),
    (&["*"], false),
    (&["empty"], false),
    (
        &[
            "$TRESOR_TEST_EXCLUDE",
            "${TRESOR_TEST_EXCLUDE_2}/sub",
            "$$lit",
        ],
        true,
    ),
    (&["a$TRESOR_TEST_UNSET.txt", "# comment", "  b.tmp  "], true),
];

/// Whether restic is on the `PATH`; without it the test is skipped with a note, and fails in CI
/// (`tresor_testkit::require`).
fn restic_present() -> bool {
    tresor_testkit::require::require(tresor_testkit::require::Need::Restic)
}

fn make_tree(src: &Path) {
    for f in TREE {
        let p = src.join(f.trim_end_matches('/'));
        if f.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f.as_bytes()).unwrap();
        }
    }
}

/// The exclude arguments of a case: `--exclude P` each, or one `--exclude-file`.
fn exclude_args(env: &Env, n: usize, patterns: &[&str], in_file: bool, src: &str) -> Vec<String> {
    let patterns: Vec<String> = patterns.iter().map(|p| p.replace("{src}", src)).collect();
    if in_file {
        let f = env.path(&format!("excludes-{n}"));
        std::fs::write(&f, patterns.join("\n")).unwrap();
        return vec!["--exclude-file".into(), f.display().to_string()];
    }
    patterns
        .into_iter()
        .flat_map(|p| ["--exclude".to_string(), p])
        .collect()
}

fn envs(c: &mut Command) -> &mut Command {
    c.env("TRESOR_TEST_EXCLUDE", "*.tmp")
        .env("TRESOR_TEST_EXCLUDE_2", "cache")
        .env_remove("TRESOR_TEST_UNSET")
}

/// Paths below `src` (relative) that restic would back up.
fn restic_keeps(env: &Env, src: &str, args: &[String]) -> BTreeSet<String> {
    let o = envs(&mut Command::new("restic"))
        .args([
            "-r",
            env.path("restic").to_str().unwrap(),
            "backup",
            "--dry-run",
            "-vv",
        ])
        .args(args)
        .arg(src)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "restic {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("new"))
        .filter_map(|l| l.trim_start().split(", saved in").next())
        .filter_map(|p| p.trim_end_matches('/').strip_prefix(src))
        .map(|p| p.trim_start_matches('/').to_string())
        .collect()
}

/// Paths below `src` (relative) in a tresor backup with these arguments.
fn tresor_keeps(env: &Env, src: &str, args: &[String]) -> BTreeSet<String> {
    let o = envs(&mut env.cmd())
        .args(["backup", "--json", "--force"])
        .args(args)
        .arg(src)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "tresor {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["snapshot_id"].as_str().unwrap();
    let o = env.ok(&["ls", "--json", id]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let p = v["path"].as_str()?.to_string();
            p.strip_prefix(src)
                .map(|r| r.trim_start_matches('/').to_string())
        })
        .collect()
}

#[test]
fn exclude_decisions_match_restic() {
    if !restic_present() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    let init = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "init"])
        .env("RESTIC_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let all = tresor_keeps(&env, s, &[]);
    assert_eq!(all, restic_keeps(&env, s, &[]));
    assert_eq!(all.len(), 34, "{all:?}");
    let mut differences = Vec::new();
    for (n, (patterns, in_file)) in CASES.iter().enumerate() {
        let args = exclude_args(&env, n, patterns, *in_file, s);
        let ours = tresor_keeps(&env, s, &args);
        let theirs = restic_keeps(&env, s, &args);
        let gone: Vec<&String> = all.difference(&theirs).collect();
        eprintln!("{patterns:?}: restic leaves out {gone:?}");
        if ours != theirs {
            differences.push(format!(
                "{patterns:?} (file: {in_file}): only tresor keeps {:?}, only restic keeps {:?}",
                ours.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// `--exclude-caches` keeps a cache directory and its `CACHEDIR.TAG`, nothing else in it, as
/// restic does; a tag without the signature marks nothing.
#[test]
fn exclude_caches_matches_restic() {
    if !restic_present() {
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in ["c/sub", "fake", "plain"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let tag = b"Signature: 8a477f597d28d172789f06886806bc55\n".as_slice();
    for (f, body) in [
        ("c/CACHEDIR.TAG", tag),
        ("c/data", b"d".as_slice()),
        ("c/sub/x", b"x"),
        ("fake/CACHEDIR.TAG", b"Signature: nope"),
        ("fake/y", b"y"),
        ("plain/z", b"z"),
    ] {
        std::fs::write(src.join(f), body).unwrap();
    }
    let s = src.to_str().unwrap();
    let init = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "init"])
        .env("RESTIC_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let args = vec!["--exclude-caches".to_string()];
    let ours = tresor_keeps(&env, s, &args);
    assert_eq!(ours, restic_keeps(&env, s, &args));
    let want = [
        "",
        "c",
        "c/CACHEDIR.TAG",
        "fake",
        "fake/CACHEDIR.TAG",
        "fake/y",
        "plain",
        "plain/z",
    ];
    assert_eq!(ours, want.iter().map(|p| p.to_string()).collect());
}
