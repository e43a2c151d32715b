//! Paths inside a snapshot given on the command line as bytes (issue 15): a name that is not
//! UTF-8 (`\xff`) or holds a newline is addressed by `ls`, `dump`, `restore`, `diff`, and
//! given to `backup` by `--files-from-raw` / `--files-from-verbatim`; an exclude file that is
//! not UTF-8 is one error line naming FILE:LINE.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::Output;
use tresor_testkit::prelude::*;

const CONTENT: &[u8] = b"bytes \xff\x00 and a line\n";
const NL_CONTENT: &[u8] = b"newline name\n";

/// src/d/\xff/f\xfe (CONTENT) and src/d/nl\nname (NL_CONTENT).
fn make_tree(src: &Path) {
    let odd = src.join("d").join(OsStr::from_bytes(b"\xff"));
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join(OsStr::from_bytes(b"f\xfe")), CONTENT).unwrap();
    std::fs::write(src.join("d/nl\nname"), NL_CONTENT).unwrap();
}

/// `base` followed by the bytes `tail`.
fn join(base: &[u8], tail: &[u8]) -> OsString {
    OsString::from_vec([base, tail].concat())
}

/// Run tresor with `args` (any bytes), requiring exit code `code`.
fn run(env: &Env, args: &[&OsStr], code: i32) -> Output {
    let o = env.cmd().args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "tresor {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The listed paths (lines starting with `/`) of `ls`.
fn listed(o: &Output) -> Vec<String> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// An env with the tree backed up; returns it and the source path's bytes.
fn backed_up() -> (Env, Vec<u8>) {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    env.backup_json(&[&src], &[], 0);
    let s = src.as_os_str().as_bytes().to_vec();
    (env, s)
}

#[test]
fn ls_lists_a_path_that_is_not_utf8_or_holds_a_newline() {
    let (env, s) = backed_up();
    let shown = String::from_utf8(s.clone()).unwrap();
    let o = run(&env, &[os("ls"), os("latest"), &join(&s, b"/d/\xff")], 0);
    let want = [
        format!("{shown}/d/\\xff"),
        format!("{shown}/d/\\xff/f\\xfe"),
    ];
    assert_eq!(listed(&o), want);
    let o = run(
        &env,
        &[os("ls"), os("latest"), &join(&s, b"/d/nl\nname")],
        0,
    );
    assert_eq!(listed(&o), [format!("{shown}/d/nl\\nname")]);
    // A path the snapshot lacks is still an error naming it by the display rule.
    let o = run(&env, &[os("ls"), os("latest"), &join(&s, b"/d/\xfe")], 1);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains(&format!("{shown}/d/\\xfe: no such path in the snapshot")),
        "{err}"
    );
}

#[test]
fn dump_writes_the_exact_bytes_of_such_paths() {
    let (env, s) = backed_up();
    let o = run(
        &env,
        &[
            os("dump"),
            &join(b"latest:", &join(&s, b"/d/\xff/f\xfe").into_vec()),
        ],
        0,
    );
    assert_eq!(o.stdout, CONTENT);
    let o = run(
        &env,
        &[
            os("dump"),
            &join(b"latest:", &join(&s, b"/d/nl\nname").into_vec()),
        ],
        0,
    );
    assert_eq!(o.stdout, NL_CONTENT);
}

#[test]
fn restore_of_such_a_subpath_is_byte_identical() {
    let (env, s) = backed_up();
    let t = env.path("t");
    let spec = join(b"latest:", &join(&s, b"/d/\xff").into_vec());
    run(
        &env,
        &[os("restore"), &spec, os("--target"), t.as_os_str()],
        0,
    );
    let got = std::fs::read(t.join(OsStr::from_bytes(b"f\xfe"))).unwrap();
    assert_eq!(got, CONTENT);
    let names: Vec<OsString> = std::fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [OsString::from_vec(b"f\xfe".to_vec())]);
    let t2 = env.path("t2");
    let spec = join(b"latest:", &join(&s, b"/d/nl\nname").into_vec());
    run(
        &env,
        &[os("restore"), &spec, os("--target"), t2.as_os_str()],
        0,
    );
    assert_eq!(std::fs::read(t2.join("nl\nname")).unwrap(), NL_CONTENT);
}

#[test]
fn diff_of_a_directory_that_is_not_utf8() {
    let (env, s) = backed_up();
    let src = env.path("src");
    let odd = src.join(OsStr::from_bytes(b"d/\xff"));
    std::fs::write(odd.join(OsStr::from_bytes(b"f\xfe")), b"changed").unwrap();
    std::fs::write(odd.join("new"), b"n").unwrap();
    env.backup_json(&[&src], &["--force"], 0);
    let ids = env.snapshot_ids();
    let side = |id: &str| {
        join(
            format!("{id}:").as_bytes(),
            &join(&s, b"/d/\xff").into_vec(),
        )
    };
    let o = run(&env, &[os("diff"), &side(&ids[0]), &side(&ids[1])], 0);
    let text = String::from_utf8(o.stdout).unwrap();
    let changes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(['M', '+', '-']))
        .collect();
    assert_eq!(changes, ["M    /f\\xfe", "+    /new"]);
}

#[test]
fn backup_files_from_raw_and_verbatim_take_such_paths() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    let s = src.as_os_str().as_bytes().to_vec();
    let shown = String::from_utf8(s.clone()).unwrap();
    let raw = env.path("raw.list");
    std::fs::write(&raw, [&s[..], b"/d/nl\nname\0"].concat()).unwrap();
    let verbatim = env.path("verbatim.list");
    std::fs::write(&verbatim, [&s[..], b"/d/\xff/f\xfe\n"].concat()).unwrap();
    let args: [&OsStr; 5] = [
        os("backup"),
        os("--files-from-raw"),
        raw.as_os_str(),
        os("--files-from-verbatim"),
        verbatim.as_os_str(),
    ];
    run(&env, &args, 0);
    let o = run(
        &env,
        &[os("ls"), os("latest"), os("--recursive"), &join(&s, b"/d")],
        0,
    );
    let want = [
        format!("{shown}/d"),
        format!("{shown}/d/nl\\nname"),
        format!("{shown}/d/\\xff"),
        format!("{shown}/d/\\xff/f\\xfe"),
    ];
    assert_eq!(listed(&o), want);
    let spec = join(b"latest:", &join(&s, b"/d/\xff/f\xfe").into_vec());
    assert_eq!(run(&env, &[os("dump"), &spec], 0).stdout, CONTENT);
}

#[test]
fn an_exclude_file_that_is_not_utf8_is_one_line_naming_file_and_line() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    let ex = env.path("ex.txt");
    std::fs::write(&ex, b"# fine\n*.tmp\nbad\xff\n").unwrap();
    for flag in ["--exclude-file", "--iexclude-file"] {
        let args = [os("backup"), os(flag), ex.as_os_str(), src.as_os_str()];
        let o = run(&env, &args, 1);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        let want = format!("{}:3: exclude patterns must be UTF-8 text", ex.display());
        assert!(err.contains(&want), "{err}");
    }
    assert!(env.snapshot_ids().is_empty());
}
