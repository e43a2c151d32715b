//! Progress: JSON status lines with `--json -v` (restic's shape, then the summary), none
//! without `-v` or with `--quiet`, nothing on a pipe; the terminal bar is in `progress_pty`.

use serde_json::Value;
use std::path::Path;
use tresor_testkit::prelude::Env;

/// `count` files of `size` bytes each (different contents) in `dir/src`.
pub fn source(dir: &Path, count: usize, size: usize) -> std::path::PathBuf {
    let src = dir.join("src");
    for d in 0..count.div_ceil(100) {
        std::fs::create_dir_all(src.join(format!("d{d:03}"))).unwrap();
    }
    for i in 0..count {
        let mut data = vec![0u8; size];
        for (j, b) in data.iter_mut().enumerate() {
            *b = (j as u64 * 2654435761 + i as u64 * 40503) as u8 ^ (j >> 11) as u8;
        }
        let p = src.join(format!("d{:03}/f{i:05}", i / 100));
        std::fs::write(p, data).unwrap();
    }
    src
}

/// Every line of stdout as JSON: the status lines, then the last line.
fn status_lines(stdout: &[u8]) -> (Vec<Value>, Value) {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let mut docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let last = docs.pop().expect("a summary line");
    for d in &docs {
        assert_eq!(d["message_type"], "status", "{d}");
    }
    (docs, last)
}

/// Status lines only grow, never pass their totals, and the last one is the whole work.
fn check_growth(statuses: &[Value], files: u64, bytes: u64) {
    assert!(!statuses.is_empty(), "no status line");
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    for w in statuses.windows(2) {
        assert!(
            n(&w[1], "bytes_done") >= n(&w[0], "bytes_done"),
            "{} {}",
            w[0],
            w[1]
        );
        assert!(
            n(&w[1], "files_done") >= n(&w[0], "files_done"),
            "{} {}",
            w[0],
            w[1]
        );
    }
    for s in statuses {
        crate::json_contract::check("backup and restore status lines", s);
        assert!(n(s, "bytes_done") <= n(s, "total_bytes"), "{s}");
        assert!(n(s, "files_done") <= n(s, "total_files"), "{s}");
        assert!(
            s["current_files"].is_array() && s["seconds_elapsed"].is_u64(),
            "{s}"
        );
        assert_eq!(n(s, "error_count"), 0);
    }
    let last = statuses.last().unwrap();
    assert_eq!(
        (n(last, "files_done"), n(last, "total_files")),
        (files, files)
    );
    assert_eq!(
        (n(last, "bytes_done"), n(last, "total_bytes")),
        (bytes, bytes)
    );
    assert_eq!(last["percent_done"].as_f64(), Some(1.0));
    assert_eq!(n(last, "seconds_remaining"), 0);
}

#[test]
fn json_verbose_streams_status_lines_then_the_summary() {
    let env = Env::new();
    env.init();
    let src = source(env.dir.path(), 300, 40_000);
    let src_s = src.to_str().unwrap();
    let o = env
        .cmd()
        .env("TRESOR_PROGRESS_FPS", "100")
        .args(["--json", "-v", "backup", src_s])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (statuses, summary) = status_lines(&o.stdout);
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["total_files_processed"], 300);
    check_growth(&statuses, 300, 300 * 40_000);
    // Nothing on stderr: no bar on a pipe.
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");

    // A second run: unchanged files count as done without being read.
    let o = env
        .cmd()
        .args(["--json", "-v", "backup", src_s])
        .output()
        .unwrap();
    let (statuses, summary) = status_lines(&o.stdout);
    assert_eq!(summary["files_unmodified"], 300);
    assert_eq!(summary["bytes_read"], 0);
    check_growth(&statuses, 300, 300 * 40_000);

    // Restore: its total is what is restored, and it fills.
    let target = env.path("target");
    let o = env
        .cmd()
        .args(["--json", "-v", "restore", "latest", "--verify", "--target"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (statuses, _) = status_lines(&o.stdout);
    check_growth(&statuses, 300, 300 * 40_000);
    // The whole snapshot: its total is known from the first line on.
    for s in &statuses {
        assert_eq!(
            (&s["total_files"], &s["total_bytes"]),
            (&300.into(), &12_000_000.into())
        );
    }

    // Part of it: the total is what the walk found, ahead of the done counts.
    let o = env
        .cmd()
        .env("TRESOR_PROGRESS_FPS", "100")
        .args(["--json", "-v", "restore"])
        .arg(format!("latest:{src_s}/d001"))
        .arg("--target")
        .arg(env.path("part"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (statuses, _) = status_lines(&o.stdout);
    check_growth(&statuses, 100, 100 * 40_000);
}

#[test]
fn no_status_lines_without_verbose_or_with_quiet() {
    let env = Env::new();
    env.init();
    let src = source(env.dir.path(), 3, 1000);
    for flags in [&["--json"][..], &["--json", "-v", "--quiet"]] {
        let o = env
            .cmd()
            .env("TRESOR_PROGRESS_FPS", "100")
            .args(flags)
            .arg("backup")
            .arg(&src)
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{flags:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["message_type"], "summary");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{flags:?}");
    }
    // Text output on a pipe: the summary, no bar on stderr.
    let o = env.ok(&["backup", src.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}
