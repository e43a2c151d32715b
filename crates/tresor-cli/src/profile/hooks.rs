//! Hooks (docs/cli.md, "Hooks"): shell commands `tresor run` runs before and after the job and
//! each of its steps, with the job's state in their environment. Each runs as `sh -c CMD` in
//! its own process group; on its timeout the group is killed and the hook counts as failed.
//! Its output goes to standard error, each line prefixed `hook STEP WHICH: `.

use super::tail::Tail;
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The default timeout of a hook, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 300;

/// What a failing `before` hook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnBeforeFailure {
    /// The job ends (exit 8) after its `failure` and `finally` hooks (the default).
    Stop,
    /// A warning; the job goes on.
    Continue,
}

/// The hooks of the job or of one step.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookSet {
    /// Before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// After it, when it exited 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// After it, when it exited otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<String>,
    /// After it in any case, last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<String>,
    /// Seconds each hook may take (default 300; a step's default is the job's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `stop` (default; a step's default is the job's) or `continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_before_failure: Option<OnBeforeFailure>,
}

/// `[profiles.NAME.hooks]`: the job's hooks (the keys of a [`HookSet`]), and
/// `[profiles.NAME.hooks.STEP]` each step's.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// The job's `before` hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// The job's `after` hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The job's `failure` hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<String>,
    /// The job's `finally` hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<String>,
    /// Seconds each hook may take (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `stop` (default) or `continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_before_failure: Option<OnBeforeFailure>,
    /// Around `backup`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<HookSet>,
    /// Around `forget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget: Option<HookSet>,
    /// Around `prune`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<HookSet>,
    /// Around `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<HookSet>,
}

/// Which hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `before`.
    Before,
    /// `after`.
    After,
    /// `failure`.
    Failure,
    /// `finally`.
    Finally,
}

impl Which {
    /// The key's name, also `TRESOR_HOOK`.
    pub fn name(self) -> &'static str {
        match self {
            Which::Before => "before",
            Which::After => "after",
            Which::Failure => "failure",
            Which::Finally => "finally",
        }
    }
}

impl Hooks {
    /// The job's hooks.
    pub fn job(&self) -> HookSet {
        HookSet {
            before: self.before.clone(),
            after: self.after.clone(),
            failure: self.failure.clone(),
            finally: self.finally.clone(),
            timeout: self.timeout,
            on_before_failure: self.on_before_failure,
        }
    }

    /// The hooks of step `name` (`backup`, `forget`, `prune`, `check`), with the job's
    /// timeout and `on_before_failure` where the step sets none.
    pub fn step(&self, name: &str) -> HookSet {
        let set = match name {
            "backup" => &self.backup,
            "forget" => &self.forget,
            "prune" => &self.prune,
            "check" => &self.check,
            _ => &None,
        };
        let mut s = set.clone().unwrap_or_default();
        s.timeout = s.timeout.or(self.timeout);
        s.on_before_failure = s.on_before_failure.or(self.on_before_failure);
        s
    }
}

/// The state a hook sees in its environment.
#[derive(Debug)]
pub struct State<'a> {
    /// `TRESOR_PROFILE`.
    pub profile: &'a str,
    /// `TRESOR_STEP`: `job` or the step.
    pub step: &'a str,
    /// `TRESOR_EXIT_CODE` (not for `before`).
    pub exit_code: Option<i32>,
    /// `TRESOR_SNAPSHOT_ID`, once the backup saved one.
    pub snapshot_id: Option<&'a str>,
    /// `TRESOR_SUMMARY_FILE`, once the step wrote one.
    pub summary_file: Option<&'a Path>,
}

/// Run the `which` hooks of `set`; whether all succeeded. `before` hooks stop at the first
/// failure. Their output goes to standard error and `tail`.
pub fn fire(set: &HookSet, which: Which, st: &State, tail: &Tail) -> bool {
    let list = match which {
        Which::Before => &set.before,
        Which::After => &set.after,
        Which::Failure => &set.failure,
        Which::Finally => &set.finally,
    };
    let timeout = Duration::from_secs(set.timeout.unwrap_or(DEFAULT_TIMEOUT));
    let prefix = format!("hook {} {}", st.step, which.name());
    let mut ok = true;
    for cmd in list {
        if let Err(why) = one(cmd, which, st, timeout, &prefix, tail) {
            let line = format!("warning: {prefix}: {why}\n");
            eprint!("{line}");
            tail.push(line.as_bytes());
            ok = false;
            if which == Which::Before {
                break;
            }
        }
    }
    ok
}

/// Run one hook command; why it failed.
fn one(
    cmd: &str,
    which: Which,
    st: &State,
    timeout: Duration,
    prefix: &str,
    tail: &Tail,
) -> Result<(), String> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).stdin(Stdio::null());
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    environment(&mut c, which, st);
    let mut child = c.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let (prefix, tail) = (prefix.to_string(), tail.clone());
        std::thread::spawn(move || pump(r, &prefix, &tail))
    })
    .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                kill_group(child.id());
                let _ = child.wait();
                // Its pipes may be held by a process that left the group: do not wait for them.
                return Err(format!("timed out after {} s: killed", timeout.as_secs()));
            }
        }
    };
    for p in pumps {
        let _ = p.join();
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(n) => Err(format!("exit code {n}")),
        None => Err("killed by a signal".into()),
    }
}

/// Kill the process group `pid` leads.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// The hook's environment: `TRESOR_PROFILE`, `TRESOR_STEP`, `TRESOR_HOOK`, and when known
/// `TRESOR_EXIT_CODE`, `TRESOR_SNAPSHOT_ID`, `TRESOR_SUMMARY_FILE` (inherited ones removed).
fn environment(c: &mut Command, which: Which, st: &State) {
    c.env("TRESOR_PROFILE", st.profile)
        .env("TRESOR_STEP", st.step)
        .env("TRESOR_HOOK", which.name());
    for k in [
        "TRESOR_EXIT_CODE",
        "TRESOR_SNAPSHOT_ID",
        "TRESOR_SUMMARY_FILE",
    ] {
        c.env_remove(k);
    }
    if let (Some(code), false) = (st.exit_code, which == Which::Before) {
        c.env("TRESOR_EXIT_CODE", code.to_string());
    }
    if let Some(id) = st.snapshot_id {
        c.env("TRESOR_SNAPSHOT_ID", id);
    }
    if let Some(f) = st.summary_file {
        c.env("TRESOR_SUMMARY_FILE", f);
    }
}

/// Copy `r`'s lines to standard error and `tail`, each after `prefix: `.
fn pump(r: impl std::io::Read, prefix: &str, tail: &Tail) {
    let mut lines = BufReader::new(r);
    let mut buf = Vec::new();
    while let Ok(n) = lines.read_until(b'\n', &mut buf) {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let line = format!(
            "{prefix}: {}\n",
            crate::render::escape_controls(text.trim_end_matches('\n'))
        );
        eprint!("{line}");
        tail.push(line.as_bytes());
        buf.clear();
    }
}
