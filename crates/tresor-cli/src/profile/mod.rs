//! Profiles: named sets of defaults in a TOML configuration file (docs/cli.md, "Profiles").
//!
//! The file is found by [`load::locate`] (`--config`, `TRESOR_CONFIG`, the XDG user file, then
//! `/etc/tresor/tresor.toml`) and read by [`load::read`] into a [`Config`]: unknown keys and a
//! password kept in a file others can read are errors naming the file and line. [`merge`] lays a
//! profile under what the user gave (flag > environment > profile > built-in default); [`show`]
//! prints the effective settings with their origins; [`run`] is `tresor run NAME`.
//! The configuration is a CLI matter: nothing below the CLI knows about it.

pub mod load;
pub mod merge;
pub mod run;
pub mod show;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

/// The whole configuration file: `[profiles.NAME]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// `[prices.CLASS]` tables: checked and applied by `crate::prices` (`tresor cost`, the
    /// summaries' monthly costs).
    #[serde(default)]
    pub prices: Option<toml::Table>,
}

/// One `[profiles.NAME]` table. Every key is optional; each keeps its place in the file (a byte
/// span) so that messages and `profile show` can name the line. The keys are the names of the
/// flags they stand for (`keep_daily` is `forget --keep-daily`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `-r/--repo`: the repository location.
    pub repository: Option<Spanned<String>>,
    /// `--password-file`.
    pub password_file: Option<Spanned<PathBuf>>,
    /// `--password-command`.
    pub password_command: Option<Spanned<String>>,
    /// The password itself: refused unless the file is mode 600 (no group/other bits) and
    /// `allow_password_in_file = true`.
    pub password: Option<Spanned<String>>,
    /// Allows `password` (see there).
    pub allow_password_in_file: Option<Spanned<bool>>,
    /// `--cache-dir`.
    pub cache_dir: Option<Spanned<PathBuf>>,
    /// `backup --host`, and `forget --host` (the filter).
    pub host: Option<Spanned<String>>,
    /// `backup --tag`, one tag per element.
    pub tags: Option<Spanned<Vec<String>>>,
    /// `backup`'s PATHs, when none is given (a leading `~/` is the home directory).
    pub sources: Option<Spanned<Vec<String>>>,
    /// `backup --exclude`.
    pub excludes: Option<Spanned<Vec<String>>>,
    /// `backup --exclude-file`.
    pub exclude_files: Option<Spanned<Vec<PathBuf>>>,
    /// `backup --iexclude`.
    pub iexcludes: Option<Spanned<Vec<String>>>,
    /// `backup --exclude-caches`.
    pub exclude_caches: Option<Spanned<bool>>,
    /// `backup --one-file-system`.
    pub one_file_system: Option<Spanned<bool>>,
    /// `backup --exclude-larger-than` (bytes or with a unit k, m, g, t).
    pub exclude_larger_than: Option<Spanned<String>>,
    /// `forget --keep-last`.
    pub keep_last: Option<Spanned<Count>>,
    /// `forget --keep-hourly`.
    pub keep_hourly: Option<Spanned<Count>>,
    /// `forget --keep-daily`.
    pub keep_daily: Option<Spanned<Count>>,
    /// `forget --keep-weekly`.
    pub keep_weekly: Option<Spanned<Count>>,
    /// `forget --keep-monthly`.
    pub keep_monthly: Option<Spanned<Count>>,
    /// `forget --keep-yearly`.
    pub keep_yearly: Option<Spanned<Count>>,
    /// `forget --keep-within` (a duration such as `"2y5m7d3h"`).
    pub keep_within: Option<Spanned<String>>,
    /// `forget --keep-tag`, one element per option.
    pub keep_tags: Option<Spanned<Vec<String>>>,
    /// What `tresor run` does after the backup, in this order.
    pub after_backup: Option<Spanned<Vec<Step>>>,
    /// `check --read-data-subset` for the `check` step of `tresor run` (`"5%"`, `"1/10"`).
    pub check_read_data_subset: Option<Spanned<String>>,
}

/// A `keep_*` count: an integer, or a string the flag takes (`"unlimited"`, `"-1"`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Count {
    /// `keep_daily = 7`.
    Number(i64),
    /// `keep_daily = "unlimited"`.
    Text(String),
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Number(n) => write!(f, "{n}"),
            Count::Text(s) => f.write_str(s),
        }
    }
}

/// A step of `tresor run` after the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// `forget` with the profile's keep-* policy and host.
    Forget,
    /// `prune`.
    Prune,
    /// `check`, with `--read-data-subset` from `check_read_data_subset`.
    Check,
}

impl Step {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Forget => "forget",
            Step::Prune => "prune",
            Step::Check => "check",
        }
    }
}

/// A profile as chosen: its name, the file it came from and that file's text (for lines).
#[derive(Debug)]
pub struct Chosen {
    /// The profile's name.
    pub name: String,
    /// The configuration file.
    pub file: PathBuf,
    /// The file's text.
    pub text: String,
    /// The profile.
    pub profile: Profile,
}

impl Chosen {
    /// `FILE:LINE` of a value of the profile.
    pub fn at<T>(&self, v: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.file.display(),
            load::line_of(&self.text, v.span().start)
        )
    }
}

/// Run the parsed command line: `run` and `profile` here, every other command in
/// [`crate::commands::run`]. `chosen`: the profile [`merge::apply`] laid under `cli`, whose
/// matches are `m`.
///
/// # Errors
/// The command's.
pub fn dispatch(
    cli: crate::args::Cli,
    m: &clap::ArgMatches,
    chosen: Option<Chosen>,
) -> anyhow::Result<i32> {
    use crate::args::Command;
    match (&cli.command, chosen) {
        (Command::Run(_), Some(c)) => {
            let globals = run::globals(m)?;
            run::run(&c, &globals)
        }
        (Command::Profile(pc), c) => show::run(pc, &cli.global, m, c.as_ref()),
        _ => crate::commands::run(cli),
    }
}
