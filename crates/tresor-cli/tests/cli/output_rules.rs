//! The one time rule (local time to the second for people, RFC 3339 with offset in JSON),
//! tables sized to their content, `ls -l --human-readable`, `cat tree` names as text, the user
//! name from the uid, and `--exclude-caches` like restic with "Processed" counting only what
//! was stored. Times are checked under a fixed zone (`TZ=Asia/Kolkata`, +05:30).

use std::process::Output;
use tresor_testkit::prelude::*;

const HOST: &str = "a-host-name-much-longer-than-sixteen-characters";

/// `tresor` under `TZ=Asia/Kolkata` (or a POSIX TZ string with the same offset when the
/// system has no zone files), requiring success.
fn ist(env: &Env, args: &[&str]) -> Output {
    let tz = if std::path::Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists() {
        "Asia/Kolkata"
    } else {
        "IST-5:30"
    };
    let o = env.cmd().env("TZ", tz).args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A repository with one snapshot of `src` (a file `f` of 1.5 MiB, mtime 2020-01-02 03:04:05
/// UTC) taken at 2026-01-02 15:04:05 in Kolkata, with a long host name and two tags.
fn one_snapshot(env: &Env) -> (std::path::PathBuf, String) {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = std::fs::File::create(src.join("f")).unwrap();
    f.set_len(3 << 19).unwrap();
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_934_245);
    f.set_modified(mtime).unwrap();
    let when = "2026-01-02 15:04:05";
    let args = [
        "backup",
        "--quiet",
        "--time",
        when,
        "--host",
        HOST,
        "--tag",
        "nightly,db",
    ];
    let mut args = args.to_vec();
    args.push(src.to_str().unwrap());
    ist(env, &args);
    let id = env.snapshot_ids()[0][..8].to_string();
    (src, id)
}

#[test]
fn times_are_local_to_the_second_and_json_has_the_offset() {
    let env = Env::new();
    let (src, id) = one_snapshot(&env);
    let json: serde_json::Value =
        serde_json::from_slice(&ist(&env, &["snapshots", "--json"]).stdout).unwrap();
    let time = json[0]["time"].as_str().unwrap();
    assert!(
        time.starts_with("2026-01-02T15:04:05") && time.ends_with("+05:30"),
        "{time}"
    );
    let table = text(&ist(&env, &["snapshots"]).stdout);
    let signer = table
        .lines()
        .nth(1)
        .unwrap()
        .split("  ")
        .nth(3)
        .unwrap()
        .to_string();
    let src_s = src.to_str().unwrap();
    let want = format!(
        "ID        Time                 Host{}  Signer{}  Tags        Paths\n\
         {id}  2026-01-02 15:04:05  {HOST}  {signer}  nightly,db  {src_s}\n\
         1 snapshots\n",
        " ".repeat(HOST.len() - 4),
        " ".repeat(signer.len() - 6),
    );
    assert_eq!(table, want);
    // ls: the heading without debug quoting, times local, sizes human-readable on request.
    let o = ist(
        &env,
        &["ls", "latest", "-l", "--human-readable", "--recursive", "/"],
    );
    assert_eq!(
        text(&o.stderr),
        format!("snapshot {id} of {src_s} at 2026-01-02 15:04:05\n")
    );
    let line = text(&o.stdout)
        .lines()
        .find(|l| l.ends_with("/f"))
        .unwrap()
        .to_string();
    assert!(
        line.ends_with(&format!("1.50 MiB 2020-01-02 08:34:05 {src_s}/f")),
        "{line}"
    );
    let bytes = text(&ist(&env, &["ls", "latest", "-l"]).stdout);
    assert!(bytes.contains(" 1572864 2020-01-02 08:34:05 "), "{bytes}");
    // ls --json: RFC 3339 with the offset (as restic), and the exact time beside it.
    let o = ist(&env, &["ls", "--json", "latest"]);
    let f: serde_json::Value = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "f")
        .unwrap();
    assert_eq!(f["mtime"], "2020-01-02T08:34:05+05:30");
    assert_eq!(
        f["mtime_unix"],
        serde_json::json!({"secs": 1_577_934_245, "nanos": 0})
    );
}

