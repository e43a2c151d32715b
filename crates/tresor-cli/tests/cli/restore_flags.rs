//! `restore --dry-run` and `--delete` (restic's flags): the dry run lists every entry and what
//! would be done with it and leaves the target (and a missing target) untouched; `--delete`
//! removes what the snapshot lacks — only what the patterns select, a symlink pointing out of
//! the target itself and never what it points to.

use tresor_testkit::prelude::*;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Every path below `dir` (relative) with its mode, size, mtime and content (a symlink: its
/// target).
fn state(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                stack.push(p.clone());
                vec![]
            };
            let v = (m.mode(), m.size(), m.mtime(), m.mtime_nsec(), content);
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), v);
        }
    }
    out
}

/// Paths and contents only (what restore must reproduce here).
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    state(dir).into_iter().map(|(p, v)| (p, v.4)).collect()
}

/// src: a.txt, d/b.txt, d/e/c.txt, link -> a.txt; backed up; returns the subpath argument.
fn snapshot(env: &Env) -> String {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("d/b.txt"), b"bravo").unwrap();
    std::fs::write(src.join("d/e/c.txt"), b"charlie").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    env.init();
    env.backup_json(&[&src], &[], 0);
    format!("latest:{}", src.display())
}

/// A target holding: a.txt as in the snapshot, d/b.txt changed, d/extra.txt and d/notes.keep
/// that the snapshot lacks, and d/escape, a symlink to a directory outside the target.
fn target(env: &Env) -> (PathBuf, PathBuf) {
    let (t, outside) = (env.path("t"), env.path("outside"));
    std::fs::create_dir_all(t.join("d")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious"), b"keep me").unwrap();
    std::fs::write(t.join("a.txt"), b"alpha").unwrap();
    std::fs::write(t.join("d/b.txt"), b"BRAVO!").unwrap();
    std::fs::write(t.join("d/extra.txt"), b"extra").unwrap();
    std::fs::write(t.join("d/notes.keep"), b"notes").unwrap();
    std::os::unix::fs::symlink(&outside, t.join("d/escape")).unwrap();
    (t, outside)
}

fn lines(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dry_run_lists_every_action_and_writes_nothing() {
    let env = Env::new();
    let snap = snapshot(&env);
    let (t, outside) = target(&env);
    let (before, outside_before) = (state(&t), state(&outside));
    let ts = t.display().to_string();
    let args = ["restore", &snap, "--target", &ts, "--dry-run", "--delete"];
    let o = env.ok(&[&args[..], &["--exclude", "*.keep"]].concat());
    let want = [
        format!("unchanged {ts}/a.txt"),
        format!("update    {ts}/d/b.txt"),
        format!("restore   {ts}/d/e"),
        format!("restore   {ts}/d/e/c.txt"),
        format!("delete    {ts}/d/escape"),
        format!("delete    {ts}/d/extra.txt"),
        format!("restore   {ts}/link"),
    ];
    let got = lines(&o);
    assert_eq!(got[..want.len()], want[..], "{got:#?}");
    assert!(
        got[want.len()].starts_with("dry run of snapshot "),
        "{got:#?}"
    );
    assert!(
        got[want.len()].ends_with(&format!(
            " to {ts}: would restore 3, update 1, leave 1 unchanged, keep 0, delete 2; nothing written"
        )),
        "{got:#?}"
    );
    // The storage requests the dry run made (reads only): the last line.
    assert!(got[want.len() + 1].starts_with("Requests: "), "{got:#?}");
    assert!(got[want.len() + 1].contains(" 0 PUT"), "{got:#?}");
    assert_eq!(got.len(), want.len() + 2);
    assert_eq!(state(&t), before, "the dry run changed the target");
    assert_eq!(state(&outside), outside_before);

    // JSON: the same actions.
    let o = env.ok(&[&args[..], &["--exclude", "*.keep", "--json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    let acts: Vec<String> = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{:<9} {}",
                a["action"].as_str().unwrap(),
                a["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(acts, want);
    assert_eq!(state(&t), before);

    // A missing target stays missing; everything would be restored.
    let none = env.path("none");
    let ns = none.display().to_string();
    let o = env.ok(&["restore", &snap, "--target", &ns, "--dry-run", "--delete"]);
    let got = lines(&o);
    let want: Vec<String> = ["a.txt", "d", "d/b.txt", "d/e", "d/e/c.txt", "link"]
        .iter()
        .map(|p| format!("restore   {ns}/{p}"))
        .collect();
    assert_eq!(got[..want.len()], want[..], "{got:#?}");
    assert!(!none.exists() && std::fs::symlink_metadata(&none).is_err());
}

#[test]
fn delete_removes_what_the_snapshot_lacks_and_nothing_outside() {
    let env = Env::new();
    let snap = snapshot(&env);
    let (t, outside) = target(&env);
    let outside_before = state(&outside);
    let ts = t.display().to_string();
    let o = env.ok(&[
        "restore",
        &snap,
        "--target",
        &ts,
        "--delete",
        "--exclude",
        "*.keep",
    ]);
    let got = lines(&o);
    assert_eq!(
        got[..2],
        [
            format!("delete    {ts}/d/escape"),
            format!("delete    {ts}/d/extra.txt")
        ],
        "{got:#?}"
    );
    let mut want = contents(&env.path("src"));
    // Excluded from the restore, so not deleted either (restic's rule).
    want.insert("d/notes.keep".into(), b"notes".to_vec());
    assert_eq!(contents(&t), want);
    assert_eq!(
        state(&outside),
        outside_before,
        "delete reached outside the target"
    );

    // Without --delete nothing is removed.
    std::fs::write(t.join("d/extra.txt"), b"extra").unwrap();
    env.ok(&["restore", &snap, "--target", &ts]);
    assert_eq!(std::fs::read(t.join("d/extra.txt")).unwrap(), b"extra");
    // Without the exclude, the unselected file goes too; a second run deletes nothing.
    let o = env.ok(&["restore", &snap, "--target", &ts, "--delete"]);
    assert_eq!(
        lines(&o)[..2],
        [
            format!("delete    {ts}/d/extra.txt"),
            format!("delete    {ts}/d/notes.keep")
        ]
    );
    assert_eq!(contents(&t), contents(&env.path("src")));
    let o = env.ok(&["restore", &snap, "--target", &ts, "--delete"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("delete "));
}
