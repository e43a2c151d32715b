//! `tresor find` and `tresor stats` (issue 15): matches and restore sizes of a real tree,
//! exact values computed from the source, and the same answers from restic on the same tree;
//! `--blob`/`--tree`, `--ignore-case`, `--newest`/`--oldest`; raw-data counts against the index;
//! hostile names escaped; put-only keys refused.
//!
//! Needs the `restic` binary for the comparison (`tresor_testkit::require`: skipped with a
//! note, a failure when `CI` is set).

use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};
use tresor_testkit::prelude::*;

/// Files of the tree with their contents; `h2` is a hard link to `h1`.
const FILES: &[(&str, &str)] = &[
    ("a.txt", "hello"),
    ("b.TXT", "hello"),
    ("Docs/Read.ME", "read me\n"),
    ("Docs/notes.txt", "notes, longer than the others\n"),
    ("photos/x.jpg", "jpeg bytes"),
    ("photos/y.JPG", "more jpeg bytes"),
    ("photos/old/z.jpg", "an old photo"),
    ("h1", "hard linked content, 40 bytes long......"),
];

/// A day in 2020 and one in 2024 (seconds since the epoch): mtimes for the time bounds.
const OLD: u64 = 1_580_000_000;
const NEW: u64 = 1_710_000_000;

fn make_tree(src: &Path) {
    for (f, body) in FILES {
        let p = src.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        let when = if f.contains("old") { OLD } else { NEW };
        let file = std::fs::File::options().write(true).open(&p).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(when))
            .unwrap();
    }
    std::fs::hard_link(src.join("h1"), src.join("h2")).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// The paths `tresor find --json ARGS` reports, below `src` (relative, sorted).