#[test]
fn key_list_and_forget_show_local_times_in_fitting_columns() {
    let env = Env::new();
    let (src, id) = one_snapshot(&env);
    let keys = text(&ist(&env, &["key", "list"]).stdout);
    let row = keys.lines().nth(1).unwrap();
    let created = &row[row.len() - 19..];
    let shape = created.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    assert!(shape, "local time to the second: {keys}");
    assert_eq!(
        keys.lines().next().unwrap().find("Created"),
        row.find(created)
    );
    let o = ist(&env, &["forget", "--keep-last", "1", "--dry-run"]);
    let src_s = src.to_str().unwrap();
    assert_eq!(
        text(&o.stdout),
        format!(
            "Applying policy: keep 1 latest snapshots\n\
             snapshots for host \"{HOST}\", paths [{src_s}]:\n\
             keep 1 snapshots:\n\
             ID        Time                 Host{}  Tags        Reasons        Paths\n\
             {id}  2026-01-02 15:04:05  {HOST}  nightly,db  last snapshot  {src_s}\n\
             dry run: 0 snapshots would be removed\n",
            " ".repeat(HOST.len() - 4)
        )
    );
}

#[test]
fn user_name_comes_from_the_uid_not_user() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let o = env
        .cmd()
        .env("USER", "mallory")
        .args(["backup", "--quiet", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&env.ok(&["snapshots", "--json"]).stdout).unwrap();
    // The tests run as root (uid 0), whose name the user database gives as "root".
    assert_eq!(rustix::process::getuid().as_raw(), 0, "run as root");
    assert_eq!(json[0]["username"], "root");
}

#[test]
fn cat_tree_shows_names_as_text() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let odd = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"a\\b\nc\xff");
    std::fs::write(src.join(odd), b"x").unwrap();
    env.ok(&["backup", "--quiet", src.to_str().unwrap()]);
    let snap: serde_json::Value =
        serde_json::from_slice(&env.ok(&["cat", "snapshot", "latest"]).stdout).unwrap();
    let mut tree = snap["tree"].as_str().unwrap().to_string();
    // Down the path of src to its listing.
    for name in src.iter().skip(1) {
        let t: serde_json::Value =
            serde_json::from_slice(&env.ok(&["cat", "tree", &tree]).stdout).unwrap();
        let nodes = t["nodes"].as_array().unwrap();
        let n = nodes.iter().find(|n| n["name"] == name.to_str().unwrap());
        tree = n.unwrap()["subtree"].as_str().unwrap().to_string();
    }
    let t: serde_json::Value =
        serde_json::from_slice(&env.ok(&["cat", "tree", &tree]).stdout).unwrap();
    assert_eq!(t["nodes"][0]["name"], "a\\\\b\\nc\\xff");
    assert_eq!(t["nodes"][0]["target"], "");
}

