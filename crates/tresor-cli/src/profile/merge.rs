//! Laying a profile under the command line: a setting the user gave (flag or environment
//! variable, as clap's [`ArgMatches::value_source`] tells) stays; any other takes the profile's
//! value; what neither gives keeps its built-in default.

use super::{Chosen, Profile, load};
use crate::args::{BackupArgs, Cli, Command, ForgetArgs, Global};
use anyhow::Result;
use clap::ArgMatches;
use clap::parser::ValueSource;
use std::path::PathBuf;
use toml::Spanned;

/// Where a setting the user gave comes from, as `profile show` names it (a profile's own
/// setting is `FILE:LINE`, [`Chosen::at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    Flag,
    /// This environment variable.
    Env(&'static str),
    /// Nobody: the built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Where the value of argument `id` in `m` came from, if the user gave it.
pub fn given(m: &ArgMatches, id: &str, env: Option<&'static str>) -> Option<Origin> {
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Origin::Flag),
        Some(ValueSource::EnvVariable) => Some(Origin::Env(env.unwrap_or("?"))),
        _ => None,
    }
}

/// The name of the profile the command line asks for: `run NAME` or `profile show NAME`, else
/// `-P NAME`.
pub fn wanted(cli: &Cli) -> Option<&str> {
    match &cli.command {
        Command::Run(a) => Some(&a.name),
        Command::Profile(crate::args::ProfileCommand::Show { name }) => Some(name),
        _ => cli.global.profile.as_deref(),
    }
}

/// Apply the profile the command line names (if any) to `cli`, whose matches are `m`.
///
/// # Errors
/// The configuration cannot be read or has no such profile.
pub fn apply(cli: &mut Cli, m: &ArgMatches) -> Result<Option<Chosen>> {
    let Some(name) = wanted(cli).map(str::to_string) else {
        return Ok(None);
    };
    let chosen = load::choose(cli.global.config.as_deref(), &name)?;
    global(&mut cli.global, m, &chosen.profile);
    command(&mut cli.command, m, &chosen.profile);
    metrics_of(&mut cli.command, m, &chosen);
    Ok(Some(chosen))
}

/// Fill `slot` from the profile's `value` (converted by `f`) unless argument `id` was given.
fn fill<T, U: Clone>(
    m: &ArgMatches,
    id: &str,
    slot: &mut T,
    value: Option<&Spanned<U>>,
    f: impl FnOnce(U) -> T,
) {
    if let (None, Some(v)) = (given(m, id, None), value) {
        *slot = f(v.get_ref().clone());
    }
}

/// Whether the user gave a password source: a flag, its variable, or `TRESOR_PASSWORD`.
pub fn password_given(m: &ArgMatches) -> bool {
    given(m, "password_file", None).is_some()
        || given(m, "password_command", None).is_some()
        || std::env::var_os("TRESOR_PASSWORD").is_some()
}

/// The global options: repository, password source, cache directory.
fn global(g: &mut Global, m: &ArgMatches, p: &Profile) {
    fill(m, "repo", &mut g.repo, p.repository.as_ref(), Some);
    fill(m, "cache_dir", &mut g.cache_dir, p.cache_dir.as_ref(), Some);
    if !password_given(m) {
        g.password_file = p.password_file.as_ref().map(|v| v.get_ref().clone());
        g.password_command = p.password_command.as_ref().map(|v| v.get_ref().clone());
        g.profile_password = p.password.as_ref().map(|v| v.get_ref().clone());
    }
}

/// The options of the command itself (`backup`, `forget`; the others take only global ones).
pub fn command(c: &mut Command, m: &ArgMatches, p: &Profile) {
    match c {
        Command::Backup(a) => backup(a, m.subcommand_matches("backup").unwrap_or(m), p),
        Command::Forget(a) => forget(a, m.subcommand_matches("forget").unwrap_or(m), p),
        _ => {}
    }
}

