//! `tresor run` hooks and notifications (issue 16): every hook's environment in a success and
//! a failure run, `before` hooks that stop or continue, timeouts; healthchecks, webhook and
//! ntfy requests seen by a loopback receiver the test starts, retries, an unreachable URL.
//! Real files and the real binary.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tresor_testkit::prelude::{Env, run_expecting};

/// `tresor.toml` with profile `work` (host `box1`, sources `src`): `keys` in its table,
/// `tables` after it.
fn config(env: &Env, keys: &str, tables: &str) -> PathBuf {
    let pw = env.password_file("pw", tresor_testkit::prelude::PASSWORD);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    let text = format!(
        "[profiles.work]\nrepository = {:?}\npassword_file = {:?}\nsources = [{:?}]\n\
         host = \"box1\"\n{keys}\n{tables}\n",
        env.repo.display().to_string(),
        pw.display().to_string(),
        src.display().to_string(),
    );
    let file = env.path("tresor.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn tresor(env: &Env, file: &Path) -> Command {
    let mut c = env.cmd();
    for k in ["TRESOR_REPOSITORY", "TRESOR_PASSWORD", "TRESOR_CACHE_DIR"] {
        c.env_remove(k);
    }
    c.arg("--config").arg(file);
    c
}

fn run(c: Command, args: &[&str], code: i32) -> Output {
    run_expecting(c, args, code)
}

fn init(env: &Env, file: &Path) {
    let a = [
        "-P",
        "work",
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
    ];
    run(tresor(env, file), &a, 0);
}

fn snapshot_ids(env: &Env, file: &Path) -> Vec<String> {
    let o = run(tresor(env, file), &["-P", "work", "snapshots", "--json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids = v.as_array().unwrap().iter();
    ids.map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A hook script recording its environment in `out/STEP-HOOK.env`, a copy of its summary
/// file in `out/STEP-HOOK.summary` and `STEP HOOK` in `out/order`; it prints a line.
fn recorder(env: &Env) -> (String, PathBuf) {
    let out = env.path("hooks");
    std::fs::create_dir_all(&out).unwrap();
    let script = env.path("rec.sh");
    let text = format!(
        "o={out:?}\nn=\"$o/$TRESOR_STEP-$TRESOR_HOOK\"\n\
         env | grep -E '^TRESOR_(PROFILE|STEP|HOOK|EXIT_CODE|SNAPSHOT_ID|SUMMARY_FILE)=' \
         | sort > \"$n.env\"\n\
         echo \"$TRESOR_STEP $TRESOR_HOOK\" >> \"$o/order\"\n\
         if [ -n \"$TRESOR_SUMMARY_FILE\" ]; then cp \"$TRESOR_SUMMARY_FILE\" \"$n.summary\"; \
         stat -c %a \"$TRESOR_SUMMARY_FILE\" > \"$n.mode\"; fi\n\
         echo \"hello from $TRESOR_STEP\"\n",
        out = out.display().to_string()
    );
    std::fs::write(&script, text).unwrap();
    (format!("sh {}", script.display()), out)
}

/// Hook tables: every hook of the job and of `steps` runs `rec`.
fn hook_tables(rec: &str, steps: &[&str]) -> String {
    let all = format!(
        "before = [{rec:?}]\nafter = [{rec:?}]\nfailure = [{rec:?}]\nfinally = [{rec:?}]\n"
    );
    let mut t = format!("[profiles.work.hooks]\n{all}");
    for s in steps {
        t.push_str(&format!("[profiles.work.hooks.{s}]\n{all}"));
    }
    t
}

/// The recorded environment of `STEP-HOOK`.
fn env_of(out: &Path, name: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(out.join(format!("{name}.env")))
        .unwrap_or_else(|_| panic!("hook {name} did not run"));
    text.lines()
        .map(|l| l.split_once('=').unwrap())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The expected environment: `TRESOR_` + each pair; the summary file is checked apart.
fn expect(out: &Path, name: &str, pairs: &[(&str, &str)], summary: bool) {
    let mut got = env_of(out, name);
    let file = got.remove("TRESOR_SUMMARY_FILE");
    assert_eq!(file.is_some(), summary, "{name}: {file:?}");
    let want: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("TRESOR_{k}"), v.to_string()))
        .collect();
    assert_eq!(got, want, "{name}");
    if let Some(f) = file {
        assert!(!Path::new(&f).exists(), "{f} stays after the job");
        let mode = std::fs::read_to_string(out.join(format!("{name}.mode"))).unwrap();
        assert_eq!(mode.trim(), "600", "{name}");
    }
}

fn summary_of(out: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("{name}.summary"))).unwrap()).unwrap()
}

