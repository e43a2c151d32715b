//! Names reach people escaped and JSON exactly (docs/cli.md "Names in output"): a tree of
//! hostile names — escape sequences, line breaks, bidirectional controls, bytes that are not
//! UTF-8 — backed up, listed, checked after damage and restored; no command puts a control
//! character on the terminal, and `ls --json` gives every name's bytes back exactly.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tresor_testkit::prelude::*;

/// (raw name, how people see it)
const NAMES: &[(&[u8], &str)] = &[
    (b"d\x1b[31mred", r"d\x1b[31mred"),
    (b"new\nline", r"new\nline"),
    (b"bad\xff\xfe", r"bad\xff\xfe"),
    (b"bell\x07\rcr", r"bell\x07\rcr"),
    ("evil\u{202e}txt.exe".as_bytes(), r"evil\u{202e}txt.exe"),
    (b"back\\slash", r"back\\slash"),
    ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
];

fn write_tree(src: &Path) {
    std::fs::create_dir_all(src).unwrap();
    for (i, (raw, _)) in NAMES.iter().enumerate() {
        let p = src.join(OsStr::from_bytes(raw));
        std::fs::write(&p, pseudo_random(i as u64, 3000 + i)).unwrap();
    }
    let link = src.join("link");
    std::os::unix::fs::symlink(OsStr::from_bytes(b"/tmp/\x1b]0;title\x07\xff"), link).unwrap();
}

/// No control character, nor a character that hides text, in `out`.
fn assert_clean(what: &str, out: &[u8]) {
    let text = String::from_utf8(out.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
    for line in text.lines() {
        let bad = line
            .chars()
            .find(|c| c.is_control() || ('\u{2028}'..='\u{202e}').contains(c));
        assert!(bad.is_none(), "{what}: raw {bad:?} in {line:?}");
    }
}

#[test]
fn hostile_names_are_escaped_for_people_and_exact_in_json() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    write_tree(&src);
    // A backup path that does not exist, with a line break in it: the warning is one line.
    let missing = env.path("gone\nwarning: forged");
    let o = env.run_code(
        &["backup", src.to_str().unwrap(), missing.to_str().unwrap()],
        3,
    );
    assert_clean("backup stdout", &o.stdout);
    assert_clean("backup stderr", &o.stderr);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("\nwarning: forged"), "{err}");
    assert!(err.contains(r"gone\nwarning: forged"), "{err}");

    // ls: every name by the rule, one line each.
    let o = env.ok(&["ls", "latest"]);
    assert_clean("ls", &o.stdout);
    let out = String::from_utf8_lossy(&o.stdout);
    let base = src.display().to_string();
    for (_, shown) in NAMES {
        let line = format!("{base}/{shown}");
        assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
    }
    let o = env.ok(&["ls", "-l", "latest"]);
    assert_clean("ls -l", &o.stdout);

    // An error that ends a command, naming what the user typed: one clean line.
    let o = env.run(&["ls", "latest", "/no\x1b[2J\nerror: forged"]);
    assert_ne!(o.status.code(), Some(0));
    assert_clean("ls error", &o.stderr);
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);

    // ls --json: the exact bytes of every name, path and target.
    let o = env.ok(&["ls", "--json", "latest"]);
    let mut seen = 0;
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(name) = v.get("name") else { continue };
        let exact = |field: &str, text: &serde_json::Value| match v.get(format!("{field}_hex")) {
            Some(h) => hex::decode(h.as_str().unwrap()).unwrap(),
            None => text.as_str().unwrap().as_bytes().to_vec(),
        };
        let name = exact("name", name);
        let path = exact("path", &v["path"]);
        if let Some((raw, _)) = NAMES.iter().find(|(raw, _)| *raw == name.as_slice()) {
            assert_eq!(path, [base.as_bytes(), b"/", raw].concat());
            seen += 1;
        }
        if name == b"link" {
            assert_eq!(exact("target", &v["target"]), b"/tmp/\x1b]0;title\x07\xff");
        }
    }
    assert_eq!(seen, NAMES.len());

    // check after damage (the data pack lost, the trees kept) names the files by the rule.
    let mut packs: Vec<_> = std::fs::read_dir(env.repo.join("data"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.path())
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    std::fs::remove_file(packs.pop().unwrap()).unwrap();
    let o = env.run_code(&["check"], 5);
    assert_clean("check stdout", &o.stdout);
    assert_clean("check stderr", &o.stderr);

    // restore of the damaged snapshot: every error line names its file escaped.
    let target = env.path("t");
    let o = env.run_code(
        &["restore", "latest", "--target", target.to_str().unwrap()],
        5,
    );
    assert_clean("restore stdout", &o.stdout);
    assert_clean("restore stderr", &o.stderr);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(r"/new\nline"), "{err}");
}