fn tresor_find(env: &Env, src: &str, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["find", "--json"];
    all.extend_from_slice(args);
    let v = json(&env.ok(&all));
    super::json_contract::check("find", &v);
    let groups = v.as_array().unwrap();
    assert!(groups.len() <= 1, "{v}");
    groups
        .iter()
        .flat_map(|g| {
            let m = g["matches"].as_array().unwrap();
            assert_eq!(g["hits"].as_u64().unwrap() as usize, m.len());
            m.iter().map(|m| rel(src, m["path"].as_str().unwrap()))
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn rel(src: &str, p: &str) -> String {
    p.strip_prefix(src)
        .map(|r| r.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Pattern cases and the exact paths (below the tree) each finds.
const CASES: &[(&[&str], &[&str])] = &[
    (&["*.txt"], &["a.txt", "Docs/notes.txt"]),
    (&["-i", "*.txt"], &["a.txt", "b.TXT", "Docs/notes.txt"]),
    (
        &["photos"],
        &[
            "photos",
            "photos/old",
            "photos/old/z.jpg",
            "photos/x.jpg",
            "photos/y.JPG",
        ],
    ),
    (&["photos/*.jpg"], &["photos/x.jpg"]),
    (
        &["--ignore-case", "PHOTOS/*.jpg"],
        &["photos/x.jpg", "photos/y.JPG"],
    ),
    (&["Read.*", "h?"], &["Docs/Read.ME", "h1", "h2"]),
    (&["nothing"], &[]),
];

#[test]
fn find_matches_like_restic() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    env.ok(&["backup", "--time", "2024-03-01 12:00:00", s]);
    let restic = restic_present().then(|| restic_repo(&env, s));
    for (args, want) in CASES {
        let got = tresor_find(&env, s, args);
        assert_eq!(got, set(want), "tresor find {args:?}");
        if let Some(r) = &restic {
            assert_eq!(restic_find(&env, r, s, args), got, "restic find {args:?}");
        }
    }
    // Time bounds: only the old photo is from 2020.
    let old = tresor_find(&env, s, &["*.jpg", "--newest", "2021-01-01"]);
    assert_eq!(old, set(&["photos/old/z.jpg"]));
    let new = tresor_find(&env, s, &["-i", "*.jpg", "-O", "2021-01-01 00:00"]);
    assert_eq!(new, set(&["photos/x.jpg", "photos/y.JPG"]));
    let none = tresor_find(&env, s, &["*.jpg", "--oldest", "2030-01-01 00:00:00"]);
    assert!(none.is_empty());
    let bad = env.run_code(&["find", "x", "--newest", "yesterday"], 1);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--newest"));
    // Text: the heading, then `ls -l` lines.
    let text = String::from_utf8(env.ok(&["find", "notes.txt"]).stdout).unwrap();
    let id = &env.snapshot_ids()[0];
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "Found matching entries in snapshot {} from 2024-03-01 12:00:00",
            &id[..8]
        )
    );
    let line = lines.next().unwrap();
    assert!(line.starts_with("file     0"), "{line}");
    assert!(
        line.ends_with(&format!(
            " 30 2024-03-09 {} {s}/Docs/notes.txt",
            local_hms(NEW)
        )),
        "{line}"
    );
    assert_eq!(lines.next(), None);
}

/// The local time of day of `secs` as `ls -l` lines show it, and the date checked above.
fn local_hms(secs: u64) -> String {
    let t = jiff::Timestamp::from_second(secs as i64).unwrap();
    let z = t.to_zoned_datetime(jiff::tz::TimeZone::system());
    assert_eq!(
        z.strftime("%Y-%m-%d").to_string(),
        "2024-03-09",
        "test assumes a zone near UTC"
    );
    z.strftime("%H:%M:%S").to_string()
}

#[test]
fn find_by_blob_and_tree() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    env.ok(&["backup", s]);
    env.ok(&["backup", "--force", s]);
    // The tree of src/photos and the blob of "hello" (a.txt and b.TXT), read with `cat`.
    let snap = json(&env.ok(&["cat", "snapshot", "latest", "--json"]));
    let mut tree = snap["tree"].as_str().unwrap().to_string();
    for name in src.iter().skip(1).map(|c| c.to_str().unwrap()) {
        tree = child(&env, &tree, name)["subtree"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let photos = child(&env, &tree, "photos")["subtree"]
        .as_str()
        .unwrap()
        .to_string();
    let hello = child(&env, &tree, "a.txt")["content"][0]
        .as_str()
        .unwrap()
        .to_string();
    let hits = |args: &[&str]| -> Vec<(String, u64)> {
        let mut all = vec!["find", "--json"];
        all.extend_from_slice(args);
        let v = json(&env.ok(&all));
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["snapshot"].as_str().unwrap().to_string(),
                    g["hits"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let ids = env.snapshot_ids();
    let both = |n| vec![(ids[0].clone(), n), (ids[1].clone(), n)];
    assert_eq!(hits(&["--blob", &hello[..10]]), both(2));
    assert_eq!(
        tresor_find(&env, s, &["--blob", &hello, "--snapshot", "latest"]),
        set(&["a.txt", "b.TXT"])
    );
    // (Only the latest: a backup's reads may change access times, so the other's trees.)
    assert_eq!(
        tresor_find(&env, s, &["--tree", &photos, "-s", &ids[1][..8]]),
        set(&["photos"])
    );
    let latest = &["--tree", &photos[..12], "--blob", &hello, "-s", "latest"];
    assert_eq!(hits(latest), vec![(ids[1].clone(), 3)]);
    // A tree id is no data blob; a prefix of nothing; not hex.
    for (flag, id, says) in [
        ("--blob", photos.as_str(), "no such blob"),
        ("--tree", "0000000000000000", "no such tree"),
        ("--blob", "xyz", "not a hex id"),
    ] {
        let o = env.run_code(&["find", flag, id], 1);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{flag} {id}: {err}");
    }
    // Without pattern or id: a usage error.
    assert_eq!(env.run(&["find"]).status.code(), Some(2));
}

/// The node `name` of tree `id` (`cat tree --json`).
fn child(env: &Env, id: &str, name: &str) -> Value {
    let t = json(&env.ok(&["cat", "tree", id, "--json"]));
    t["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {t}"))
        .clone()
}

/// Restore size and entry count of the tree at `src` as restic counts it: every entry below
/// the root (the directories leading to `src` included), regular files' sizes, a hard-linked
/// inode once.
fn expected_restore_size(src: &Path) -> (u64, u64) {
    let mut count = src.components().count() as u64 - 1;
    let (mut size, mut seen) = (0, BTreeSet::new());
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            count += 1;
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && seen.insert(m.ino()) {
                size += m.len();
            }
        }
    }
    (size, count)
}

#[test]
fn stats_restore_size_like_restic_and_raw_data_like_the_index() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    env.ok(&["backup", "--host", "one", s]);
    env.ok(&["backup", "--host", "two", "--force", s]);
    let (size, count) = expected_restore_size(&src);
    // 5+5+8+30+10+15+12+40 bytes (h2 counted with h1), and the symlink: no size.
    assert_eq!(size, 125);
    let rs = json(&env.ok(&["stats", "--json", "--host", "one"]));
    super::json_contract::check("stats", &rs);
    assert_eq!(rs["mode"], "restore-size");
    assert_eq!(
        (rs["total_size"].as_u64(), rs["total_file_count"].as_u64()),
        (Some(size), Some(count))
    );
    assert_eq!(rs["snapshots_count"], 1);
    assert!(rs.get("total_blob_count").is_none(), "{rs}");
    let all = json(&env.ok(&["stats", "--json"]));
    assert_eq!(
        (all["total_size"].as_u64(), all["total_file_count"].as_u64()),
        (Some(2 * size), Some(2 * count))
    );
    assert_eq!(
        all["hosts"],
        serde_json::json!([
            {"host": "one", "snapshots_count": 1, "restore_size": size},
            {"host": "two", "snapshots_count": 1, "restore_size": size},
        ])
    );
    if restic_present() {
        let r = restic_repo(&env, s);
        let v = restic_json(&env, &r, &["stats", "latest"]);
        assert_eq!(
            (v["total_size"].as_u64(), v["total_file_count"].as_u64()),
            (Some(size), Some(count)),
            "{v}"
        );
        // restic also counts the empty content (directories, the symlink) once as a file.
        let mode = |m: &str| {
            let v = restic_json(&env, &r, &["stats", "latest", "--mode", m]);
            ["total_size", "total_file_count", "total_blob_count"].map(|k| v[k].as_u64())
        };
        assert_eq!(mode("files-by-contents"), [Some(120), Some(8), None]);
        assert_eq!(mode("blobs-per-file"), [Some(120), Some(7), Some(7)]);
    }
    // files-by-contents: "hello" once, and the other six contents (h1 = h2).
    let fc = json(&env.ok(&["stats", "--json", "--mode", "files-by-contents"]));
    super::json_contract::check("stats", &fc);
    assert_eq!(
        (fc["total_size"].as_u64(), fc["total_file_count"].as_u64()),
        (Some(120), Some(7))
    );
    let bf = json(&env.ok(&["stats", "--json", "--mode", "blobs-per-file"]));
    let n = |k: &str| bf[k].as_u64();
    assert_eq!(
        (
            n("total_size"),
            n("total_file_count"),
            n("total_blob_count")
        ),
        (Some(120), Some(7), Some(7))
    );
    raw_data(&env, size);
}

/// raw-data: every blob of the index is referenced (nothing was pruned); its counts are the
/// index's, `cat index`.
fn raw_data(env: &Env, size: u64) {
    // raw-data: every blob of the index is referenced (nothing was pruned).
    let (blobs, stored, plain) = index_totals(env);
    let raw = json(&env.ok(&["stats", "--json", "--mode", "raw-data"]));
    super::json_contract::check("stats", &raw);
    assert_eq!(raw["total_blob_count"].as_u64(), Some(blobs));
    assert_eq!(raw["total_size"].as_u64(), Some(stored));
    assert_eq!(raw["total_uncompressed_size"].as_u64(), Some(plain));
    assert!(raw.get("total_file_count").is_none(), "{raw}");
    let ratio = raw["deduplication_ratio"].as_f64().unwrap();
    assert!(
        (ratio - (2 * size) as f64 / plain as f64).abs() < 1e-9,
        "{raw}"
    );
    let comp = raw["compression_ratio"].as_f64().unwrap();
    assert!((comp - plain as f64 / stored as f64).abs() < 1e-9, "{raw}");
    // Text.
    let text = String::from_utf8(env.ok(&["stats", "--mode", "raw-data"]).stdout).unwrap();
    assert!(
        text.starts_with("Stats in raw-data mode:\n     Snapshots processed:  2\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("        Total Blob Count:  {blobs}\n")),
        "{text}"
    );
    assert!(
        text.contains("               Host one:  1 snapshots, restore size 125 B (125 B)\n"),
        "{text}"
    );
}

/// Blobs, stored and plaintext bytes of every index object (`cat index`).
fn index_totals(env: &Env) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    let mut stack = vec![env.repo.join("index")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let v = json(&env.ok(&["cat", "index", &name, "--json"]));
            for p in v.as_array().unwrap() {
                let mut frames = std::collections::HashSet::new();
                for b in p["blobs"].as_array().unwrap() {
                    out.0 += 1;
                    // A frame's stored bytes count once (format §7: members share them).
                    if b["member"].is_null() || frames.insert(b["offset"].as_u64()) {
                        out.1 += b["length"].as_u64().unwrap();
                    }
                    out.2 += b["raw_length"].as_u64().unwrap();
                }
            }
        }
    }
    out
}