fn order(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("order")).unwrap_or_default();
    std::fs::remove_file(out.join("order")).ok();
    text.lines().map(str::to_string).collect()
}

/// Flip a byte in the middle of every pack.
fn corrupt_packs(repo: &Path) {
    for d in std::fs::read_dir(repo.join("data")).unwrap().flatten() {
        for pack in std::fs::read_dir(d.path()).unwrap().flatten() {
            let mut bytes = std::fs::read(pack.path()).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(pack.path(), bytes).unwrap();
        }
    }
}

#[test]
fn every_hook_gets_its_environment_in_a_success_and_a_failure_run() {
    let env = Env::new();
    let (rec, out) = recorder(&env);
    let keys = "after_backup = [\"check\"]\ncheck_read_data_subset = \"100%\"";
    let file = config(&env, keys, &hook_tables(&rec, &["backup", "check"]));
    init(&env, &file);
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 0);
    let words = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        order(&out),
        words(
            "job before,backup before,backup after,backup finally,check before,check after,\
             check finally,job after,job finally"
        )
    );
    assert!(
        stderr(&o).contains("hook job before: hello from job\n"),
        "{}",
        stderr(&o)
    );
    let id = snapshot_ids(&env, &file).pop().unwrap();
    let base = |step, hook| [("PROFILE", "work"), ("STEP", step), ("HOOK", hook)];
    expect(&out, "job-before", &base("job", "before"), false);
    expect(&out, "backup-before", &base("backup", "before"), false);
    for (step, hook) in [
        ("backup", "after"),
        ("backup", "finally"),
        ("check", "after"),
    ] {
        let mut want = base(step, hook).to_vec();
        want.extend([("EXIT_CODE", "0"), ("SNAPSHOT_ID", id.as_str())]);
        expect(&out, &format!("{step}-{hook}"), &want, true);
    }
    let mut want = base("job", "finally").to_vec();
    want.extend([("EXIT_CODE", "0"), ("SNAPSHOT_ID", id.as_str())]);
    expect(&out, "job-finally", &want, true);
    let backup = summary_of(&out, "backup-after");
    assert_eq!(backup["message_type"], "summary");
    assert_eq!(backup["snapshot_id"], id.as_str());
    assert_eq!(summary_of(&out, "job-after"), backup);
    let check = summary_of(&out, "check-after");
    assert!(check.is_object() && check != backup, "{check}");
    // Damaged packs: backup (which cannot read its parent's trees: without the local cache it
    // reads them from packs) saves a snapshot with exit 3, check exits 5: the failure hooks see
    // their step's code, the job's the worst.
    corrupt_packs(&env.repo);
    let mut c = tresor(&env, &file);
    c.arg("--no-cache");
    run(c, &["run", "work", "-q"], 5);
    assert_eq!(
        order(&out),
        words(
            "job before,backup before,backup failure,backup finally,check before,check failure,\
             check finally,job failure,job finally"
        )
    );
    let ids = snapshot_ids(&env, &file);
    assert_eq!(ids.len(), 2);
    let new = ids[1].as_str();
    for (name, code) in [
        ("backup-failure", "3"),
        ("check-failure", "5"),
        ("check-finally", "5"),
        ("job-failure", "5"),
    ] {
        let (step, hook) = name.split_once('-').unwrap();
        let mut want = base(step, hook).to_vec();
        want.extend([("EXIT_CODE", code), ("SNAPSHOT_ID", new)]);
        expect(&out, name, &want, true);
    }
    assert_eq!(summary_of(&out, "job-failure")["snapshot_id"], new);
    assert_eq!(
        summary_of(&out, "check-failure")["message_type"],
        check["message_type"]
    );
}

