//! `backup --files-from` / `--files-from-verbatim` / `--files-from-raw` and `--iexclude` /
//! `--iexclude-file`: the files backed up, exactly, and the same as restic's
//! `backup --dry-run -vv` with the same flags (needs `restic`; fails in CI without it).

use tresor_testkit::prelude::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const FILES: &[&str] = &[
    "a.txt",
    "B.TXT",
    "trail.txt ",
    "d/x.txt",
    "d/Keep.Log",
    "d/y.md",
];

fn make_tree(src: &Path) {
    std::fs::create_dir_all(src.join("d")).unwrap();
    for f in FILES {
        std::fs::write(src.join(f), f.as_bytes()).unwrap();
    }
}

/// The lists, written next to the tree; returns (files-from, verbatim, raw).
fn lists(env: &Env, s: &str) -> [String; 3] {
    let globs = format!("# comment\n\n  {s}/d/*.txt  \n{s}/a.txt\n{s}/nomatch*\n");
    let verbatim = format!("{s}/trail.txt \n\n{s}/d/y.md\n");
    let raw = format!("{s}/a.txt\0{s}/B.TXT\0");
    let mut out = [String::new(), String::new(), String::new()];
    for (i, (name, text)) in [("globs", globs), ("verbatim", verbatim), ("raw", raw)]
        .into_iter()
        .enumerate()
    {
        let p = env.path(name);
        std::fs::write(&p, text).unwrap();
        out[i] = p.display().to_string();
    }
    out
}

/// Regular files below `s` (relative) in a tresor backup with `args`.
fn tresor_files(env: &Env, s: &str, args: &[&str]) -> BTreeSet<String> {
    let o = env.ok(&[&["backup", "--json", "--force"], args].concat());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = env.ok(&["ls", "--json", v["snapshot_id"].as_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "file")
        .filter_map(|v| {
            Some(
                v["path"]
                    .as_str()?
                    .strip_prefix(&format!("{s}/"))?
                    .to_string(),
            )
        })
        .collect()
}

/// Regular files below `s` (relative) that restic would back up with `args`.
fn restic_files(env: &Env, s: &str, args: &[&str]) -> BTreeSet<String> {
    let repo = env.path("restic");
    let o = Command::new("restic")
        .args(["-r", repo.to_str().unwrap(), "backup", "--dry-run", "-vv"])
        .args(args)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "restic {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("new"))
        .filter_map(|l| l.trim_start().split(", saved in").next())
        .filter(|p| !p.ends_with('/'))
        .filter_map(|p| Some(p.strip_prefix(&format!("{s}/"))?.to_string()))
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn cases(s: &str, l: &[String; 3]) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (v(&["--files-from", &l[0]]), set(&["a.txt", "d/x.txt"])),
        (
            v(&["--files-from-verbatim", &l[1]]),
            set(&["trail.txt ", "d/y.md"]),
        ),
        (v(&["--files-from-raw", &l[2]]), set(&["a.txt", "B.TXT"])),
        (
            v(&[
                "--files-from-raw",
                &l[2],
                "--files-from",
                &l[0],
                &format!("{s}/d/y.md"),
            ]),
            set(&["a.txt", "B.TXT", "d/x.txt", "d/y.md"]),
        ),
        (
            v(&["--iexclude", "*.TXT", s]),
            set(&["trail.txt ", "d/Keep.Log", "d/y.md"]),
        ),
        (
            v(&["--exclude", "*.TXT", s]),
            set(&["a.txt", "trail.txt ", "d/x.txt", "d/Keep.Log", "d/y.md"]),
        ),
        (
            v(&["--iexclude", "/**/D/keep.log", s]),
            set(&["a.txt", "B.TXT", "trail.txt ", "d/x.txt", "d/y.md"]),
        ),
    ]
}

#[test]
fn files_from_and_iexclude_back_up_exactly_these_files() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    let s = src.display().to_string();
    let l = lists(&env, &s);
    env.init();
    for (args, want) in cases(&s, &l) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(tresor_files(&env, &s, &a), want, "{args:?}");
    }
    // --iexclude-file: the same as --iexclude.
    let f = env.path("iex");
    std::fs::write(&f, "# c\n*.TXT\n").unwrap();
    let got = tresor_files(&env, &s, &["--iexclude-file", f.to_str().unwrap(), &s]);
    assert_eq!(got, set(&["trail.txt ", "d/Keep.Log", "d/y.md"]));
    // The glob that matches nothing is a warning naming it.
    let o = env.ok(&["backup", "--files-from", &l[0]]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "warning: pattern \"{s}/nomatch*\" does not match any files, skipping"
        )),
        "{err}"
    );
    // From standard input.
    let mut c = env.cmd();
    c.args(["backup", "--json", "--files-from", "-"]);
    c.stdin(std::fs::File::open(&l[0]).unwrap());
    assert!(c.output().unwrap().status.success());
}

#[test]
fn files_from_and_iexclude_match_restic() {
    if !tresor_testkit::require::require(tresor_testkit::require::Need::Restic) {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    let s = src.display().to_string();
    let l = lists(&env, &s);
    env.init();
    let init = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "init"])
        .env("RESTIC_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(init.status.success());
    for (args, want) in cases(&s, &l) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(restic_files(&env, &s, &a), want, "restic {args:?}");
        assert_eq!(tresor_files(&env, &s, &a), want, "{args:?}");
    }
}

/// `--exclude-larger-than`: files above the size are neither stored nor counted; a file of
/// exactly the size stays; directories stay whatever their size. The same as restic's choice.
#[test]
fn exclude_larger_than_leaves_out_larger_files_like_restic() {
    let env = Env::new();
    let src = env.path("sized");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for (name, len) in [
        ("small", 100),
        ("d/exact", 1024),
        ("d/over", 1025),
        ("big", 5 << 20),
    ] {
        std::fs::write(src.join(name), vec![b'x'; len]).unwrap();
    }
    let s = src.display().to_string();
    env.init();
    for size in ["1k", "1024", "1K"] {
        let got = tresor_files(&env, &s, &["--exclude-larger-than", size, &s]);
        assert_eq!(got, set(&["small", "d/exact"]), "{size}");
    }
    assert_eq!(
        tresor_files(&env, &s, &["--exclude-larger-than", "1m", &s]),
        set(&["small", "d/exact", "d/over"])
    );
    let v = env.backup_json(&[&src], &["--exclude-larger-than", "1k", "--force"], 0);
    assert_eq!(v["total_files_processed"], 2, "{v}");
    assert_eq!(v["total_bytes_processed"], 1124, "{v}");
    for bad in ["1x", "k", "-1", "1.5k"] {
        let o = env.run(&["backup", &format!("--exclude-larger-than={bad}"), &s]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
    }
    if !tresor_testkit::require::require(tresor_testkit::require::Need::Restic) {
        return;
    }
    let init = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "init"])
        .env("RESTIC_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(init.status.success());
    for size in ["1k", "1m"] {
        let args = ["--exclude-larger-than", size, &s];
        assert_eq!(
            restic_files(&env, &s, &args),
            tresor_files(&env, &s, &args),
            "{size}"
        );
    }
}
