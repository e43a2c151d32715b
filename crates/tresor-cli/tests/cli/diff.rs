//! `tresor diff` (issue 15): two snapshots of a tree with every kind of change; the exact lines,
//! the summary, the JSON, and the set of changed paths `restic diff` finds on the same trees.
//!
//! Needs the `restic` binary for the comparison (`tresor_testkit::require`: skipped with a
//! note, a failure when `CI` is set).

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use tresor_testkit::prelude::*;

fn first_tree(src: &Path) {
    for d in ["gone", "same"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("edit"), "e\n").unwrap();
    std::fs::write(src.join("chm"), "c\n").unwrap();
    std::fs::write(src.join("gone/g"), "g\n").unwrap();
    std::fs::write(src.join("same/s"), "s\n").unwrap();
    symlink("edit", src.join("l")).unwrap();
}

/// Every kind of change: content, removed and added directories, a symlink become a file, a
/// mode changed.
fn change_tree(src: &Path) {
    std::fs::write(src.join("edit"), "ee\n").unwrap();
    std::fs::remove_dir_all(src.join("gone")).unwrap();
    std::fs::create_dir(src.join("new")).unwrap();
    std::fs::write(src.join("new/n"), "n\n").unwrap();
    std::fs::remove_file(src.join("l")).unwrap();
    std::fs::write(src.join("l"), "l\n").unwrap();
    std::fs::set_permissions(src.join("chm"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn backup(env: &Env, src: &str) -> String {
    let o = env.ok(&["backup", "--json", "--force", src]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["snapshot_id"].as_str().unwrap().to_string()
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

const CHANGES: &[&str] = &[
    "M    /edit",
    "-    /gone/",
    "-    /gone/g",
    "T    /l",
    "+    /new/",
    "+    /new/n",
];

#[test]
fn every_kind_of_change_and_restic_agrees() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let s = src.to_str().unwrap();
    first_tree(&src);
    let one = backup(&env, s);
    change_tree(&src);
    let two = backup(&env, s);
    let (a, b) = (format!("{one}:{s}"), format!("{two}:{s}"));
    let json = env.ok(&["diff", "--json", &a, &b]);
    let docs: Vec<serde_json::Value> = text(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats = docs.last().unwrap();
    super::json_contract::check("diff statistics", stats);
    assert_eq!(stats["message_type"], "statistics");
    assert_eq!(stats["source_snapshot"], one.as_str());
    assert_eq!(stats["target_snapshot"], two.as_str());
    assert_eq!(stats["changed_files"], 1);
    let (added, removed) = (stats["added"].clone(), stats["removed"].clone());
    // Data: "ee\n", "n\n", "l\n" new; "e\n", "g\n" gone. Trees: the two src trees, new, gone.
    let counts = |c: &serde_json::Value| {
        ["files", "dirs", "others", "data_blobs", "tree_blobs"].map(|k| c[k].as_u64().unwrap())
    };
    assert_eq!(counts(&added), [1, 1, 0, 3, 2]);
    assert_eq!(counts(&removed), [1, 1, 0, 2, 2]);
    let (ab, rb) = (
        added["bytes"].as_u64().unwrap(),
        removed["bytes"].as_u64().unwrap(),
    );
    assert!(ab > 7 && rb > 4, "{stats}");
    let changes: Vec<String> = docs[..docs.len() - 1]
        .iter()
        .map(|d| {
            assert_eq!(d["message_type"], "change");
            super::json_contract::check("diff", d);
            format!(
                "{:<5}{}",
                d["modifier"].as_str().unwrap(),
                d["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(changes, CHANGES);
    let summary = format!(
        "\nFiles:           1 new,     1 removed,     1 changed\n\
         Dirs:            1 new,     1 removed\n\
         Others:          0 new,     0 removed\n\
         Data Blobs:      3 new,     2 removed\n\
         Tree Blobs:      2 new,     2 removed\n  Added:   {ab} B\n  Removed: {rb} B\n"
    );
    let plain = env.ok(&["diff", &a, &b]);
    let heading = format!("comparing snapshot {} to {}:\n\n", &one[..8], &two[..8]);
    assert_eq!(
        text(&plain),
        format!("{heading}{}\n{summary}", CHANGES.join("\n"))
    );
    let meta = env.ok(&["diff", "--quiet", "--metadata", &a, &b]);
    let mut with_u = vec!["U    /chm"];
    with_u.extend_from_slice(CHANGES);
    assert_eq!(text(&meta), format!("{}\n{summary}", with_u.join("\n")));
    // A snapshot compared with itself: nothing.
    let same = env.ok(&["diff", "--quiet", &one, &one]);
    assert!(text(&same).starts_with("\nFiles:           0 new,     0 removed,     0 changed\n"));
    let bad = env
        .cmd()
        .args(["diff", &format!("{one}:{s}/edit"), &b])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a directory"),
        "{bad:?}"
    );
    if tresor_testkit::require::require(tresor_testkit::require::Need::Restic) {
        let paths = |lines: &[&str]| -> BTreeSet<String> {
            lines.iter().map(|l| l[5..].to_string()).collect()
        };
        assert_eq!(restic_changes(&env, &src, s), paths(CHANGES));
    }
}

/// The paths `restic diff` reports (below `src`) for the same two trees backed up by restic.
fn restic_changes(env: &Env, src: &Path, s: &str) -> BTreeSet<String> {
    let restic = |args: &[&str]| {
        let o = Command::new("restic")
            .args(["-r", env.path("restic").to_str().unwrap(), "--json"])
            .args(args)
            .env("RESTIC_PASSWORD", "x")
            .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
            .output()
            .unwrap();
        assert!(o.status.success(), "restic {args:?}: {o:?}");
        text(&o)
    };
    restic(&["init"]);
    std::fs::remove_dir_all(src).unwrap();
    first_tree(src);
    let id = |out: String| {
        let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        last["snapshot_id"].as_str().unwrap().to_string()
    };
    let one = id(restic(&["backup", s]));
    change_tree(src);
    let two = id(restic(&["backup", s]));
    restic(&["diff", &one, &two])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["message_type"] == "change")
        .map(|v| {
            v["path"]
                .as_str()
                .unwrap()
                .strip_prefix(s)
                .unwrap()
                .to_string()
        })
        .collect()
}