#[test]
fn a_failing_before_hook_stops_the_job_with_8_unless_told_to_continue() {
    let env = Env::new();
    let (rec, out) = recorder(&env);
    let tables = format!(
        "[profiles.work.hooks]\nbefore = [\"echo no >&2; exit 3\", {rec:?}]\n\
         failure = [{rec:?}]\nfinally = [{rec:?}]\n[profiles.work.hooks.backup]\nbefore = [{rec:?}]\n"
    );
    let file = config(&env, "", &tables);
    init(&env, &file);
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 8);
    assert!(
        stderr(&o).contains("hook job before: no\n"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("warning: hook job before: exit code 3\n"),
        "{}",
        stderr(&o)
    );
    // The rest of the before hooks and the backup did not run.
    assert_eq!(order(&out), ["job failure", "job finally"]);
    let base = [("PROFILE", "work"), ("STEP", "job"), ("HOOK", "failure")];
    expect(
        &out,
        "job-failure",
        &[&base[..], &[("EXIT_CODE", "8")]].concat(),
        false,
    );
    assert!(snapshot_ids(&env, &file).is_empty());
    // A step's before hook stops the same way: the step's and the job's failure hooks see 8.
    let tables = format!(
        "[profiles.work.hooks]\nfailure = [{rec:?}]\n[profiles.work.hooks.backup]\n\
         before = [\"false\"]\nfailure = [{rec:?}]\nfinally = [{rec:?}]\n"
    );
    let file = config(&env, "", &tables);
    run(tresor(&env, &file), &["run", "work", "-q"], 8);
    assert_eq!(
        order(&out),
        ["backup failure", "backup finally", "job failure"]
    );
    assert_eq!(env_of(&out, "backup-failure")["TRESOR_EXIT_CODE"], "8");
    assert!(snapshot_ids(&env, &file).is_empty());
    // continue: a warning, and the job goes on.
    let tables = "[profiles.work.hooks]\nbefore = [\"false\"]\non_before_failure = \"continue\"\n";
    let file = config(&env, "", tables);
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 0);
    assert!(stderr(&o).contains("run work: job: a before hook failed: continuing"));
    assert_eq!(snapshot_ids(&env, &file).len(), 1);
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_children() {
    let env = Env::new();
    let pid = env.path("pid");
    let hook = format!("sleep 60 & echo $! > {}; wait", pid.display());
    let tables = format!("[profiles.work.hooks]\ntimeout = 1\nbefore = [{hook:?}]\n");
    let file = config(&env, "", &tables);
    init(&env, &file);
    let t = Instant::now();
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 8);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(
        stderr(&o).contains("warning: hook job before: timed out after 1 s: killed\n"),
        "{}",
        stderr(&o)
    );
    let pid = std::fs::read_to_string(&pid).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]);
    assert!(
        matches!(state, None | Some("Z")),
        "sleep still runs: {stat}"
    );
    assert!(snapshot_ids(&env, &file).is_empty());
}

/// A request the receiver saw.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Req {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A loopback HTTP receiver: answers the statuses of `script` in turn, then 200; its URL and
/// the requests it saw.
fn receiver(script: &[u16]) -> (String, Arc<Mutex<Vec<Req>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (log, script) = (seen.clone(), Vec::from(script));
    let mut script = script.into_iter();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace().map(str::to_string);
            let (method, path) = (parts.next().unwrap(), parts.next().unwrap());
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let Some((k, v)) = h.trim_end().split_once(": ") else {
                    break;
                };
                headers.insert(k.to_ascii_lowercase(), v.to_string());
            }
            let len = headers
                .get("content-length")
                .map_or(0, |v| v.parse().unwrap());
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            log.lock().unwrap().push(Req {
                method,
                path,
                headers,
                body,
            });
            let code = script.next().unwrap_or(200);
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

fn seen(r: &Arc<Mutex<Vec<Req>>>) -> Vec<Req> {
    r.lock().unwrap().clone()
}

#[test]
fn healthchecks_get_start_then_success_or_fail_with_the_log_tail() {
    let env = Env::new();
    let (url, log) = receiver(&[]);
    let keys = "after_backup = [\"check\"]\ncheck_read_data_subset = \"100%\"";
    let tables = format!("[profiles.work.notify]\nhealthchecks = \"{url}/ping/abc\"\n");
    let file = config(&env, keys, &tables);
    init(&env, &file);
    run(tresor(&env, &file), &["run", "work"], 0);
    let r = seen(&log);
    let paths: Vec<(&str, &str)> = r.iter().map(|q| (&*q.method, &*q.path)).collect();
    assert_eq!(paths, [("POST", "/ping/abc/start"), ("POST", "/ping/abc")]);
    assert_eq!(r[0].text(), "");
    let tail = r[1].text();
    assert!(
        tail.contains("run work: backup\n") && tail.contains("run work: check"),
        "{tail}"
    );
    corrupt_packs(&env.repo);
    log.lock().unwrap().clear();
    // Without the local cache the backup reads its parent's trees from the damaged packs.
    let mut c = tresor(&env, &file);
    c.arg("--no-cache");
    run(c, &["run", "work"], 5);
    let r = seen(&log);
    let paths: Vec<&str> = r.iter().map(|q| &*q.path).collect();
    assert_eq!(paths, ["/ping/abc/start", "/ping/abc/fail"]);
    assert!(r[1].text().contains("damaged"), "{}", r[1].text());
}

