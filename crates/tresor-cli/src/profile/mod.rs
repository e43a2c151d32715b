//! Profiles: named sets of defaults in a TOML configuration file (docs/cli.md, "Profiles").
//!
//! The file is found by [`load::locate`] (`--config`, `TRESOR_CONFIG`, the XDG user file, then
//! `/etc/tresor/tresor.toml`) and read by [`load::read`] into a [`Config`]: unknown keys and a
//! password kept in a file others can read are errors naming the file and line. [`merge`] lays a
//! profile under what the user gave (flag > environment > profile > built-in default); [`show`]
//! prints the effective settings with their origins; [`run`] is `tresor run NAME`.
//! The configuration is a CLI matter: nothing below the CLI knows about it.

pub mod hooks;
pub mod load;
pub mod merge;
pub mod options;
pub mod run;
pub mod schema;
pub mod show;
pub mod tail;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

/// The whole configuration file: `[profiles.NAME]` tables.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// `[prices.CLASS]` tables: checked and applied by `crate::prices` (`tresor cost`, the
    /// summaries' monthly costs).
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, crate::prices::Override>>")]
    pub prices: Option<toml::Table>,
}

/// One `[profiles.NAME]` table. Every key is optional; each keeps its place in the file (a byte
/// span) so that messages and `profile show` can name the line. The keys are the names of the
/// flags they stand for (`keep_daily` is `forget --keep-daily`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `-r/--repo`: the repository location.
    #[schemars(with = "Option<String>")]
    pub repository: Option<Spanned<String>>,
    /// `--password-file`.
    #[schemars(with = "Option<PathBuf>")]
    pub password_file: Option<Spanned<PathBuf>>,
    /// `--password-command`.
    #[schemars(with = "Option<String>")]
    pub password_command: Option<Spanned<String>>,
    /// The password itself: refused unless the file is mode 600 (no group/other bits) and
    /// `allow_password_in_file = true`.
    #[schemars(with = "Option<String>")]
    pub password: Option<Spanned<String>>,
    /// Allows `password` (see there).
    #[schemars(with = "Option<bool>")]
    pub allow_password_in_file: Option<Spanned<bool>>,
    /// `--cache-dir`.
    #[schemars(with = "Option<PathBuf>")]
    pub cache_dir: Option<Spanned<PathBuf>>,
    /// `--key-file`: an unlocked key file (`tresor key export --unlocked`) opens the repository
    /// instead of a password.
    #[schemars(with = "Option<PathBuf>")]
    pub key_file: Option<Spanned<PathBuf>>,
    /// `backup --host`, and `forget --host` (the filter).
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// `backup --tag`, one tag per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Spanned<Vec<String>>>,
    /// `backup`'s PATHs, when none is given (a leading `~/` is the home directory).
    #[schemars(with = "Option<Vec<String>>")]
    pub sources: Option<Spanned<Vec<String>>>,
    /// `backup --exclude`.
    #[schemars(with = "Option<Vec<String>>")]
    pub excludes: Option<Spanned<Vec<String>>>,
    /// `backup --exclude-file`.
    #[schemars(with = "Option<Vec<PathBuf>>")]
    pub exclude_files: Option<Spanned<Vec<PathBuf>>>,
    /// `backup --iexclude`.
    #[schemars(with = "Option<Vec<String>>")]
    pub iexcludes: Option<Spanned<Vec<String>>>,
    /// `backup --exclude-caches`.
    #[schemars(with = "Option<bool>")]
    pub exclude_caches: Option<Spanned<bool>>,
    /// `backup --one-file-system`.
    #[schemars(with = "Option<bool>")]
    pub one_file_system: Option<Spanned<bool>>,
    /// `backup --exclude-larger-than` (bytes or with a unit k, m, g, t).
    #[schemars(with = "Option<String>")]
    pub exclude_larger_than: Option<Spanned<String>>,
    /// `forget --keep-last`.
    #[schemars(with = "Option<Count>")]
    pub keep_last: Option<Spanned<Count>>,
    /// `forget --keep-hourly`.
    #[schemars(with = "Option<Count>")]
    pub keep_hourly: Option<Spanned<Count>>,
    /// `forget --keep-daily`.
    #[schemars(with = "Option<Count>")]
    pub keep_daily: Option<Spanned<Count>>,
    /// `forget --keep-weekly`.
    #[schemars(with = "Option<Count>")]
    pub keep_weekly: Option<Spanned<Count>>,
    /// `forget --keep-monthly`.
    #[schemars(with = "Option<Count>")]
    pub keep_monthly: Option<Spanned<Count>>,
    /// `forget --keep-yearly`.
    #[schemars(with = "Option<Count>")]
    pub keep_yearly: Option<Spanned<Count>>,
    /// `forget --keep-within` (a duration such as `"2y5m7d3h"`).
    #[schemars(with = "Option<String>")]
    pub keep_within: Option<Spanned<String>>,
    /// `forget --keep-tag`, one element per option.
    #[schemars(with = "Option<Vec<String>>")]
    pub keep_tags: Option<Spanned<Vec<String>>>,
    /// What `tresor run` does after the backup, in this order.
    #[schemars(with = "Option<Vec<Step>>")]
    pub after_backup: Option<Spanned<Vec<Step>>>,
    /// `check --read-data-subset` for the `check` step of `tresor run` (`"5%"`, `"1/10"`).
    #[schemars(with = "Option<String>")]
    pub check_read_data_subset: Option<Spanned<String>>,
    /// `[profiles.NAME.hooks]`: commands `tresor run` runs around the job and its steps.
    #[schemars(with = "Option<hooks::Hooks>")]
    pub hooks: Option<Spanned<hooks::Hooks>>,
    /// `[profiles.NAME.notify]`: where `tresor run` reports start, success and failure.
    #[schemars(with = "Option<crate::notify::Config>")]
    pub notify: Option<Spanned<crate::notify::Config>>,
    /// `--password-credential`: the systemd credential holding the password.
    #[schemars(with = "Option<String>")]
    pub password_credential: Option<Spanned<String>>,
    /// `--insecure-password-file`.
    #[schemars(with = "Option<bool>")]
    pub insecure_password_file: Option<Spanned<bool>>,
    /// `--no-cache`.
    #[schemars(with = "Option<bool>")]
    pub no_cache: Option<Spanned<bool>>,
    /// `--insecure-http`.
    #[schemars(with = "Option<bool>")]
    pub insecure_http: Option<Spanned<bool>>,
    /// `--retry-for` (seconds).
    #[schemars(with = "Option<u64>")]
    pub retry_for: Option<Spanned<u64>>,
    /// `--limit-upload` (KiB/s; 0: no limit).
    #[schemars(with = "Option<u64>")]
    pub limit_upload: Option<Spanned<u64>>,
    /// `--limit-download` (KiB/s; 0: no limit).
    #[schemars(with = "Option<u64>")]
    pub limit_download: Option<Spanned<u64>>,
    /// `--s3-storage-class-data`.
    #[schemars(with = "Option<String>")]
    pub s3_storage_class_data: Option<Spanned<String>>,
    /// `--s3-storage-class-metadata`.
    #[schemars(with = "Option<String>")]
    pub s3_storage_class_metadata: Option<Spanned<String>>,
    /// `--s3-sse` (`AES256` or `aws:kms`).
    #[schemars(with = "Option<String>")]
    pub s3_sse: Option<Spanned<String>>,
    /// `--s3-sse-kms-key-id`.
    #[schemars(with = "Option<String>")]
    pub s3_sse_kms_key_id: Option<Spanned<String>>,
    /// `--s3-connections` (1–64).
    #[schemars(with = "Option<u16>")]
    pub s3_connections: Option<Spanned<u16>>,
    /// `--tls-ca`.
    #[schemars(with = "Option<PathBuf>")]
    pub tls_ca: Option<Spanned<PathBuf>>,
    /// `--server-token-file`.
    #[schemars(with = "Option<PathBuf>")]
    pub server_token_file: Option<Spanned<PathBuf>>,
    /// `--server-command`.
    #[schemars(with = "Option<String>")]
    pub server_command: Option<Spanned<String>>,
    /// `--metrics-textfile` of `backup`, `check` and `snapshots --check-overdue`.
    #[schemars(with = "Option<PathBuf>")]
    pub metrics_textfile: Option<Spanned<PathBuf>>,
    /// `--pushgateway` of `backup`, `check` and `snapshots --check-overdue`.
    #[schemars(with = "Option<String>")]
    pub pushgateway: Option<Spanned<String>>,
    /// `snapshots --check-overdue --max-age` (a duration such as `"26h"`, `"1d12h"`).
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
    /// `drill --sample N` for the `drill` step of `tresor run`.
    #[schemars(with = "Option<u64>")]
    pub drill_sample: Option<Spanned<u64>>,
    /// `backup --exclude-if-present`, one file name per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub exclude_if_present: Option<Spanned<Vec<String>>>,
    /// `backup --iexclude-file`.
    #[schemars(with = "Option<Vec<PathBuf>>")]
    pub iexclude_files: Option<Spanned<Vec<PathBuf>>>,
    /// `backup --spool` (the offline spool directory).
    #[schemars(with = "Option<PathBuf>")]
    pub spool: Option<Spanned<PathBuf>>,
    /// `backup --spool-always`.
    #[schemars(with = "Option<bool>")]
    pub spool_always: Option<Spanned<bool>>,
    /// `backup --extend-locks`.
    #[schemars(with = "Option<bool>")]
    pub extend_locks: Option<Spanned<bool>>,
    /// `backup --extend-locks-max`.
    #[schemars(with = "Option<usize>")]
    pub extend_locks_max: Option<Spanned<usize>>,
    /// `forget --keep-within-hourly` (a duration).
    #[schemars(with = "Option<String>")]
    pub keep_within_hourly: Option<Spanned<String>>,
    /// `forget --keep-within-daily` (a duration).
    #[schemars(with = "Option<String>")]
    pub keep_within_daily: Option<Spanned<String>>,
    /// `forget --keep-within-weekly` (a duration).
    #[schemars(with = "Option<String>")]
    pub keep_within_weekly: Option<Spanned<String>>,
    /// `forget --keep-within-monthly` (a duration).
    #[schemars(with = "Option<String>")]
    pub keep_within_monthly: Option<Spanned<String>>,
    /// `forget --keep-within-yearly` (a duration).
    #[schemars(with = "Option<String>")]
    pub keep_within_yearly: Option<Spanned<String>>,
    /// `forget --group-by` (`"host,paths"`; `""` for no grouping).
    #[schemars(with = "Option<String>")]
    pub group_by: Option<Spanned<String>>,
    /// `forget --path` (the filter), one path per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub forget_paths: Option<Spanned<Vec<String>>>,
    /// `forget --tag` (the filter), one option per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub forget_tags: Option<Spanned<Vec<String>>>,
    /// `forget --prune`.
    #[schemars(with = "Option<bool>")]
    pub forget_prune: Option<Spanned<bool>>,
    /// `prune --max-unused` (`"5%"`, `"500M"`, `"unlimited"`).
    #[schemars(with = "Option<String>")]
    pub prune_max_unused: Option<Spanned<String>>,
    /// `prune --max-repack-size` (`"2G"`).
    #[schemars(with = "Option<String>")]
    pub prune_max_repack_size: Option<Spanned<String>>,
    /// `prune --inactive-host`, one host per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub prune_inactive_hosts: Option<Spanned<Vec<String>>>,
    /// `prune --cold-early-delete`: condemn wholly unused cold packs before their class's
    /// minimum storage duration.
    #[schemars(with = "Option<bool>")]
    pub prune_cold_early_delete: Option<Spanned<bool>>,
    /// `check --read-data` (a `--read-data-subset` given or set wins).
    #[schemars(with = "Option<bool>")]
    pub check_read_data: Option<Spanned<bool>>,
    /// `drill --sample-bytes` (`"64m"`).
    #[schemars(with = "Option<String>")]
    pub drill_sample_bytes: Option<Spanned<String>>,
    /// `drill --share` (`"10%"`).
    #[schemars(with = "Option<String>")]
    pub drill_share: Option<Spanned<String>>,
    /// `drill --target`.
    #[schemars(with = "Option<PathBuf>")]
    pub drill_target: Option<Spanned<PathBuf>>,
    /// `drill --compare-source`.
    #[schemars(with = "Option<bool>")]
    pub drill_compare_source: Option<Spanned<bool>>,
    /// `drill --path` (the filter), one path per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub drill_paths: Option<Spanned<Vec<String>>>,
    /// `drill --tag` (the filter), one option per element.
    #[schemars(with = "Option<Vec<String>>")]
    pub drill_tags: Option<Spanned<Vec<String>>>,
}

/// A `keep_*` count: an integer, or a string the flag takes (`"unlimited"`, `"-1"`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// `forget` with the profile's keep-* policy and host.
    Forget,
    /// `prune`.
    Prune,
    /// `check`, with `--read-data-subset` from `check_read_data_subset`.
    Check,
    /// `drill`, with `--sample` from `drill_sample`.
    Drill,
}

impl Step {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Forget => "forget",
            Step::Prune => "prune",
            Step::Check => "check",
            Step::Drill => "drill",
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
        (Command::Schedule(sc), _) => crate::schedule::run(sc, &cli.global),
        _ => crate::commands::run(cli),
    }
}
