//! `tresor run NAME`: the profile's job. Each step is `tresor` itself, run as a child with the
//! same global options and `-P NAME` (so each step layers the profile exactly as `-P` does and
//! handles its own signals): `backup`, then the `after_backup` steps in the file's order. The
//! exit code is the worst of the steps': the highest code (any failure beats success, 0).
//! Hooks ([`super::hooks`]) run around the job and each step; notifications ([`notify`]) go
//! out at its start and end, carrying the tail of its log ([`Tail`]).

use super::hooks::{HookSet, Hooks, OnBeforeFailure, State, Which, fire};
use super::tail::Tail;
use super::{Chosen, Step};
use crate::exit;
use crate::notify::{self, Event, Kind};
use anyhow::{Context as _, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Run the job of `chosen`; `globals`: the user's global options ([`globals`]). Order: the
/// job's `before` hooks, each step between its own hooks, the job's `after` or `failure`
/// hooks, its `finally` hooks; notifications at the start and the end.
///
/// # Errors
/// The steps cannot be started; no private temporary directory.
pub fn run(chosen: &Chosen, globals: &[OsString]) -> Result<i32> {
    let p = &chosen.profile;
    let mut job = Job {
        chosen,
        globals,
        hooks: p
            .hooks
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_default(),
        notify: p.notify.as_ref().map(|n| n.get_ref().clone()),
        dir: PrivateDir::new()?,
        tail: Tail::default(),
        snapshot: None,
        summary: None,
    };
    job.ping(Kind::Start, None);
    let set = job.hooks.job();
    let code = if job.before(&set, "job") {
        job.steps(&steps(chosen))?
    } else {
        exit::HOOK_STOPPED
    };
    job.after(&set, "job", code, job.summary.clone().as_deref());
    job.ping(
        if code == 0 {
            Kind::Success
        } else {
            Kind::Failure
        },
        Some(code),
    );
    Ok(code)
}

/// The steps' command words: `backup`, then the `after_backup` steps in the file's order.
fn steps(chosen: &Chosen) -> Vec<Vec<String>> {
    let p = &chosen.profile;
    let after: Vec<Step> = p
        .after_backup
        .as_ref()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default();
    let mut steps: Vec<Vec<String>> = vec![vec!["backup".into()]];
    for step in &after {
        let mut words = vec![step.name().to_string()];
        if let (Step::Check, Some(subset)) = (step, &p.check_read_data_subset) {
            words.extend(["--read-data-subset".into(), subset.get_ref().clone()]);
        }
        if let (Step::Drill, Some(n)) = (step, &p.drill_sample) {
            words.extend(["--sample".into(), n.get_ref().to_string()]);
        }
        steps.push(words);
    }
    steps
}

/// A running job.
struct Job<'a> {
    chosen: &'a Chosen,
    globals: &'a [OsString],
    hooks: Hooks,
    notify: Option<notify::Config>,
    dir: PrivateDir,
    tail: Tail,
    /// The snapshot the backup saved.
    snapshot: Option<String>,
    /// The backup's summary file.
    summary: Option<PathBuf>,
}

