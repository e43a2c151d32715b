//! Backup → restore round trips, compared byte for byte and field by field.

use std::path::Path;
use tresor_testkit::prelude::*;

#[test]
fn every_file_type_and_odd_names_round_trip() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());
    let s = env.backup_json(&[&src], &[], 0);
    assert_eq!(s["errors"], 0);
    assert!(s["files_new"].as_u64().unwrap() >= 25, "{s}");
    assert_eq!(s["files_unmodified"], 0);
    let target = env.path("restore");
    let o = env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["owner_skipped"], !is_root());
    let restored = target.join(src.strip_prefix("/").unwrap());
    let after = scan(&restored, is_root());
    assert_same(&before, &after);
    // The sparse file stays sparse; the hardlinks are hardlinks.
    assert!(after[&b"sparse"[..]].sparse, "sparse file restored sparse");
    assert_eq!(
        after[&b"hard-b"[..]].link_group,
        Some(b"dir/hard-c".to_vec())
    );
    // Restoring again skips every file and changes nothing.
    let o = env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["files_restored"], 0, "{r}");
    assert_same(&before, &scan(&restored, is_root()));
    env.ok(&["check", "--read-data"]);
}

#[test]
fn incremental_backup_reads_only_changes() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    let first = env.backup_json(&[&src], &[], 0);
    let second = env.backup_json(&[&src], &[], 0);
    assert_eq!(second["bytes_read"], 0, "{second}");
    assert_eq!(second["files_new"], 0);
    assert_eq!(second["files_changed"], 0);
    assert_eq!(second["files_unmodified"], first["total_files_processed"]);
    assert_eq!(second["data_blobs"], 0);
    std::fs::write(src.join("small.txt"), b"changed content!").unwrap();
    std::fs::remove_file(src.join("dir/sub/deeper/leaf")).unwrap();
    std::fs::write(src.join("brand-new"), b"new").unwrap();
    let third = env.backup_json(&[&src], &[], 0);
    assert_eq!(third["files_changed"], 1, "{third}");
    assert_eq!(third["files_new"], 1);
    assert_eq!(third["files_deleted"], 1);
    assert_eq!(third["bytes_read"], 16 + 3);
    assert_eq!(third["parent"], second["snapshot_id"]);
}

#[test]
fn real_tree_of_the_machine_round_trips() {
    let src = Path::new("/usr/share/doc");
    if !src.exists() {
        eprintln!("no /usr/share/doc on this machine");
        return;
    }
    let env = Env::new();
    env.init();
    let before = scan(src, true);
    env.backup_json(&[src], &[], 0);
    let target = env.path("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let after = scan(&target.join("usr/share/doc"), true);
    assert_same(&before, &after);
}

#[test]
fn partial_and_filtered_restore() {
    let env = Env::new();
    env.init();
    let src = make_tree(env.dir.path());
    env.backup_json(&[&src], &[], 0);
    let sub = format!("latest:{}/dir", src.display());
    let t1 = env.path("t1");
    env.ok(&["restore", &sub, "--target", t1.to_str().unwrap()]);
    assert_eq!(std::fs::read(t1.join("sub/deeper/leaf")).unwrap(), b"leaf");
    assert!(!t1.join("small.txt").exists());
    let t2 = env.path("t2");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        t2.to_str().unwrap(),
        "--include",
        "*.log",
        "--include",
        "leaf",
    ]);
    let base = t2.join(src.strip_prefix("/").unwrap());
    assert!(base.join("dir/text.log").is_file());
    assert!(base.join("dir/sub/deeper/leaf").is_file());
    assert!(!base.join("small.txt").exists());
    assert!(!base.join("dir/big.bin").exists());
    let t3 = env.path("t3");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        t3.to_str().unwrap(),
        "--exclude",
        "dir",
    ]);
    let base = t3.join(src.strip_prefix("/").unwrap());
    assert!(base.join("small.txt").is_file());
    assert!(!base.join("dir").exists());
}