/// `backup`: sources (when no PATH and no other source is given), excludes, tags, host.
fn backup(a: &mut BackupArgs, m: &ArgMatches, p: &Profile) {
    let no_source = a.paths.is_empty()
        && !a.stdin
        && a.files_from.is_empty()
        && a.files_from_verbatim.is_empty()
        && a.files_from_raw.is_empty();
    if no_source && let Some(s) = &p.sources {
        a.paths = s.get_ref().iter().map(|s| home(s)).collect();
    }
    fill(m, "excludes", &mut a.excludes, p.excludes.as_ref(), |v| v);
    fill(
        m,
        "exclude_files",
        &mut a.exclude_files,
        p.exclude_files.as_ref(),
        |v| v,
    );
    fill(
        m,
        "iexcludes",
        &mut a.iexcludes,
        p.iexcludes.as_ref(),
        |v| v,
    );
    fill(
        m,
        "exclude_caches",
        &mut a.exclude_caches,
        p.exclude_caches.as_ref(),
        |v| v,
    );
    fill(
        m,
        "one_file_system",
        &mut a.one_file_system,
        p.one_file_system.as_ref(),
        |v| v,
    );
    let larger = p.exclude_larger_than.as_ref();
    fill(
        m,
        "exclude_larger_than",
        &mut a.exclude_larger_than,
        larger,
        Some,
    );
    fill(m, "tags", &mut a.tags, p.tags.as_ref(), |v| v);
    fill(m, "host", &mut a.host, p.host.as_ref(), Some);
}

/// `forget`: the keep-* policy and the host filter.
fn forget(a: &mut ForgetArgs, m: &ArgMatches, p: &Profile) {
    let count = |c: super::Count| Some(c.to_string());
    fill(
        m,
        "keep_last",
        &mut a.keep_last,
        p.keep_last.as_ref(),
        count,
    );
    fill(
        m,
        "keep_hourly",
        &mut a.keep_hourly,
        p.keep_hourly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_daily",
        &mut a.keep_daily,
        p.keep_daily.as_ref(),
        count,
    );
    fill(
        m,
        "keep_weekly",
        &mut a.keep_weekly,
        p.keep_weekly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_monthly",
        &mut a.keep_monthly,
        p.keep_monthly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_yearly",
        &mut a.keep_yearly,
        p.keep_yearly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_within",
        &mut a.keep_within,
        p.keep_within.as_ref(),
        Some,
    );
    fill(
        m,
        "keep_tags",
        &mut a.keep_tags,
        p.keep_tags.as_ref(),
        |v| v,
    );
    fill(m, "hosts", &mut a.filter.hosts, p.host.as_ref(), |h| {
        vec![h]
    });
}

/// A source path: a leading `~/` is `$HOME/`.
fn home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(s),
    }
}

/// `backup`, `check` and `snapshots --check-overdue`: where metrics go (`metrics_textfile`,
/// `pushgateway`), the `profile` label, and `max_age`.
fn metrics_of(c: &mut Command, m: &ArgMatches, chosen: &Chosen) {
    let p = &chosen.profile;
    let (a, sub) = match c {
        Command::Backup(a) => (&mut a.metrics, "backup"),
        Command::Check(a) => (&mut a.metrics, "check"),
        Command::Snapshots(a) if a.check_overdue => {
            let sm = m.subcommand_matches("snapshots").unwrap_or(m);
            fill(sm, "max_age", &mut a.max_age, p.max_age.as_ref(), Some);
            (&mut a.metrics, "snapshots")
        }
        _ => return,
    };
    let sm = m.subcommand_matches(sub).unwrap_or(m);
    let file = p.metrics_textfile.as_ref();
    fill(sm, "metrics_textfile", &mut a.metrics_textfile, file, Some);
    fill(
        sm,
        "pushgateway",
        &mut a.pushgateway,
        p.pushgateway.as_ref(),
        Some,
    );
    a.profile = Some(chosen.name.clone());
}
