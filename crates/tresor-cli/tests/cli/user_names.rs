//! Names that users give on the command line and that become tree node names (format §10):
//! `--stdin-filename` must be one valid name; backup paths are normalised (`.`, `..`, `//`,
//! trailing slashes) so that only plain components enter the tree. Also the bounds of the
//! Argon2id flags.

use tresor_testkit::prelude::*;

use std::io::Write;
use std::process::Stdio;

/// `backup --stdin --stdin-filename NAME` fed `input`; returns (exit code, stderr).
fn backup_stdin(env: &Env, name: &str, input: &[u8]) -> (Option<i32>, String) {
    let mut child = env
        .cmd()
        .args(["backup", "--stdin", "--stdin-filename", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse before it reads: a closed pipe is not an error here.
    let _ = child.stdin.take().unwrap().write_all(input);
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Names of the objects of one kind in the repository.
fn objects(env: &Env, dir: &str) -> Vec<String> {
    match std::fs::read_dir(env.repo.join(dir)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn stdin_filename_must_be_one_valid_name() {
    let env = Env::new();
    env.init();
    for name in [
        "../../../../tmp/x",
        "..",
        ".",
        "",
        "a/b",
        "/etc/passwd",
        "x/",
    ] {
        let (code, err) = backup_stdin(&env, name, b"payload");
        assert_eq!(code, Some(2), "{name:?}: {err}");
        assert!(
            err.contains(&format!("invalid value '{name}' for '--stdin-filename"))
                && err.contains("a file name must not be empty, `.` or `..`, nor hold `/` or NUL"),
            "{name:?}: {err}"
        );
    }
    // Nothing was written: no marker, no pack, no snapshot.
    for dir in ["markers", "data", "snapshots", "index"] {
        let found: Vec<_> = objects(&env, dir)
            .into_iter()
            .filter(|n| n.len() == 64 || n.len() == 2)
            .collect();
        assert!(found.is_empty(), "{dir}: {found:?}");
    }
    // A plain name (even odd ones) works and lists as given.
    for name in ["db.sql", "...", " lead space", "ünï"] {
        let (code, err) = backup_stdin(&env, name, name.as_bytes());
        assert_eq!(code, Some(0), "{name:?}: {err}");
        let o = env.ok(&["ls", "latest"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("/{name}\n"));
    }
}

#[test]
fn backup_paths_are_normalised() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub/inner")).unwrap();
    std::fs::write(src.join("sub/inner/f"), b"content").unwrap();
    // `//`, `.`, `..` and a trailing slash: the snapshot holds the plain path.
    let messy = format!("{}//sub/./inner/../inner/", src.display());
    let want = src.join("sub/inner");
    env.ok(&["backup", "-q", &messy]);
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[0]["paths"],
        serde_json::json!([want.display().to_string()])
    );
    let o = env.ok(&["ls", "latest", &want.display().to_string()]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        listed,
        format!("{}\n{}/f\n", want.display(), want.display()),
        "{listed}"
    );
    // A relative path with `..` is resolved against the working directory.
    let o = env
        .cmd()
        .current_dir(src.join("sub/inner"))
        .args(["backup", "--json", "../inner/./f"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[1]["paths"],
        serde_json::json!([want.join("f").display().to_string()])
    );
}

/// `backup /` backs up the machine: the root tree is the listing of `/`. Everything but this
/// test's own directory is excluded (top-level entries, then the other entries of its parent),
/// so the test stays small; the restored directory equals the source.
#[test]
fn backing_up_slash_itself_gives_the_listing_of_slash() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"under slash").unwrap();
    let mut args: Vec<String> = vec!["backup".into(), "--json".into()];
    let mut keep = src.clone();
    while let Some(parent) = keep.parent() {
        for e in std::fs::read_dir(parent).unwrap() {
            let p = e.unwrap().path();
            if p != keep {
                args.push(format!("--exclude={}", p.display()));
            }
        }
        keep = parent.to_path_buf();
    }
    args.push("/".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&a);
    let ls = env.ok(&["ls", "latest", "/"]);
    let top = String::from_utf8_lossy(&ls.stdout);
    let first = src
        .components()
        .nth(1)
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    assert!(
        top.lines().any(|l| l.ends_with(&format!("/{first}"))),
        "{top}"
    );
    let target = env.path("restored");
    let spec = format!("latest:{}", src.display());
    env.ok(&["restore", &spec, "--target", target.to_str().unwrap()]);
    assert_eq!(std::fs::read(target.join("d/f")).unwrap(), b"under slash");
    let v: serde_json::Value =
        serde_json::from_slice(&env.ok(&["snapshots", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["paths"], serde_json::json!(["/"]));
}

#[test]
fn kdf_flags_are_bounded() {
    let env = Env::new();
    let o = env.run_code(&["init", "--kdf-memory-kib", "2097153"], 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2097153 is not in 8192..=2097152"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.run_code(&["init", "--kdf-iterations", "65"], 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("65 is not in 1..=64"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.run_code(
        &[
            "init",
            "--kdf-memory-kib",
            "1048576",
            "--kdf-iterations",
            "3",
        ],
        1,
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "tresor: --kdf-memory-kib × --kdf-iterations = 3145728 KiB: readers refuse key files that cost more than 2097152 KiB (format §4)\n"
    );
    assert!(!env.repo.join("config").exists());
}