/// Paths (below `src`) and sizes of the non-directory entries of the latest snapshot.
fn stored_files(env: &Env, src: &str) -> Vec<(String, u64)> {
    let o = env.ok(&["ls", "--json", "latest"]);
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] != "dir")
        .map(|v| {
            let p = v["path"].as_str().unwrap();
            (
                p.strip_prefix(src).unwrap().to_string(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn exclude_caches_keeps_the_directory_and_its_tag_and_processed_counts_what_was_stored() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let s = src.to_str().unwrap();
    for d in ["cache/sub", "fake", "keep"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let tag = b"Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n";
    std::fs::write(src.join("cache/CACHEDIR.TAG"), tag).unwrap();
    std::fs::write(src.join("cache/big"), vec![1u8; 5000]).unwrap();
    std::fs::write(src.join("cache/sub/x"), b"x").unwrap();
    std::fs::write(src.join("fake/CACHEDIR.TAG"), b"Signature: wrong").unwrap();
    std::fs::write(src.join("fake/y"), b"yy").unwrap();
    std::fs::write(src.join("keep/z.tmp"), b"zzz").unwrap();
    std::fs::write(src.join("keep/w"), b"wwww").unwrap();
    let sum = env.backup_json(&[&src], &["--exclude-caches", "--exclude", "*.tmp"], 0);
    let o = env.ok(&["ls", "latest"]);
    let all: Vec<String> = text(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(s).map(str::to_string))
        .collect();
    assert_eq!(
        all,
        [
            "",
            "/cache",
            "/cache/CACHEDIR.TAG",
            "/fake",
            "/fake/CACHEDIR.TAG",
            "/fake/y",
            "/keep",
            "/keep/w"
        ]
    );
    let files = stored_files(&env, s);
    assert_eq!(
        files,
        [
            ("/cache/CACHEDIR.TAG".to_string(), tag.len() as u64),
            ("/fake/CACHEDIR.TAG".to_string(), 16),
            ("/fake/y".to_string(), 2),
            ("/keep/w".to_string(), 4),
        ]
    );
    assert_eq!(sum["total_files_processed"], 4);
    assert_eq!(
        sum["total_bytes_processed"],
        files.iter().map(|f| f.1).sum::<u64>()
    );
    let text_sum = env.ok(&["backup", "--exclude-caches", "--exclude", "*.tmp", s]);
    let line = format!(
        "Processed:   4 files, {} B",
        files.iter().map(|f| f.1).sum::<u64>()
    );
    assert!(
        text(&text_sum.stdout).lines().any(|l| l == line),
        "{}",
        text(&text_sum.stdout)
    );
}

#[test]
fn future_snapshots_are_named_with_local_times() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let s = src.to_str().unwrap();
    ist(
        &env,
        &["backup", "--quiet", "--time", "2999-01-02 15:04:05", s],
    );
    let id = env.snapshot_ids()[0].clone();
    let o = env
        .cmd()
        .env("TZ", "IST-5:30")
        .args(["check"])
        .output()
        .unwrap();
    let warning = format!(
        "warning: snapshot {id} is dated 2999-01-02 15:04:05, more than a day ahead of this clock"
    );
    assert!(text(&o.stderr).contains(&warning), "{}", text(&o.stderr));
    let o = ist(&env, &["forget", "--keep-last", "1", "--dry-run"]);
    let note = format!(
        "note: snapshot {} is dated 2999-01-02 15:04:05, more",
        &id[..8]
    );
    assert!(text(&o.stderr).contains(&note), "{}", text(&o.stderr));
}

/// Names in other scripts print as they are — in quotes (`forget`'s group heading) and in
/// tables, whose columns count terminal cells (`日本` takes four) — and `--path` filters
/// compare cleaned paths (`/srv/` selects snapshots of `/srv`; a relative one is taken from
/// the current directory).
#[test]
fn international_names_print_as_text_and_path_filters_are_cleaned() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let s = src.to_str().unwrap();
    for host in ["müller-pc", "日本語ホスト"] {
        env.ok(&["backup", s, "--host", host, "--tag", "größe"]);
    }
    let o = env.ok(&["forget", "--keep-last", "1", "-n"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("snapshots for host \"müller-pc\", paths ["),
        "{out}"
    );
    assert!(
        out.contains("snapshots for host \"日本語ホスト\", paths ["),
        "{out}"
    );
    let table = text(&env.ok(&["snapshots"]).stdout);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("größe")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    // The Signer column starts at the same terminal column on both rows.
    let col = |row: &str| {
        let at = row.find("full").unwrap();
        unicode_width::UnicodeWidthStr::width(&row[..at])
    };
    assert_eq!(col(rows[0]), col(rows[1]), "{table}");
    for filter in [format!("{s}/"), format!("{s}/./"), format!("{s}//")] {
        let o = env.ok(&["snapshots", "--json", "--path", &filter]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2, "{filter}");
    }
    let o = env
        .cmd()
        .current_dir(env.path(""))
        .args(["snapshots", "--json", "--path", "src"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}
