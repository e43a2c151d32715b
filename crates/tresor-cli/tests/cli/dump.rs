//! `tresor dump` (issue 15): a directory as tar, extracted by GNU tar, equals the source field
//! by field; a file to standard output equals its bytes; zip read back by Python's zipfile
//! holds the same names and bytes; a put-only key is refused, and its snapshots' privileged
//! bits are withheld; hostile names never become archive paths.
//!
//! Needs GNU `tar` and `python3` (failures, not skips, when missing).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tresor_core::Repository;
use tresor_format::blob::BlobType;
use tresor_testkit::craft::*;
use tresor_testkit::prelude::*;
use tresor_testkit::tree::Entry;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The scan of a tree as a tar archive can hold it: no sockets.
fn as_tar_holds(mut m: BTreeMap<Vec<u8>, Entry>) -> BTreeMap<Vec<u8>, Entry> {
    m.retain(|_, e| e.kind != "socket");
    m
}

fn gnu_tar_extract(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let o = Command::new("tar")
        .args([
            "-x",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-f",
        ])
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .expect("GNU tar runs");
    assert!(o.status.success(), "tar -x: {}", text(&o.stderr));
}

#[test]
fn tar_of_every_file_type_extracts_to_the_source() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    let before = as_tar_holds(scan(&src, is_root()));
    let s = env.backup_json(&[&src], &[], 0);
    assert_eq!(s["errors"], 0, "{s}");
    let out = env.path("out.tar");
    let o = env.ok(&[
        "dump",
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["message_type"], "summary");
    assert_eq!(v["archive"], "tar");
    assert_eq!(v["hardlinks"], 2, "{v}");
    assert_eq!(v["skipped"], 1, "the socket: {v}");
    assert_eq!(v["withheld"], 0, "a full key's snapshot: {v}");
    crate::json_contract::check("dump", &v);
    let x = env.path("x");
    gnu_tar_extract(&out, &x);
    let after = scan(&x.join(src.strip_prefix("/").unwrap()), is_root());
    assert_same(&before, &after);
    assert!(
        after[&b"sparse"[..]].sparse,
        "the sparse file extracts sparse"
    );
    assert_eq!(
        after[&b"hard-b"[..]].link_group,
        Some(b"dir/hard-c".to_vec()),
        "hard links share an inode"
    );
    // No temporary file is left beside the target.
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.as_bytes().starts_with(b".tresor-dump-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_directory_to_stdout_and_a_file_as_its_bytes() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    env.backup_json(&[&src], &[], 0);
    let s = src.to_str().unwrap();
    for f in ["dir/big.bin", "empty", "sparse", "new\nline"] {
        let o = env.ok(&["dump", &format!("latest:{s}/{f}")]);
        assert!(o.stdout == std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    // With --target and --json: the summary of a single file.
    let t = env.path("big.out");
    let o = env.ok(&[
        "dump",
        &format!("latest:{s}/dir/big.bin/"),
        "-t",
        t.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    crate::json_contract::check("dump", &v);
    assert_eq!(v["single_file"], true);
    assert_eq!(v["archive"], serde_json::Value::Null);
    assert_eq!(v["path"], format!("{s}/dir/big.bin"));
    assert_eq!(v["bytes"], 9 * 1024 * 1024 + 123);
    assert!(std::fs::read(&t).unwrap() == std::fs::read(src.join("dir/big.bin")).unwrap());
    let o = env.ok(&["dump", &format!("latest:{s}/dir")]);
    let tar = env.path("dir.tar");
    std::fs::write(&tar, &o.stdout).unwrap();
    let x = env.path("x");
    gnu_tar_extract(&tar, &x);
    let mut want = as_tar_holds(scan(&src.join("dir"), is_root()));
    // hard-c's other names are outside dir: here it is a file of its own.
    want.get_mut(&b"hard-c"[..]).unwrap().link_group = None;
    assert_same(&want, &scan(&x, is_root()));
    // Not a file or directory; not in the snapshot.
    let o = env.run(&["dump", &format!("latest:{s}/link-rel")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("neither a file nor a directory"));
    let o = env.run(&["dump", &format!("latest:{s}/nothing")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
}

/// Python's zipfile: every entry's raw name, Unix mode and bytes.
const ZIP_LIST: &str = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    raw = i.orig_filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
    sys.stdout.buffer.write(raw.hex().encode() + b" %o " % (i.external_attr >> 16) + z.read(i).hex().encode() + b"\n")
"#;

#[test]
fn zip_reads_back_with_the_same_names_and_bytes() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    env.backup_json(&[&src], &[], 0);
    let out = env.path("out.zip");
    let spec = format!("latest:{}", src.to_str().unwrap());
    env.ok(&[
        "dump",
        &spec,
        "--archive",
        "zip",
        "-t",
        out.to_str().unwrap(),
    ]);
    let o = Command::new("python3")
        .args(["-c", ZIP_LIST])
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut got = BTreeMap::new();
    for line in text(&o.stdout).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let mode = u32::from_str_radix(f[1], 8).unwrap();
        got.insert(
            hex::decode(f[0]).unwrap(),
            (mode, hex::decode(f[2]).unwrap()),
        );
    }
    let mut want = BTreeMap::new();
    for (path, e) in scan(&src, false) {
        let p = src.join(std::ffi::OsStr::from_bytes(&path));
        let (kind, data) = match e.kind.as_str() {
            "file" => (0o100_000, std::fs::read(&p).unwrap()),
            "symlink" => (0o120_000, e.target.clone().unwrap()),
            "dir" => (0o040_000, Vec::new()),
            _ => continue,
        };
        let mode = if e.kind == "symlink" { 0o777 } else { e.mode };
        let name = if e.kind == "dir" {
            [&path[..], b"/"].concat()
        } else {
            path
        };
        want.insert(name, (kind | mode, data));
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in &want {
        assert!(
            got[k] == *w,
            "{}: mode {:o} vs {:o}",
            text(k),
            got[k].0,
            w.0
        );
    }
}

#[test]
fn put_only_keys_cannot_dump_and_their_privileged_bits_are_withheld() {
    let env = Env::new();
    env.init();
    let pw = env.password_file("put.pw", "put-only password");
    env.ok(&[
        "key",
        "add",
        "--put-only",
        "--host",
        "h",
        "--new-password-file",
        pw.to_str().unwrap(),
    ]);
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("suid"), b"s").unwrap();
    std::fs::set_permissions(
        src.join("suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    let put = |args: &[&str]| {
        env.cmd()
            .env("TRESOR_PASSWORD", "put-only password")
            .args(args)
            .output()
            .unwrap()
    };
    let o = put(&["backup", "--host", "h", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = put(&["dump", "latest", "-t", env.path("no.tar").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(13), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("put-only key"),
        "{}",
        text(&o.stderr)
    );
    assert!(!env.path("no.tar").exists());
    // The admin dumps it: the setuid bit is withheld (as restore does), with a warning.
    let out = env.path("out.tar");
    let o = env.ok(&["dump", "latest", "-t", out.to_str().unwrap()]);
    assert!(
        text(&o.stderr).contains("1 privileged item(s) left out"),
        "{}",
        text(&o.stderr)
    );
    let x = env.path("x");
    gnu_tar_extract(&out, &x);
    let m = std::fs::metadata(x.join(src.strip_prefix("/").unwrap()).join("suid")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
        0o755
    );
    let o = env.ok(&[
        "dump",
        "latest",
        "-t",
        out.to_str().unwrap(),
        "--trust-privileged",
    ]);
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}

/// A snapshot whose trees hold the names `..` and `a/../../b` (crafted with the repository's
/// own key): dump fails as damage and no archive path leaves the extraction directory; with
/// `--target` no file is left.
#[test]
fn hostile_names_never_become_archive_paths() {
    let env = Env::new();
    env.init();
    let storage = Arc::new(tresor_storage::local::LocalStorage::new(env.repo.clone()));
    let repo = Repository::open(storage.clone(), PASSWORD).unwrap();
    let key = repo.key().clone();
    let data = Blob::raw(&key, BlobType::Data, b"escaped");
    let mut blobs = vec![data.clone()];
    let mut tree = |nodes: &[tresor_format::tree::Node]| {
        let b = Blob::raw(&key, BlobType::Tree, &tree_bytes(nodes));
        let id = b.id;
        blobs.push(b);
        id
    };
    let pwned = file(b"pwned", vec![data.id], 7, 0o644);
    let inner = tree(&[pwned]);
    let up = tree(&[dir(b"..", inner, 0o755)]);
    let root = tree(&[
        dir(b"a", up, 0o755),
        file(b"b/../../c", vec![data.id], 7, 0o644),
    ]);
    let crafter = Crafter::new(&repo);
    for o in crafter.snapshot_of(&blobs, root, "evil") {
        tresor_storage::Storage::write(storage.as_ref(), o.kind, &o.name, &o.bytes).unwrap();
    }
    for archive in ["tar", "zip"] {
        let o = env.run(&["--no-cache", "dump", "latest", "--archive", archive]);
        assert_eq!(o.status.code(), Some(5), "{archive}: {}", text(&o.stderr));
        let out = &o.stdout;
        assert!(
            !out.windows(3).any(|w| w == b"../"),
            "{archive}: a path with .."
        );
        assert!(
            !out.windows(5).any(|w| w == b"pwned"),
            "{archive}: the name below .."
        );
        let t = env.path("t");
        let o = env.run(&[
            "--no-cache",
            "dump",
            "latest",
            "--archive",
            archive,
            "-t",
            t.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
        let left: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !t.exists()
                && !left
                    .iter()
                    .any(|n| n.as_bytes().starts_with(b".tresor-dump")),
            "{left:?}"
        );
    }
}
