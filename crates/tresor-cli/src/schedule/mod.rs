//! `tresor schedule install|list|remove`: a profile's job (`tresor run NAME`) as a systemd
//! service and timer, or as a crontab line (docs/operations.md, "Schedules"). tresor writes
//! the unit files but never runs `systemctl`: it prints the line to run. Enabling a timer is
//! the administrator's decision; the command may run where no systemd runs (an image being
//! built, a container, a configuration-management step); and tests never touch the host's
//! service manager.

pub mod calendar;
pub mod unit;

use crate::args::{Global, ScheduleCommand, ScheduleInstallArgs, UnitDirArgs};
use crate::render::{self, Mode, Outcome, Text};
use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Run `tresor schedule …`.
///
/// # Errors
/// A bad `--at`, profile or name; the unit directory cannot be read or written; a file to
/// replace or remove is not one of tresor's.
pub fn run(c: &ScheduleCommand, g: &Global) -> Result<i32> {
    let mode = Mode {
        json: g.json,
        quiet: g.quiet,
    };
    match c {
        ScheduleCommand::Install(a) => render::emit(&install(a, g)?, mode)?,
        ScheduleCommand::List(d) => render::emit(&list(d)?, mode)?,
        ScheduleCommand::Remove { name, dir } => render::emit(&remove(name, dir)?, mode)?,
    }
    Ok(0)
}

/// The unit directory: `--unit-dir`, else `~/.config/systemd/user` (`--user`;
/// `$XDG_CONFIG_HOME/systemd/user` when set) or `/etc/systemd/system`.
///
/// # Errors
/// `--user` without `HOME` or `XDG_CONFIG_HOME`.
pub fn unit_dir(d: &UnitDirArgs) -> Result<PathBuf> {
    if let Some(dir) = &d.unit_dir {
        return Ok(dir.clone());
    }
    if !d.user {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("systemd/user"))
        .ok_or_else(|| anyhow!("--user: neither XDG_CONFIG_HOME nor HOME is set"))
}

/// `systemctl` or `systemctl --user`.
fn systemctl(user: bool) -> &'static str {
    if user {
        "systemctl --user"
    } else {
        "systemctl"
    }
}

/// What `schedule install` did (docs/cli.md, JSON `schedule install`).
#[derive(Debug, Serialize)]
pub struct Installed {
    /// The profile.
    pub name: String,
    /// `systemd` or `cron`.
    pub kind: &'static str,
    /// `OnCalendar=` (systemd) or the five time fields (cron).
    pub calendar: String,
    /// The unit files, in the order written (none for cron).
    pub units: Vec<UnitFile>,
    /// Whether the units were only printed (`--dry-run`).
    pub dry_run: bool,
    /// What to run next: the `systemctl` line, or the crontab line.
    pub command: String,
}

