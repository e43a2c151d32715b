//! `backup -v` lists the files it saved as restic's verbose backup does (`new       PATH`,
//! `modified  PATH`; with `-vv` also `unchanged PATH` and directories ending in `/`), on
//! standard output before the summary; nothing with `--json` or `--quiet`. Compared with
//! `restic backup -vv` (restic lists only at `-vv`) on the same trees.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use tresor_testkit::prelude::*;

const WORDS: [&str; 3] = ["new       ", "modified  ", "unchanged "];

/// The listing lines of a backup's standard output (every line that starts with a word).
fn listing(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| WORDS.iter().any(|w| l.starts_with(w)))
        .map(str::to_string)
        .collect()
}

/// Run `backup ARGS SRC`, check it succeeded, return its standard output.
fn backup(env: &Env, args: &[&str], src: &str) -> Vec<u8> {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    all.push(src);
    env.ok(&all).stdout
}

fn make(src: &Path) {
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    std::fs::write(src.join("d/b"), "b").unwrap();
    std::fs::write(src.join("d/e/c"), "c").unwrap();
}

/// Let mtimes and ctimes of the next change differ from the last backup's.
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(20));
}

#[test]
fn lists_new_then_modified_and_unchanged_at_vv() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make(&src);
    let s = src.to_str().unwrap();
    let out = backup(&env, &["-v"], s);
    let text = String::from_utf8_lossy(&out).to_string();
    let expected = [
        format!("new       {s}/a"),
        format!("new       {s}/d/b"),
        format!("new       {s}/d/e/c"),
    ];
    let first: Vec<&str> = text.lines().take(3).collect();
    assert_eq!(first, expected, "{text}");
    assert_eq!(listing(&out), expected, "{text}");
    tick();
    std::fs::write(src.join("a"), "a2").unwrap();
    std::fs::write(src.join("d/new"), "n").unwrap();
    let out = backup(&env, &["-v"], s);
    assert_eq!(
        listing(&out),
        [format!("modified  {s}/a"), format!("new       {s}/d/new")]
    );
    tick();
    std::fs::write(src.join("d/b"), "b2").unwrap();
    let out = backup(&env, &["-vv"], s);
    assert_eq!(
        listing(&out),
        [
            format!("unchanged {s}/a"),
            format!("modified  {s}/d/b"),
            format!("unchanged {s}/d/e/c"),
            format!("unchanged {s}/d/e/"),
            format!("unchanged {s}/d/new"),
            format!("modified  {s}/d/"),
            format!("modified  {s}/"),
        ]
    );
    // No listing without -v, with --json -v (status lines) or with --quiet.
    tick();
    std::fs::write(src.join("a"), "a3").unwrap();
    assert_eq!(listing(&backup(&env, &[], s)), Vec::<String>::new());
    std::fs::write(src.join("a"), "a4").unwrap();
    let json = backup(&env, &["--json", "-vv"], s);
    for l in String::from_utf8_lossy(&json).lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    std::fs::write(src.join("a"), "a5").unwrap();
    assert_eq!(backup(&env, &["--quiet", "-vv"], s), b"");
}

#[test]
fn a_hostile_name_is_listed_escaped() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"evil\x1b[31m\nname\xff\\");
    std::fs::write(src.join(name), "x").unwrap();
    let s = src.to_str().unwrap();
    let out = backup(&env, &["-v"], s);
    assert_eq!(
        listing(&out),
        [format!("new       {s}/evil\\x1b[31m\\nname\\xff\\\\")]
    );
    assert!(!out.contains(&0x1b), "{out:?}");
}

/// restic's `new` and `modified` lines of `backup -vv` (paths as printed, `, saved in …` cut).
fn restic_changes(env: &Env, src: &str) -> BTreeSet<String> {
    let o = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "backup", "-vv"])
        .arg(src)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    changes(&o.stdout, src)
}

/// The `new` and `modified` lines at or below `src`, `, saved in …` cut.
fn changes(stdout: &[u8], src: &str) -> BTreeSet<String> {
    listing(stdout)
        .into_iter()
        .filter(|l| !l.starts_with("unchanged"))
        .map(|l| l.split(", saved in").next().unwrap().to_string())
        .filter(|l| l[10..].starts_with(src))
        .collect()
}

#[test]
fn new_and_modified_paths_match_restic() {
    if !tresor_testkit::require::require(tresor_testkit::require::Need::Restic) {
        return;
    }
    let env = Env::new();
    env.init();
    let init = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap(), "init"])
        .env("RESTIC_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(init.status.success());
    let src = env.path("src");
    make(&src);
    std::fs::create_dir_all(src.join("empty")).unwrap();
    let s = src.to_str().unwrap();
    let mine = changes(&backup(&env, &["-vv"], s), s);
    assert_eq!(mine.len(), 7, "{mine:?}");
    assert_eq!(mine, restic_changes(&env, s));
    tick();
    std::fs::write(src.join("d/e/c"), "c2").unwrap();
    std::fs::write(src.join("empty/n"), "n").unwrap();
    let mine = changes(&backup(&env, &["-vv"], s), s);
    assert_eq!(mine.len(), 6, "{mine:?}");
    assert_eq!(mine, restic_changes(&env, s));
}