impl Job<'_> {
    /// Run the steps; the worst exit code (a `before` hook that stops: [`exit::HOOK_STOPPED`]).
    fn steps(&mut self, steps: &[Vec<String>]) -> Result<i32> {
        let mut worst = 0;
        let mut saved = true;
        for words in steps {
            let step = words.join(" ");
            let name = self.chosen.name.clone();
            if !saved && matches!(words[0].as_str(), "forget" | "prune") {
                self.say(format!("run {name}: {step}: skipped (no snapshot saved)"));
                continue;
            }
            let set = self.hooks.step(&words[0]);
            if !self.before(&set, &words[0]) {
                self.after(&set, &words[0], exit::HOOK_STOPPED, None);
                return Ok(worst.max(exit::HOOK_STOPPED));
            }
            self.say(format!("run {name}: {step}"));
            let file = self.dir.0.join(format!("{}.json", words[0]));
            let code = self.child(words, &file)?;
            let file = file.exists().then_some(file);
            if words[0] == "backup" {
                saved = code == 0 || code == exit::PARTIAL;
                self.snapshot = file.as_deref().and_then(snapshot_id);
                self.summary.clone_from(&file);
            }
            self.after(&set, &words[0], code, file.as_deref());
            worst = worst.max(code);
            if code == exit::INTERRUPTED {
                break;
            }
        }
        Ok(worst)
    }

    /// Fire the `before` hooks of `step`; whether to go on.
    fn before(&self, set: &HookSet, step: &str) -> bool {
        let st = self.state(step, None, None);
        if fire(set, Which::Before, &st, &self.tail) {
            return true;
        }
        let go_on = set.on_before_failure == Some(OnBeforeFailure::Continue);
        self.say(format!(
            "run {}: {step}: a before hook failed: {}",
            self.chosen.name,
            if go_on { "continuing" } else { "stopping" }
        ));
        go_on
    }

    /// Fire the `after` (code 0) or `failure` hooks of `step`, then its `finally` hooks.
    fn after(&self, set: &HookSet, step: &str, code: i32, summary: Option<&Path>) {
        let st = self.state(step, Some(code), summary);
        let which = if code == 0 {
            Which::After
        } else {
            Which::Failure
        };
        fire(set, which, &st, &self.tail);
        fire(set, Which::Finally, &st, &self.tail);
    }

    /// The hooks' view of the job.
    fn state<'s>(&'s self, step: &'s str, code: Option<i32>, sum: Option<&'s Path>) -> State<'s> {
        State {
            profile: &self.chosen.name,
            step,
            exit_code: code,
            snapshot_id: self.snapshot.as_deref(),
            summary_file: sum,
        }
    }

    /// A line on standard error, kept in the log's tail.
    fn say(&self, line: String) {
        self.tail.push(format!("{line}\n").as_bytes());
        crate::render::say(line);
    }

    /// Send a notification of `kind`, if the profile has any.
    fn ping(&self, kind: Kind, exit_code: Option<i32>) {
        let Some(cfg) = &self.notify else { return };
        let summary = self
            .summary
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let host = self.chosen.profile.host.as_ref();
        let event = Event {
            profile: self.chosen.name.clone(),
            host: host.map_or_else(notify::hostname, |h| h.get_ref().clone()),
            kind,
            step: "job".into(),
            exit_code,
            snapshot_id: self.snapshot.clone(),
            summary,
            log_tail: self.tail.text(),
        };
        notify::send(cfg, &event);
    }

    /// Run `tresor GLOBALS -P NAME --summary-file FILE WORDS…`; its exit code (a signal N:
    /// 128 + N). With notifications its standard error passes through the log's tail.
    fn child(&self, words: &[String], summary: &Path) -> Result<i32> {
        let exe = std::env::current_exe().context("the tresor binary")?;
        let mut c = Command::new(exe);
        c.args(self.globals)
            .args(["-P", &self.chosen.name])
            .arg("--summary-file")
            .arg(summary)
            .args(words);
        if self.notify.is_some() {
            c.stderr(Stdio::piped());
        }
        let mut child = c.spawn().context("starting a step")?;
        let pump = child.stderr.take().map(|e| {
            let tail = self.tail.clone();
            std::thread::spawn(move || tail.pass_through(e))
        });
        let status = child.wait().context("waiting for a step")?;
        if let Some(p) = pump {
            let _ = p.join();
        }
        Ok(match status.code() {
            Some(c) => c,
            None => std::os::unix::process::ExitStatusExt::signal(&status)
                .map_or(exit::ERROR, |s| 128 + s),
        })
    }
}

/// The `snapshot_id` of a backup's JSON summary.
fn snapshot_id(file: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    v.get("snapshot_id")?.as_str().map(str::to_string)
}

/// A directory only we can enter (mode 700) for the steps' summaries; removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    /// A new directory under the temporary directory.
    ///
    /// # Errors
    /// It cannot be created.
    fn new() -> Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt as _;
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let mut last = None;
        for n in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = base.join(format!("tresor-run-{pid}-{nanos:x}-{n}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(PrivateDir(dir)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no temporary directory"), Into::into))
            .context("a private temporary directory for the job")
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The global options the user gave on the command line (`m`: its top-level matches), as
/// words for the steps: `--long VALUE` for each value, `--long` for each switch or count.
/// `-P` is left out (each step gets `-P NAME`).
///
/// # Errors
/// `-P` given as well as `run NAME`.
pub fn globals(m: &ArgMatches) -> Result<Vec<OsString>> {
    if m.value_source("profile") == Some(ValueSource::CommandLine) {
        bail!("run NAME names the profile: leave out -P/--profile");
    }
    let cmd = crate::help::command();
    let mut words = Vec::new();
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if m.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = OsString::from(format!("--{long}"));
        match arg.get_action() {
            ArgAction::Count => words.extend(std::iter::repeat_n(flag, m.get_count(id).into())),
            ArgAction::SetTrue => words.push(flag),
            _ => {
                for v in m.get_raw(id).into_iter().flatten() {
                    words.extend([flag.clone(), v.to_os_string()]);
                }
            }
        }
    }
    Ok(words)
}
