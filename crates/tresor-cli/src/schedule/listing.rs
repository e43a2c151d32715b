//! `schedule list` and `schedule remove`: only files that begin with [`unit::MARKER`].

use super::{systemctl, unit, unit_dir};
use crate::args::UnitDirArgs;
use crate::render::{Outcome, Text};
use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use std::path::Path;

/// The schedules of a unit directory (docs/cli.md, JSON `schedule list`).
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The unit directory.
    pub dir: String,
    /// One per timer tresor wrote, by name.
    pub schedules: Vec<Listing>,
}

/// One schedule.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// The profile.
    pub name: String,
    /// Always `systemd` (crontab lines are the user's, not listed).
    pub kind: &'static str,
    /// The timer's `OnCalendar=`.
    pub calendar: String,
    /// The next run as `systemd-analyze calendar` says it (null without it).
    pub next: Option<String>,
}

/// `schedule list`: the `tresor-NAME.timer` files with the marker, by name.
///
/// # Errors
/// The directory cannot be read (a missing one lists nothing).
pub fn list(d: &UnitDirArgs) -> Result<Listed> {
    let dir = unit_dir(d)?;
    let mut schedules = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Listed {
                dir: dir.display().to_string(),
                schedules,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("{}", dir.display())),
    };
    for entry in entries {
        let file = entry?.file_name();
        let Some(name) = file
            .to_str()
            .and_then(|f| f.strip_prefix("tresor-")?.strip_suffix(".timer"))
        else {
            continue;
        };
        let Some(text) = ours(&dir.join(&file)) else {
            continue;
        };
        let calendar = text
            .lines()
            .find_map(|l| l.strip_prefix("OnCalendar="))
            .unwrap_or("")
            .to_string();
        schedules.push(Listing {
            name: name.to_string(),
            kind: "systemd",
            next: next_run(&calendar),
            calendar,
        });
    }
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Listed {
        dir: dir.display().to_string(),
        schedules,
    })
}

/// The text of `path` if tresor wrote it.
fn ours(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|t| t.starts_with(unit::MARKER))
}

/// "Next elapse" of `systemd-analyze calendar EXPR`, if it is installed.
fn next_run(expr: &str) -> Option<String> {
    let out = std::process::Command::new("systemd-analyze")
        .args(["calendar", expr])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Next elapse:"))
        .map(|v| v.trim().to_string())
}

/// What `schedule remove` did (docs/cli.md, JSON `schedule remove`).
#[derive(Debug, Serialize)]
pub struct Removed {
    /// The profile.
    pub name: String,
    /// The files removed.
    pub removed: Vec<String>,
    /// The `systemctl` line to run.
    pub command: String,
}

/// `schedule remove NAME`: both units, only if both (those present) are tresor's.
///
/// # Errors
/// A bad name; neither unit exists; one exists but is not tresor's (then nothing is removed).
pub fn remove(name: &str, d: &UnitDirArgs) -> Result<Removed> {
    unit::check_name(name)?;
    let dir = unit_dir(d)?;
    let files: Vec<_> = ["timer", "service"]
        .iter()
        .map(|ext| dir.join(format!("tresor-{name}.{ext}")))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if files.is_empty() {
        bail!("no schedule {name:?} in {}", dir.display());
    }
    for f in &files {
        if ours(f).is_none() || f.symlink_metadata()?.file_type().is_symlink() {
            bail!(
                "{} was not written by tresor schedule install: not removing it",
                f.display()
            );
        }
    }
    let mut removed = Vec::new();
    for f in &files {
        std::fs::remove_file(f).with_context(|| format!("{}", f.display()))?;
        removed.push(f.display().to_string());
    }
    let sc = systemctl(d.user);
    Ok(Removed {
        name: name.to_string(),
        removed,
        command: format!("{sc} disable --now tresor-{name}.timer; {sc} daemon-reload"),
    })
}

impl Outcome for Listed {
    fn text(&self, t: &mut Text) {
        t.info(format!("schedules in {}", self.dir));
        for s in &self.schedules {
            let next = s.next.as_deref().unwrap_or("-");
            t.out(format!(
                "{}  {}  {}  next: {next}",
                s.name, s.kind, s.calendar
            ));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}

impl Outcome for Removed {
    fn text(&self, t: &mut Text) {
        for f in &self.removed {
            t.info(format!("removed {f}"));
        }
        t.info("to stop the timer, run:");
        t.out(self.command.clone());
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}
