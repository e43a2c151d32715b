//! `tresor run NAME`: the profile's job. Each step is `tresor` itself, run as a child with the
//! same global options and `-P NAME` (so each step layers the profile exactly as `-P` does and
//! handles its own signals): `backup`, then the `after_backup` steps in the file's order. The
//! exit code is the worst of the steps': the highest code (any failure beats success, 0).

use super::{Chosen, Step};
use crate::exit;
use anyhow::{Context as _, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};
use std::ffi::OsString;
use std::process::Command;

/// Run the job of `chosen`; `globals`: the user's global options ([`globals`]).
///
/// # Errors
/// The steps cannot be started.
pub fn run(chosen: &Chosen, globals: &[OsString]) -> Result<i32> {
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
    let mut worst = 0;
    let mut saved = true;
    for words in &steps {
        let step = words.join(" ");
        let skip = !saved && matches!(words[0].as_str(), "forget" | "prune");
        if skip {
            crate::render::say(format!(
                "run {}: {step}: skipped (no snapshot saved)",
                chosen.name
            ));
            continue;
        }
        crate::render::say(format!("run {}: {step}", chosen.name));
        let code = child(&chosen.name, globals, words)?;
        if words[0] == "backup" {
            saved = code == 0 || code == exit::PARTIAL;
        }
        worst = worst.max(code);
        if code == exit::INTERRUPTED {
            break;
        }
    }
    Ok(worst)
}

/// Run `tresor GLOBALS -P NAME WORDS…`; its exit code (a signal N: 128 + N).
fn child(name: &str, globals: &[OsString], words: &[String]) -> Result<i32> {
    let exe = std::env::current_exe().context("the tresor binary")?;
    let status = Command::new(exe)
        .args(globals)
        .args(["-P", name])
        .args(words)
        .status()
        .context("starting a step")?;
    Ok(match status.code() {
        Some(c) => c,
        None => {
            std::os::unix::process::ExitStatusExt::signal(&status).map_or(exit::ERROR, |s| 128 + s)
        }
    })
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
