//! `ls SNAPSHOT PATH...` by restic's rule: each path and its direct children, everything below
//! with `--recursive`, the directories on the way not listed; compared line for line with
//! `restic ls` of the same tree (needs the `restic` binary; fails in CI without it).

use tresor_testkit::prelude::*;

use std::path::Path;
use std::process::Command;

fn make_tree(src: &Path) {
    for d in ["a/x/y", "c"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for f in [
        "a/f.txt",
        "a/x/deep.txt",
        "a/x/y/deeper.txt",
        "b.txt",
        "ab.txt",
    ] {
        std::fs::write(src.join(f), f.as_bytes()).unwrap();
    }
}

/// The listed paths (lines starting with `/`) of `ls` by either tool.
fn paths(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(str::to_string)
        .collect()
}

fn restic(env: &Env, args: &[&str]) -> std::process::Output {
    let o = Command::new("restic")
        .args(["-r", env.path("restic").to_str().unwrap()])
        .args(args)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "restic {args:?}: {o:?}");
    o
}

/// What tresor lists for the cases, with an exact expectation for the first ones.
#[test]
fn ls_paths_list_direct_children_unless_recursive() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    env.backup_json(&[&src], &[], 0);
    let s = src.display().to_string();
    let ls = |extra: &[&str]| paths(&env.ok(&[&["ls", "latest"], extra].concat()).stdout);
    let a = format!("{s}/a");
    let want: Vec<String> = ["", "/f.txt", "/x"]
        .iter()
        .map(|p| format!("{a}{p}"))
        .collect();
    assert_eq!(ls(&[&a]), want);
    let want: Vec<String> = ["", "/f.txt", "/x", "/x/deep.txt", "/x/y", "/x/y/deeper.txt"]
        .iter()
        .map(|p| format!("{a}{p}"))
        .collect();
    assert_eq!(ls(&[&a, "--recursive"]), want);
    // A file; two paths (listed in tree order); `/`: the top level only.
    let f = format!("{s}/b.txt");
    assert_eq!(ls(&[&f]), std::slice::from_ref(&f));
    let both = ls(&[&f, &format!("{s}/a/x/")]);
    let want = [
        format!("{a}/x"),
        format!("{a}/x/deep.txt"),
        format!("{a}/x/y"),
        f,
    ];
    assert_eq!(both, want);
    let top = src
        .components()
        .nth(1)
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    assert_eq!(ls(&["/"]), [format!("/{top}")]);
    // Not a prefix match: /…/a does not hold /…/ab.txt.
    assert!(
        !ls(&[&a, "--recursive"])
            .iter()
            .any(|p| p.ends_with("ab.txt"))
    );
}

/// The same listings as restic's `ls` on the same tree.
#[test]
fn ls_paths_match_restic() {
    if !tresor_testkit::require::require(tresor_testkit::require::Need::Restic) {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    env.backup_json(&[&src], &[], 0);
    restic(&env, &["init"]);
    restic(&env, &["backup", src.to_str().unwrap()]);
    let s = src.display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["/".into()],
        vec![s.clone()],
        vec![format!("{s}/a")],
        vec![format!("{s}/a"), "--recursive".into()],
        vec![format!("{s}/a/x"), format!("{s}/b.txt")],
        vec![format!("{s}/c")],
        vec![format!("{s}/a/f.txt")],
        vec![s.clone(), "--recursive".into()],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let ours = paths(&env.ok(&[&["ls", "latest"], &args[..]].concat()).stdout);
        let theirs = paths(&restic(&env, &[&["ls", "latest"], &args[..]].concat()).stdout);
        assert_eq!(ours, theirs, "ls {case:?}");
        assert!(!ours.is_empty() || case.is_empty());
    }
}