#[test]
fn a_webhook_gets_every_field_as_json_and_hostile_text_stays_json() {
    let env = Env::new();
    let (url, log) = receiver(&[]);
    let hostile = r#"printf 'say "hi" \\ \033[31m\001 end\n'"#;
    let tables = format!(
        "[profiles.work.hooks]\nafter = [{hostile:?}]\n[profiles.work.notify]\n\
         webhook = {{ url = \"{url}/hook\", headers = {{ Authorization = \"Bearer s3cret\" }} }}\n"
    );
    let file = config(&env, "", &tables);
    init(&env, &file);
    run(tresor(&env, &file), &["run", "work", "-q"], 0);
    let id = snapshot_ids(&env, &file).pop().unwrap();
    let r = seen(&log);
    assert_eq!(r.len(), 2);
    for q in &r {
        assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/hook"));
        assert_eq!(q.headers["authorization"], "Bearer s3cret");
        assert_eq!(q.headers["content-type"], "application/json");
    }
    let start = r[0].json();
    let keys: Vec<&String> = start.as_object().unwrap().keys().collect();
    let want = "event,exit_code,host,log_tail,profile,snapshot_id,step,summary";
    assert_eq!(keys, want.split(',').collect::<Vec<_>>());
    assert_eq!(
        start,
        serde_json::json!({"profile": "work", "host": "box1", "event": "start", "step": "job",
            "exit_code": null, "snapshot_id": null, "summary": null, "log_tail": ""})
    );
    let end = r[1].json();
    for doc in [&start, &end] {
        crate::json_contract::check("webhook (notification body)", doc);
    }
    assert_eq!(end["event"], "success");
    assert_eq!(end["exit_code"], 0);
    assert_eq!(end["snapshot_id"], id.as_str());
    assert_eq!(end["summary"]["message_type"], "summary");
    assert_eq!(end["summary"]["snapshot_id"], id.as_str());
    let tail = end["log_tail"].as_str().unwrap();
    assert!(tail.contains("run work: backup\n"), "{tail}");
    assert!(
        tail.contains(r#"hook job after: say "hi" \\ \x1b[31m\x01 end"#),
        "{tail:?}"
    );
}

#[test]
fn ntfy_gets_its_headers_and_a_text_body() {
    let env = Env::new();
    let (url, log) = receiver(&[]);
    let tables = format!(
        "[profiles.work.notify]\nntfy = {{ url = \"{url}/topic\", priority = \"high\", \
         tags = [\"floppy_disk\", \"work\"] }}\n"
    );
    let file = config(&env, "", &tables);
    init(&env, &file);
    run(tresor(&env, &file), &["run", "work", "-q"], 0);
    let r = seen(&log);
    assert_eq!(r.len(), 1, "start is not sent by default: {r:?}");
    assert_eq!(r[0].path, "/topic");
    assert_eq!(r[0].headers["title"], "tresor work on box1: success");
    assert_eq!(r[0].headers["priority"], "high");
    assert_eq!(r[0].headers["tags"], "floppy_disk,work");
    assert_eq!(r[0].text(), "tresor work on box1: success (exit code 0)\n");
}

#[test]
fn a_receiver_failing_twice_gets_three_requests_and_the_job_succeeds() {
    let env = Env::new();
    let (url, log) = receiver(&[500, 500]);
    let tables = format!(
        "[profiles.work.notify]\nwebhook = {{ url = \"{url}/h\", events = [\"success\"] }}\n"
    );
    let file = config(&env, "", &tables);
    init(&env, &file);
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 0);
    assert_eq!(seen(&log).len(), 3);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_url_is_one_masked_warning_per_ping_and_no_failure() {
    let env = Env::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:pw0rd@127.0.0.1:{port}/ping/uuid-secret?token=t0k");
    let tables = format!(
        "[profiles.work.notify]\nhealthchecks = \"{url}\"\nretries = 1\ntimeout = 2\n\
         webhook = {{ url = \"{url}\", headers = {{ X-Key = \"k3y\" }}, events = [] }}\n"
    );
    let file = config(&env, "", &tables);
    init(&env, &file);
    let t = Instant::now();
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 0);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    let prefix = format!("warning: notify healthchecks http://***@127.0.0.1:{port}/***: ");
    for w in &warnings {
        assert!(
            w.starts_with(&prefix) && w.ends_with("(after 2 attempts)"),
            "{w}"
        );
    }
    for secret in ["pw0rd", "uuid-secret", "t0k"] {
        assert!(!err.contains(secret), "{err}");
    }
    // profile show masks the same secrets and the headers' values.
    let o = run(
        tresor(&env, &file),
        &["profile", "show", "work", "--json"],
        0,
    );
    let shown = String::from_utf8_lossy(&o.stdout);
    for secret in ["pw0rd", "uuid-secret", "t0k", "k3y"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notify = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "notify");
    let masked = format!("http://***@127.0.0.1:{port}/***");
    assert_eq!(notify.unwrap()["value"]["healthchecks"], masked.as_str());
    assert_eq!(
        notify.unwrap()["value"]["webhook"]["headers"]["X-Key"],
        "***"
    );
}
