//! Issue 16, metrics and overdue: `--metrics-textfile` read back by a Prometheus text-format
//! parser (prometheus-parse) with every value checked, merged across runs and commands and
//! written atomically; `--pushgateway` received by a loopback receiver; `snapshots
//! --check-overdue` with crafted snapshot times (`backup --time`), hostile host names and a
//! put-only host that claims the future.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use tresor_testkit::prelude::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The samples of a metrics file, parsed by prometheus-parse.
pub fn scrape(path: &Path) -> prometheus_parse::Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the one sample of `name` whose labels include `want`.
pub fn value(s: &prometheus_parse::Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = (s.samples.iter())
        .filter(|x| x.metric == name && want.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: not a gauge: {other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    found[0]
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
#[allow(
    clippy::too_many_lines,
    clippy::cognitive_complexity,
    reason = "one scenario: a backup, a check, two failed backups, read back each time"
)]
fn textfile_holds_the_backup_summary_and_is_merged() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), vec![7u8; 5000]).unwrap();
    std::fs::write(src.join("b"), b"bee").unwrap();
    let dir = env.path("textfiles");
    std::fs::create_dir_all(&dir).unwrap();
    let prom = dir.join("tresor.prom");
    let p = prom.to_str().unwrap();
    let t0 = now();
    let summary = env.backup_json(&[&src], &["--host", "h1", "--metrics-textfile", p], 0);
    let t1 = now();
    let s = scrape(&prom);
    let l = [("host", "h1"), ("paths", src.to_str().unwrap())];
    let success = value(&s, "tresor_backup_last_success_timestamp_seconds", &l);
    assert!(
        (t0 - 0.01..=t1 + 0.01).contains(&success),
        "{t0} {success} {t1}"
    );
    let run = value(&s, "tresor_backup_last_run_timestamp_seconds", &l);
    assert_eq!(run, success);
    assert_eq!(value(&s, "tresor_backup_last_exit_code", &l), 0.0);
    let d = value(&s, "tresor_backup_duration_seconds", &l);
    assert!(d > 0.0 && d <= t1 - t0 + 0.01, "{d}");
    for state in ["new", "changed", "unmodified"] {
        let mut with = l.to_vec();
        with.push(("state", state));
        let want = summary[format!("files_{state}")].as_u64().unwrap() as f64;
        assert_eq!(value(&s, "tresor_backup_files", &with), want, "{state}");
    }
    assert_eq!(summary["files_new"], 2);
    let bytes = |state| {
        let mut with = l.to_vec();
        with.push(("state", state));
        value(&s, "tresor_backup_bytes", &with)
    };
    assert_eq!(bytes("processed"), 5003.0);
    assert_eq!(
        bytes("read"),
        summary["bytes_read"].as_u64().unwrap() as f64
    );
    let added = summary["data_added"].as_u64().unwrap() as f64;
    assert!(added > 0.0);
    assert_eq!(value(&s, "tresor_backup_added_bytes", &l), added);
    assert_eq!(value(&s, "tresor_backup_errors", &l), 0.0);
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("# TYPE tresor_backup_files gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP tresor_backup_duration_seconds "),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // check adds its families; the backup's stay.
    env.ok(&["check", "--metrics-textfile", p]);
    let s = scrape(&prom);
    assert_eq!(value(&s, "tresor_check_last_exit_code", &[]), 0.0);
    let checked = value(&s, "tresor_check_last_success_timestamp_seconds", &[]);
    assert!(checked >= success);
    assert_eq!(
        value(&s, "tresor_backup_last_success_timestamp_seconds", &l),
        success
    );

    // A failed backup (a bad option: nothing backed up) keeps last_success, records its exit
    // code and run time, and keeps the old figures.
    let o = env.run(&[
        "backup",
        "--host",
        "h1",
        "--exclude-larger-than",
        "x",
        "--metrics-textfile",
        p,
        src.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = scrape(&prom);
    assert_eq!(
        value(&s, "tresor_backup_last_success_timestamp_seconds", &l),
        success
    );
    assert_eq!(value(&s, "tresor_backup_last_exit_code", &l), 1.0);
    assert!(value(&s, "tresor_backup_last_run_timestamp_seconds", &l) > run);
    assert_eq!(value(&s, "tresor_backup_added_bytes", &l), added);
    assert_eq!(value(&s, "tresor_check_last_exit_code", &[]), 0.0);

    // A partial backup (a source that is gone) keeps it too, with its own figures.
    let gone = env.path("gone");
    let o = env.run(&[
        "backup",
        "--host",
        "h1",
        "--metrics-textfile",
        p,
        src.to_str().unwrap(),
        gone.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let s = scrape(&prom);
    let partial: Vec<_> = (s.samples.iter())
        .filter(|x| {
            x.metric == "tresor_backup_last_exit_code" && x.labels.get("host") == Some("h1")
        })
        .collect();
    assert_eq!(partial.len(), 2, "one per set of paths: {partial:?}");
    let paths2 = format!("{} {}", gone.display(), src.display());
    let l3 = [("host", "h1"), ("paths", paths2.as_str())];
    assert_eq!(value(&s, "tresor_backup_last_exit_code", &l3), 3.0);
    assert_eq!(value(&s, "tresor_backup_errors", &l3), 1.0);
    assert!(!(s.samples.iter()).any(|x| x.metric
        == "tresor_backup_last_success_timestamp_seconds"
        && x.labels.get("paths") == Some(paths2.as_str())));
    // Atomic: nothing but the file is left in its directory.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("tresor.prom")]);
}

#[test]
fn a_file_that_is_not_metrics_is_left_alone_and_the_backup_succeeds() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let prom = env.path("x.prom");
    std::fs::write(&prom, "precious { data\n").unwrap();
    let o = env.run(&[
        "backup",
        "--metrics-textfile",
        prom.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: metrics not written to"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&prom).unwrap(), "precious { data\n");
}

/// A loopback HTTP receiver for one request: its request line and body.
pub fn receiver() -> (String, std::thread::JoinHandle<(String, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut r = BufReader::new(stream);
        let mut request = String::new();
        r.read_line(&mut request).unwrap();
        let mut length = 0;
        for _ in 0..100 {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if h.trim().is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let mut s = r.into_inner();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        (request.trim().to_string(), String::from_utf8(body).unwrap())
    });
    (url, handle)
}

#[test]
fn pushgateway_receives_the_families_at_the_grouping_path() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let (url, got) = receiver();
    let summary = env.backup_json(&[&src], &["--host", "web/1", "--pushgateway", &url], 0);
    let (request, body) = got.join().unwrap();
    // "web/1" needs base64url in the path: d2ViLzE=
    assert_eq!(
        request,
        "POST /metrics/job/tresor/host@base64/d2ViLzE= HTTP/1.1"
    );
    let s = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let l = [("host", "web/1")];
    assert_eq!(value(&s, "tresor_backup_last_exit_code", &l), 0.0);
    let mut new = l.to_vec();
    new.push(("state", "new"));
    assert_eq!(
        value(&s, "tresor_backup_files", &new),
        summary["files_new"].as_u64().unwrap() as f64
    );

    // A gateway that is not there: retried, one warning, the backup still succeeds.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let o = env.run(&["backup", "--pushgateway", &dead_url, src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let warnings: Vec<_> = stderr(&o)
        .lines()
        .filter(|l| l.contains("metrics not pushed"))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", stderr(&o));
}

/// `snapshots --check-overdue --json` with `extra`, requiring `code`.
fn overdue(env: &Env, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["snapshots", "--check-overdue", "--json"];
    args.extend(extra);
    let o = env.run_code(&args, code);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn overdue_groups_by_host_and_paths() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let s = src.to_str().unwrap();
    env.ok(&["backup", "--host", "fresh", s]);
    env.ok(&[
        "backup",
        "--host",
        "old",
        "--time",
        "2020-01-01 00:00:00",
        s,
    ]);
    // All fresh → 0.
    let v = overdue(&env, &["--host", "fresh"], 0);
    assert_eq!(v["overdue"], 0);
    assert_eq!(v["max_age"], "26h");
    let g = &v["groups"][0];
    assert_eq!(
        (g["host"].as_str(), g["state"].as_str()),
        (Some("fresh"), Some("fresh"))
    );
    assert_eq!(g["paths"], serde_json::json!([s]));
    assert!(g["age_seconds"].as_i64().unwrap() < 600);
    assert_eq!(g["snapshot_id"].as_str().unwrap().len(), 64);
    // One old → 6, listed with the fresh one.
    let v = overdue(&env, &[], 6);
    assert_eq!(v["overdue"], 1);
    let states: Vec<_> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["host"].as_str().unwrap(), g["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("fresh", "fresh"), ("old", "overdue")]);
    assert!(
        v["groups"][1]["time"]
            .as_str()
            .unwrap()
            .starts_with("2020-01-01T00:00:00")
    );
    // A long enough --max-age forgives it; a bad one is an error.
    overdue(&env, &["--max-age", "100y"], 0);
    env.run_code(&["snapshots", "--check-overdue", "--max-age", "3w"], 1);
    env.run_code(&["snapshots", "--max-age", "3d"], 2);
    // The text table.
    let o = env.run_code(&["snapshots", "--check-overdue"], 6);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("old ") && l.ends_with("OVERDUE")),
        "{text}"
    );
}

#[test]
fn a_put_only_host_claiming_the_future_is_overdue() {
    let env = Env::new();
    env.init();
    let pw = env.password_file("host-pw", "host password\n");
    env.add_put_only_key("vps", &pw);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let s = src.to_str().unwrap();
    let host = |args: &[&str]| {
        env.cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .arg("--no-cache")
            .args(args)
            .output()
            .unwrap()
    };
    let o = host(&["backup", "--time", "2100-01-01 00:00:00", s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = overdue(&env, &[], 6);
    assert_eq!(v["groups"][0]["host"], "vps");
    assert_eq!(v["groups"][0]["state"], "future");
    assert!(v["groups"][0]["age_seconds"].as_i64().unwrap() < 0);
    // The put-only key cannot read the times at all.
    let o = host(&["snapshots", "--check-overdue"]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
}

#[test]
fn hostile_host_names_are_escaped_in_the_table_and_the_metrics() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let evil = "ev\"il\\host\nname";
    env.ok(&[
        "backup",
        "--host",
        evil,
        "--time",
        "2021-06-01 00:00:00",
        src.to_str().unwrap(),
    ]);
    let prom = env.path("o.prom");
    let o = env.run_code(
        &[
            "snapshots",
            "--check-overdue",
            "--metrics-textfile",
            prom.to_str().unwrap(),
        ],
        6,
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header, one row, the count: {text}");
    assert!(lines[1].starts_with("ev\"il\\\\host\\nname  "), "{text}");
    assert!(!text.contains("il\\host\nname"), "{text}");
    let raw = std::fs::read_to_string(&prom).unwrap();
    assert!(raw.contains("host=\"ev\\\"il\\\\host\\nname\""), "{raw}");
    let s = scrape(&prom);
    let with: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == "tresor_snapshot_overdue")
        .collect();
    assert_eq!(with.len(), 1);
    // prometheus-parse keeps the escapes as written; undone, it is the host name.
    let host = with[0].labels.get("host").unwrap();
    let undone = host
        .replace("\\\\", "\u{0}")
        .replace("\\n", "\n")
        .replace("\\\"", "\"")
        .replace('\u{0}', "\\");
    assert_eq!(undone, evil);
    let t: jiff::Timestamp = "2021-06-01T00:00:00Z".parse().unwrap();
    let last = value(&s, "tresor_snapshot_last_timestamp_seconds", &[]);
    assert!(
        (last - t.as_second() as f64).abs() <= 14.0 * 3600.0,
        "local time: {last}"
    );
}

#[test]
fn profile_keys_set_textfile_max_age_and_the_profile_label() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    env.ok(&[
        "backup",
        "--host",
        "h",
        "--time",
        "2024-01-01 00:00:00",
        src.to_str().unwrap(),
    ]);
    let prom = env.path("p.prom");
    let config = env.path("tresor.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.fleet]\nmetrics_textfile = {:?}\nmax_age = \"100y\"\n",
            prom.to_str().unwrap()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    env.ok(&["--config", c, "-P", "fleet", "snapshots", "--check-overdue"]);
    let s = scrape(&prom);
    let l = [("profile", "fleet"), ("host", "h")];
    assert_eq!(value(&s, "tresor_snapshot_overdue", &l), 0.0);
    let t = value(&s, "tresor_snapshot_last_timestamp_seconds", &l);
    let want = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&want.stdout).unwrap();
    let time: jiff::Timestamp = v[0]["time"].as_str().unwrap().parse().unwrap();
    assert_eq!(t, time.as_second() as f64);
    // The flag overrides the profile's max_age.
    env.run_code(
        &[
            "--config",
            c,
            "-P",
            "fleet",
            "snapshots",
            "--check-overdue",
            "--max-age",
            "1d",
        ],
        6,
    );
}

/// `-P NAME snapshots --check-overdue` sends the profile's notification: a failure with exit
/// code 6, step `overdue` and the overdue group in the log tail and the summary.
#[test]
fn an_overdue_check_with_a_profile_notifies_its_webhook() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let s = src.to_str().unwrap();
    env.ok(&[
        "backup",
        "--host",
        "stale",
        "--time",
        "2020-01-01 00:00:00",
        s,
    ]);
    let (url, handle) = receiver();
    let config = env.path("tresor.toml");
    std::fs::write(
        &config,
        format!("[profiles.fleet]\nmax_age = \"1d\"\nnotify = {{ webhook = {{ url = \"{url}/hook\" }} }}\n"),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let args = ["--config", c, "-P", "fleet", "snapshots", "--check-overdue"];
    env.run_code(&args, 6);
    let (request, body) = handle.join().unwrap();
    assert_eq!(request, "POST /hook HTTP/1.1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["profile"], "fleet");
    assert_eq!(v["event"], "failure");
    assert_eq!(v["step"], "overdue");
    assert_eq!(v["exit_code"], 6);
    assert_eq!(v["summary"]["overdue"], 1, "{v}");
    assert_eq!(v["summary"]["groups"][0]["host"], "stale");
    let tail = v["log_tail"].as_str().unwrap();
    assert!(
        tail.starts_with(&format!("stale {s}: last snapshot 2020-01-01")),
        "{tail}"
    );
    assert!(tail.contains("(overdue, max age 1d)"), "{tail}");
}