/// One unit file.
#[derive(Debug, Serialize)]
pub struct UnitFile {
    /// Its path.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// `schedule install`.
fn install(a: &ScheduleInstallArgs, g: &Global) -> Result<Installed> {
    unit::check_name(&a.name)?;
    let at = calendar::parse(&a.at)?;
    let config = std::path::absolute(crate::profile::load::locate(g.config.as_deref())?)
        .context("the configuration file")?;
    let chosen = crate::profile::load::choose(Some(&config), &a.name)?;
    let exe = std::env::current_exe().context("the tresor binary")?;
    if a.cron {
        let time = at.cron()?;
        let (exe, config) = (shell_word(&exe)?, shell_word(&config)?);
        return Ok(Installed {
            name: a.name.clone(),
            kind: "cron",
            command: format!("{time}  {exe} --config {config} run {}", a.name),
            calendar: time,
            units: Vec::new(),
            dry_run: a.dry_run,
        });
    }
    if let calendar::At::Systemd(expr) = &at {
        check_calendar(expr)?;
    }
    let spec = unit::Spec {
        name: a.name.clone(),
        exe,
        config,
        user: a.dir.user,
        writable: writable(&chosen.profile),
        password_file: chosen
            .profile
            .password_file
            .as_ref()
            .map(|p| p.get_ref().clone()),
        on_calendar: at.on_calendar(),
        delay: calendar::delay(&a.randomized_delay)?,
    };
    write_units(a, &spec)
}

/// Write (or with `--dry-run` only show) the two units of `spec`.
fn write_units(a: &ScheduleInstallArgs, spec: &unit::Spec) -> Result<Installed> {
    let dir = unit_dir(&a.dir)?;
    let base = format!("tresor-{}", a.name);
    let units = vec![
        UnitFile {
            path: dir.join(format!("{base}.service")).display().to_string(),
            text: unit::service(spec)?,
        },
        UnitFile {
            path: dir.join(format!("{base}.timer")).display().to_string(),
            text: unit::timer(spec),
        },
    ];
    if !a.dry_run {
        for u in &units {
            refuse_foreign(Path::new(&u.path))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        for d in &spec.writable {
            let _ = std::fs::create_dir_all(d);
        }
        for u in &units {
            std::fs::write(&u.path, &u.text).with_context(|| u.path.clone())?;
        }
    }
    let sc = systemctl(a.dir.user);
    Ok(Installed {
        name: a.name.clone(),
        kind: "systemd",
        calendar: spec.on_calendar.clone(),
        units,
        dry_run: a.dry_run,
        command: format!("{sc} daemon-reload && {sc} enable --now {base}.timer"),
    })
}

/// The directories the job writes: the cache (the profile's `cache_dir` or the default one),
/// a local repository, and the directory of the metrics textfile.
fn writable(p: &crate::profile::Profile) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = p
        .cache_dir
        .as_ref()
        .map(|c| c.get_ref().clone())
        .or_else(tresor_core::repo::cache::default_dir)
        .into_iter()
        .collect();
    if let Some(r) = &p.repository {
        let r = r.get_ref();
        let local = r.strip_prefix("local:").unwrap_or(r);
        if !local.contains("://") && !local.starts_with("s3:") {
            dirs.push(std::path::absolute(local).unwrap_or_else(|_| PathBuf::from(local)));
        }
    }
    // The metrics textfile is replaced by a rename: its directory must be writable.
    if let Some(parent) = (p.metrics_textfile.as_ref()).and_then(|m| m.get_ref().parent()) {
        let parent = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        dirs.push(parent);
    }
    dirs
}

/// A file that exists but does not begin with [`unit::MARKER`] is not tresor's to replace.
fn refuse_foreign(path: &Path) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.starts_with(unit::MARKER) => bail!(
            "{} exists and was not written by tresor schedule install: not replacing it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// A systemd calendar expression, checked by `systemd-analyze calendar` when installed.
fn check_calendar(expr: &str) -> Result<()> {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["calendar", expr])
        .output()
    else {
        return Ok(());
    };
    if !out.status.success() {
        bail!(
            "--at {expr:?}: not a systemd calendar expression (systemd-analyze calendar: {})",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        );
    }
    Ok(())
}

/// `path` as one word of `sh` in a crontab line: single-quoted; `%` (a newline to cron)
/// escaped.
fn shell_word(path: &Path) -> Result<String> {
    let Some(s) = path.to_str() else {
        bail!(
            "{} is not UTF-8: a crontab line cannot name it",
            path.display()
        );
    };
    if s.chars().any(char::is_control) {
        bail!("{s:?} has a control character: a crontab line cannot name it");
    }
    Ok(format!(
        "'{}'",
        s.replace('\'', "'\\''").replace('%', "\\%")
    ))
}

mod listing;
use listing::{list, remove};

impl Outcome for Installed {
    fn text(&self, t: &mut Text) {
        if self.kind == "cron" {
            t.info(format!(
                "crontab line for profile {} (add it with crontab -e):",
                self.name
            ));
            t.out(self.command.clone());
            return;
        }
        for u in &self.units {
            if self.dry_run {
                t.out(format!("# {}", u.path));
                t.out_lines(&u.text);
            } else {
                t.info(format!("wrote {}", u.path));
            }
        }
        t.info(format!(
            "schedule: {} (OnCalendar={})",
            self.name, self.calendar
        ));
        t.info("to enable it, run:");
        t.out(self.command.clone());
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}