#[test]
fn hostile_names_escaped_and_put_only_refused() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let evil = std::ffi::OsStr::from_bytes(b"evil\n\x1b[31m\xff");
    std::fs::write(src.join(evil), "x").unwrap();
    let s = src.to_str().unwrap();
    env.ok(&["backup", s]);
    let text = String::from_utf8(env.ok(&["find", "--quiet", "evil*"]).stdout).unwrap();
    assert!(
        text.ends_with(&format!("{s}/evil\\n\\x1b[31m\\xff\n")),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1, "{text:?}");
    let v = json(&env.ok(&["find", "--json", "evil*"]));
    let m = &v[0]["matches"][0];
    let want = [s.as_bytes(), b"/evil\n\x1b[31m\xff"].concat();
    assert_eq!(m["path_hex"].as_str().unwrap(), hex(&want));
    // A put-only key: both refuse, exit 13, as `ls`.
    let pw = env.password_file("put.pw", "put-only password\n");
    env.add_put_only_key("vps", &pw);
    for args in [vec!["stats"], vec!["find", "evil*"], vec!["ls", "latest"]] {
        let o = env
            .cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .env("TRESOR_CACHE_DIR", env.path("cache"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(13), "{args:?}: {err}");
        assert!(err.contains("can write but not read"), "{args:?}: {err}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn restic_present() -> bool {
    tresor_testkit::require::require(tresor_testkit::require::Need::Restic)
}

/// A restic repository holding one backup of `src`; returns its path.
fn restic_repo(env: &Env, src: &str) -> String {
    let r = env.path("restic").to_str().unwrap().to_string();
    restic_json(env, &r, &["init"]);
    restic_json(env, &r, &["backup", src]);
    r
}

fn restic(env: &Env, repo: &str, args: &[&str]) -> std::process::Output {
    let o = Command::new("restic")
        .args(["-r", repo, "--json"])
        .args(args)
        .env("RESTIC_PASSWORD", "x")
        .env("RESTIC_CACHE_DIR", env.path("restic-cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "restic {args:?}: {o:?}");
    o
}

/// restic's last JSON line (`init` and `backup` print status lines first).
fn restic_json(env: &Env, repo: &str, args: &[&str]) -> Value {
    let o = restic(env, repo, args);
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

/// The paths `restic find --json ARGS` reports below `src`.
fn restic_find(env: &Env, repo: &str, src: &str, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["find"];
    all.extend_from_slice(args);
    let v: Value = serde_json::from_slice(&restic(env, repo, &all).stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["matches"].as_array().unwrap().clone())
        .map(|m| rel(src, m["path"].as_str().unwrap()))
        .filter(|p| !p.is_empty())
        .collect()
}