#[test]
fn stdin_backup_round_trips() {
    let env = Env::new();
    env.init();
    let data = pseudo_random(7, 3 << 20);
    let mut child = env
        .cmd()
        .args([
            "backup",
            "--stdin",
            "--stdin-filename",
            "dump.sql",
            "--json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &data).unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(std::fs::read(t.join("dump.sql")).unwrap(), data);
}

#[test]
fn tree_comparison_detects_every_kind_of_difference() {
    let env = Env::new();
    let src = make_tree(env.dir.path());
    let base = scan(&src, true);
    let differs = |f: &dyn Fn()| {
        f();
        let now = scan(&src, true);
        let same = now.len() == base.len() && base.iter().all(|(k, v)| now.get(k) == Some(v));
        assert!(!same, "change not detected");
    };
    differs(&|| std::fs::write(src.join("dir/sub/deeper/leaf"), b"LEAF").unwrap());
    differs(&|| xattr::set(src.join("small.txt"), "user.comment", b"other").unwrap());
    differs(&|| {
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(src.join("setgid")).unwrap().permissions(),
            0o700,
        )
    });
    differs(&|| {
        let f = std::fs::File::options()
            .write(true)
            .open(src.join("empty"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    });
    differs(&|| std::fs::remove_file(src.join("link-dangling")).unwrap());
}

/// Files in the way of a restore are replaced, never written into: a hard link to a file outside
/// the target keeps that file unchanged, and a read-only file with other content is replaced.
#[test]
fn restore_replaces_hard_links_and_read_only_files_in_the_target() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("small"), b"snapshot content\n").unwrap();
    std::fs::write(src.join("big"), pseudo_random(7, 6 << 20)).unwrap();
    std::fs::write(src.join("ro"), b"new\n").unwrap();
    env.backup_json(&[&src], &[], 0);
    let target = env.path("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap());

    let outside = env.path("outside");
    let outside_big = env.path("outside-big");
    std::fs::write(&outside, b"must not change").unwrap();
    std::fs::write(&outside_big, pseudo_random(8, 7 << 20)).unwrap();
    for (name, out) in [("small", &outside), ("big", &outside_big)] {
        std::fs::remove_file(restored.join(name)).unwrap();
        std::fs::hard_link(out, restored.join(name)).unwrap();
    }
    std::fs::write(restored.join("ro"), b"old and longer\n").unwrap();
    std::fs::set_permissions(restored.join("ro"), std::fs::Permissions::from_mode(0o444)).unwrap();

    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(std::fs::read(&outside).unwrap(), b"must not change");
    assert_eq!(
        std::fs::read(&outside_big).unwrap(),
        pseudo_random(8, 7 << 20)
    );
    for name in ["small", "big", "ro"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(src.join(name)).unwrap(),
            "{name}"
        );
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(restored.join("small")).unwrap().nlink(),
        1
    );
    assert_eq!(std::fs::metadata(restored.join("big")).unwrap().nlink(), 1);
}

/// Holes inside chunks stay holes: a file of alternating 1 MiB data and 1 MiB holes (chunks
/// mix both) and one with a few bytes in a 7 MiB hole restore with about the blocks of the
/// source, not fully allocated.
#[test]
fn sparse_files_keep_their_holes_inside_chunks() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = std::fs::File::create(src.join("checker")).unwrap();
    for i in 0..5u64 {
        f.write_all_at(&pseudo_random(i, 1 << 20), (2 * i) << 20)
            .unwrap();
    }
    f.set_len(10 << 20).unwrap();
    let g = std::fs::File::create(src.join("dot")).unwrap();
    g.write_all_at(b"ten bytes!", 3 << 20).unwrap();
    g.set_len(7 << 20).unwrap();
    drop((f, g));
    env.backup_json(&[&src], &[], 0);
    let target = env.path("restore");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    for name in ["checker", "dot"] {
        let a = std::fs::metadata(src.join(name)).unwrap();
        let b = std::fs::metadata(restored.join(name)).unwrap();
        assert_eq!(a.len(), b.len());
        assert_eq!(
            std::fs::read(src.join(name)).unwrap(),
            std::fs::read(restored.join(name)).unwrap()
        );
        // Allocated bytes: at most the source's plus a few blocks at run edges.
        assert!(
            b.blocks() * 512 <= a.blocks() * 512 + (64 << 10),
            "{name}: source {} bytes allocated, restored {}",
            a.blocks() * 512,
            b.blocks() * 512
        );
    }
}

/// `init --format-version 2` makes a repository of format version 2 (no frames of small
/// files): it backs up, restores and checks; 3 is the default; other versions are refused.
#[test]
fn init_format_version_2_and_3_repositories_round_trip() {
    let mut added = Vec::new();
    for version in ["2", "3"] {
        let env = Env::new();
        let mut args = vec!["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
        if version == "2" {
            args.extend(["--format-version", "2"]);
        }
        env.ok(&args);
        let o = env.ok(&["cat", "config"]);
        let config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(config["version"].to_string(), version);
        let src = env.path("src");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..40 {
            let text = format!("small file {i} of a version {version} repository\n");
            std::fs::write(src.join(format!("f{i:02}")), text.repeat(i + 1)).unwrap();
        }
        let s = env.backup_json(&[&src], &[], 0);
        assert_eq!(s["files_new"], 40, "{s}");
        added.push(s["data_added"].as_u64().unwrap());
        let target = env.path("restore");
        env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        let restored = target.join(src.strip_prefix("/").unwrap());
        assert_same(&scan(&src, is_root()), &scan(&restored, is_root()));
        env.ok(&["check", "--read-data"]);
    }
    // Version 3 puts the 40 files into one frame: each file's blob costs no padded 104 bytes
    // or more of its own (40 files of 50 to 2 000 bytes: under 90 KB alone, a few KB framed).
    assert!(added[1] + 40 * 64 < added[0], "{added:?}");
    let env = Env::new();
    let o = env.run_code(&["init", "--format-version", "4"], 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--format-version"), "{err}");
}
