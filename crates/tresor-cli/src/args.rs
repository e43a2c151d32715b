//! Command-line flags (clap derive): every command's argument struct, and the global options.
//! Help texts live here, next to the flags. Depends on no other module of the CLI.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// tresor: encrypted, deduplicated backups to a local directory or object storage.
#[derive(Debug, Parser)]
#[command(name = "tresor", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (shown under their own headings, apart from each command's own).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Repository location: PATH, s3:https://HOST/BUCKET[/PREFIX],
    /// s3://BUCKET[/PREFIX], tresor+https://HOST[:PORT]/REPO or
    /// ssh://[USER@]HOST[:PORT]/PATH (more with --help).
    ///
    ///   PATH or local:PATH
    ///       a local directory
    ///   s3:https://ENDPOINT/BUCKET[/PREFIX]
    ///       an S3-compatible store (s3:http:// to loopback only, unless
    ///       --insecure-http)
    ///   s3://BUCKET[/PREFIX]
    ///       AWS S3 (region from AWS_REGION, AWS_DEFAULT_REGION or the profile)
    ///   tresor+https://HOST[:PORT]/REPO
    ///       a `tresor serve` server (tresor+http:// to loopback only; token
    ///       from TRESOR_SERVER_TOKEN or --server-token-file)
    ///   ssh://[USER@]HOST[:PORT]/PATH
    ///       `tresor serve --stdio` on HOST, reached through ssh
    /// S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN or the shared files (AWS_PROFILE,
    /// AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), never from the location.
    #[arg(short = 'r', long = "repo", env = "TRESOR_REPOSITORY", global = true)]
    #[arg(verbatim_doc_comment, value_name = "LOCATION")]
    pub repo: Option<String>,
    /// Read the password from the first line of FILE (must not be group/world-readable).
    /// Without it or --password-command: TRESOR_PASSWORD, else a prompt on the terminal.
    #[arg(long, env = "TRESOR_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run CMD (with sh -c) and use the first line of its output as the password.
    #[arg(long, env = "TRESOR_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Accept a password file (or unlocked key file) that others can read.
    #[arg(long, global = true)]
    pub insecure_password_file: bool,
    /// Open the repository with this unlocked key file (`tresor key export --unlocked FILE`)
    /// instead of a password: no password is asked and no key derivation runs. Must not be
    /// group/world-readable.
    #[arg(long, env = "TRESOR_KEY_FILE", global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress and no informational messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More output: with --json, status lines while backup and restore work; else backup lists
    /// new and modified files (-vv: also unchanged ones and directories).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Local cache directory (default: $XDG_CACHE_HOME/tresor or ~/.cache/tresor).
    #[arg(long, env = "TRESOR_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Use no local cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Allow plain http:// to an S3 endpoint that is not on loopback.
    #[arg(long, global = true)]
    pub insecure_http: bool,
    /// S3 and tresor+http(s):// / ssh:// repositories: keep retrying a request that fails in
    /// passing (throttling such as 503 SlowDown or 429, 5xx, reset connections) for SECONDS from
    /// its first attempt, with exponential backoff; 0 never retries.
    #[arg(
        long,
        env = "TRESOR_RETRY_FOR",
        global = true,
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub retry_for: u64,
    /// Limit uploads (bytes written to the repository) to KIB_S KiB per second; 0: no limit.
    #[arg(long, env = "TRESOR_LIMIT_UPLOAD", global = true, value_name = "KIB_S")]
    pub limit_upload: Option<u64>,
    /// Limit downloads (bytes read from the repository) to KIB_S KiB per second; 0: no limit.
    #[arg(
        long,
        env = "TRESOR_LIMIT_DOWNLOAD",
        global = true,
        value_name = "KIB_S"
    )]
    pub limit_download: Option<u64>,
    #[command(flatten)]
    pub s3: S3Flags,
    #[command(flatten)]
    pub server: ServerFlags,
    /// Use the settings of profile NAME of the configuration file as defaults (flags and
    /// environment variables override them; see `tresor profile show NAME`).
    #[arg(short = 'P', long = "profile", global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The configuration file of profiles (default: $XDG_CONFIG_HOME/tresor/tresor.toml or
    /// ~/.config/tresor/tresor.toml, else /etc/tresor/tresor.toml).
    #[arg(long, env = "TRESOR_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read the password from the systemd credential NAME: the file $CREDENTIALS_DIRECTORY/NAME
    /// (LoadCredential=, LoadCredentialEncrypted=; `tresor schedule install` sets it up).
    #[arg(
        long,
        env = "TRESOR_PASSWORD_CREDENTIAL",
        global = true,
        value_name = "NAME"
    )]
    pub password_credential: Option<String>,
    /// The password a profile holds (`password`, allowed only in a mode-600 file); never a flag.
    #[arg(skip)]
    pub profile_password: Option<String>,
    /// Also write the command's final JSON result to FILE (mode 600); used by `tresor run`
    /// for its hooks' TRESOR_SUMMARY_FILE.
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
}

/// S3 options every command takes (ignored for other locations).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options for S3")]
pub struct S3Flags {
    /// S3 storage class of packs, e.g. STANDARD_IA, ONEZONE_IA, GLACIER_IR.
    #[arg(
        long = "s3-storage-class-data",
        env = "TRESOR_S3_STORAGE_CLASS_DATA",
        global = true,
        value_name = "CLASS"
    )]
    pub storage_class_data: Option<String>,
    /// S3 storage class of everything else (config, keys, index, snapshots).
    #[arg(
        long = "s3-storage-class-metadata",
        env = "TRESOR_S3_STORAGE_CLASS_METADATA",
        global = true,
        value_name = "CLASS"
    )]
    pub storage_class_metadata: Option<String>,
    /// S3 server-side encryption of every write: AES256 or aws:kms.
    #[arg(
        long = "s3-sse",
        env = "TRESOR_S3_SSE",
        global = true,
        value_name = "ALGORITHM"
    )]
    pub sse: Option<String>,
    /// KMS key (id, ARN or alias/NAME) for --s3-sse aws:kms (default: the aws/s3 key).
    #[arg(
        long = "s3-sse-kms-key-id",
        env = "TRESOR_S3_SSE_KMS_KEY_ID",
        global = true,
        value_name = "ID"
    )]
    pub sse_kms_key_id: Option<String>,
    /// S3: pack uploads a backup keeps in flight at once (each holds one pack in memory).
    #[arg(
        long = "s3-connections",
        env = "TRESOR_S3_CONNECTIONS",
        global = true,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub connections: u16,
}

/// Options of remote locations (`tresor+https://`, `tresor+http://`, `ssh://`), taken by every
/// command. The token itself comes from `TRESOR_SERVER_TOKEN` or the token file, never from a
/// flag (it would show in `ps`) nor from the URL.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options for tresor servers")]
pub struct ServerFlags {
    /// tresor+https://: trust only the CA certificates in this PEM file (default: system roots).
    #[arg(long, env = "TRESOR_TLS_CA", global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// tresor+http(s)://: read the client token from the first line of FILE (default: the
    /// TRESOR_SERVER_TOKEN environment variable).
    #[arg(
        long,
        env = "TRESOR_SERVER_TOKEN_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub server_token_file: Option<PathBuf>,
    /// ssh://: run CMD (with sh -c) to reach the server instead of
    /// `ssh [-p PORT] USER@HOST tresor serve --stdio --repo PATH --role admin`.
    #[arg(long, env = "TRESOR_SERVER_COMMAND", global = true, value_name = "CMD")]
    pub server_command: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files and directories into a new snapshot.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the contents of a snapshot.
    Ls(LsArgs),
    /// Print a decoded repository object (for debugging).
    Cat(CatArgs),
    /// Show what changed between two snapshots (restic's + - M T U markers).
    Diff(DiffArgs),
    /// Restore a snapshot into a directory.
    Restore(RestoreArgs),
    /// Browse the snapshots as a read-only file system (FUSE) until unmounted or Ctrl-C.
    Mount(MountArgs),
    /// Check the repository for damage.
    Check(CheckArgs),
    /// Remove snapshots by retention policy (or by id); data is freed by prune.
    Forget(ForgetArgs),
    /// Manage keys: list, add (full or put-only), remove, change password, paper backup.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Free the space of unreferenced data (lock-free, two-phase: see docs/format.md §16).
    Prune(PruneArgs),
    /// Rebuild the index from the packs, or write snapshots that leave out damaged files.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Print an AWS IAM policy (JSON) for the repository's bucket: append-only or admin.
    S3Policy(S3PolicyArgs),
    /// Serve repositories to tresor+https:// clients, or one over stdin/stdout for SSH.
    Serve(ServeArgs),
    /// Write shell completions and man pages (needs no repository).
    Generate(GenerateArgs),
    /// Find entries by name pattern, blob or tree id in snapshots (restic's find).
    Find(FindArgs),
    /// Sizes of snapshots and their data: restic's four modes, ratios, per-host totals.
    Stats(StatsArgs),
    /// The offline spool of `backup --spool`: upload it (flush) or show what waits (status).
    #[command(subcommand)]
    Spool(SpoolCommand),
    /// Copy snapshots from another repository (other keys) into this one.
    Copy(CopyArgs),
    /// Add, remove or set tags of snapshots (each edited snapshot is replaced by a new one).
    Tag(TagArgs),
    /// Write new snapshots without the excluded paths (data freed by prune).
    Rewrite(RewriteArgs),
    /// Write a file of a snapshot to standard output, or a directory as a tar or zip archive.
    Dump(DumpArgs),
    /// Run a profile's job: backup, then its after_backup steps (forget, prune, check).
    Run(RunArgs),
    /// Profiles of the configuration file: list them, show one's effective settings.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Schedule a profile's job: write a systemd service and timer, or print a crontab line.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Restore a sample of files into a sandbox, verify them, estimate the time to restore all.
    Drill(DrillArgs),
    /// Extend the S3 Object Lock retention of everything snapshots need (never shortens).
    Protect(ProtectArgs),
    /// What the repository costs a month, what the last runs' requests cost, and a full restore.
    Cost(CostArgs),
}

/// `tresor schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write tresor-NAME.service and tresor-NAME.timer (or print a crontab line with --cron).
    Install(ScheduleInstallArgs),
    /// List the units `schedule install` wrote in the unit directory.
    List(UnitDirArgs),
    /// Remove the units of profile NAME that `schedule install` wrote (no other file).
    Remove {
        /// The profile.
        name: String,
        #[command(flatten)]
        dir: UnitDirArgs,
    },
}

/// Where the units are.
#[derive(Debug, Clone, Args)]
pub struct UnitDirArgs {
    /// User units (`systemctl --user`): default directory ~/.config/systemd/user.
    #[arg(long)]
    pub user: bool,
    /// The unit directory (default: /etc/systemd/system, or ~/.config/systemd/user with --user).
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

/// `tresor schedule install`.
#[derive(Debug, Args)]
pub struct ScheduleInstallArgs {
    /// The profile whose job (`tresor run NAME`) runs.
    pub name: String,
    /// Write a systemd service and timer (the default).
    #[arg(long, conflicts_with = "cron")]
    pub systemd: bool,
    /// Print a crontab line instead (--at shorthands only).
    #[arg(long)]
    pub cron: bool,
    /// When: hourly, daily, weekly, "daily HH:MM", "weekly DAY HH:MM", or (systemd) any
    /// calendar expression of `systemd-analyze calendar`.
    #[arg(long, value_name = "WHEN", default_value = "daily")]
    pub at: String,
    /// systemd: RandomizedDelaySec= of the timer (a time span: 30min, 1h, 0).
    #[arg(long, value_name = "SPAN", default_value = "30min")]
    pub randomized_delay: String,
    /// Print the units instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub dir: UnitDirArgs,
}

/// `tresor drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Drill this snapshot (id prefix or "latest"; repeatable). Default: the latest snapshot
    /// of every host and path set the filter passes.
    #[arg(long = "snapshot", value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Restore this many files (default 20).
    #[arg(long, value_name = "N", conflicts_with_all = ["sample_bytes", "share"])]
    pub sample: Option<u64>,
    /// Restore files until their content reaches SIZE (k, m, g, t: powers of 1024).
    #[arg(long, value_name = "SIZE", conflicts_with = "share")]
    pub sample_bytes: Option<String>,
    /// Restore this share of the chosen snapshots' file bytes, in percent (`10%` or `10`).
    #[arg(long, value_name = "P%")]
    pub share: Option<String>,
    /// Restore into DIR (created; its drill folders are removed afterwards). Default: a private
    /// temporary directory (mode 0700), removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Compare the restored files with the live files at the same paths (snapshots of this host
    /// only) whose size and mtime are the snapshot's.
    #[arg(long)]
    pub compare_source: bool,
    /// List past drills instead of drilling.
    #[arg(long, conflicts_with_all = ["snapshots", "sample", "sample_bytes", "share", "target", "compare_source", "metrics_textfile", "pushgateway"])]
    pub history: bool,
    /// Seed of the random sample (tests).
    #[arg(long, hide = true, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub thaw: ThawArgs,
}

/// `tresor protect`.
#[derive(Debug, Args)]
pub struct ProtectArgs {
    /// Snapshots to protect (id prefix or "latest").
    #[arg(value_name = "SNAPSHOT", required_unless_present = "list")]
    pub snapshots: Vec<String>,
    /// Retain until DATE: a day (2027-01-31, its start in UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE", conflicts_with_all = ["for_", "list"])]
    pub until: Option<String>,
    /// Retain for DURATION from now (1y2m3d4h, as forget's --keep-within).
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "list")]
    pub for_: Option<String>,
    /// Count what would be extended; send no retention request.
    #[arg(long, conflicts_with = "list")]
    pub dry_run: bool,
    /// List the snapshots whose snapshot object is retained, and until when (one HEAD each).
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `tresor run NAME`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile.
    pub name: String,
}

/// `tresor profile …`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles of the configuration file.
    List,
    /// Show a profile's effective settings and where each comes from (secrets masked).
    Show {
        /// The profile.
        name: String,
    },
    /// Print the JSON Schema (draft 2020-12) of the configuration file.
    Schema,
}

/// Flags of `tresor generate`: at least one of them.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true)))]
pub struct GenerateArgs {
    /// Write the bash completion script to FILE ("-": standard output).
    #[arg(long, value_name = "FILE", group = "output")]
    pub bash_completion: Option<PathBuf>,
    /// Write the zsh completion script to FILE ("-": standard output).
    #[arg(long, value_name = "FILE", group = "output")]
    pub zsh_completion: Option<PathBuf>,
    /// Write the fish completion script to FILE ("-": standard output).
    #[arg(long, value_name = "FILE", group = "output")]
    pub fish_completion: Option<PathBuf>,
    /// Write one man page per command into DIR (created if missing): tresor.1,
    /// tresor-backup.1, tresor-key-add.1, …
    #[arg(long, value_name = "DIR", group = "output")]
    pub man: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct S3PolicyArgs {
    /// Bucket of the repository (default: from an s3: repository location).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix of the repository in the bucket (default: from the location, or none).
    #[arg(long)]
    pub prefix: Option<String>,
    /// For backup hosts: create new objects only (If-None-Match), read only what backup needs,
    /// never delete.
    #[arg(long, conflicts_with = "admin", required_unless_present = "admin")]
    pub append_only: bool,
    /// For repository maintenance (init, keys, prune): read, create and delete under the prefix.
    #[arg(long)]
    pub admin: bool,
    /// Append-only: the backup host has a full key, which also reads snapshots and packs.
    #[arg(long)]
    pub full_key: bool,
    /// The repository uses Object Lock: allow writes only with its lock mode and a retention of
    /// at most its days (+1); read both from the repository's config (an s3: location), or
    /// give them with --object-lock-days / --object-lock-mode.
    #[arg(long)]
    pub object_lock: bool,
    /// The repository's Object Lock retention in days (implies --object-lock).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub object_lock_days: Option<u32>,
    /// The repository's Object Lock mode: governance (default) or compliance.
    #[arg(long, value_name = "MODE", requires = "object_lock_days")]
    pub object_lock_mode: Option<String>,
    /// Print a bucket policy for this principal (IAM user or role ARN) instead of an identity
    /// policy.
    #[arg(long, value_name = "ARN")]
    pub principal: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the keys of the repository.
    List,
    /// Add a key (full, or put-only with --put-only).
    Add(KeyAddArgs),
    /// Remove (revoke) a key; what it writes afterwards is ignored.
    Remove {
        /// Key id (prefix).
        id: String,
    },
    /// Change the password of the key in use.
    Passwd(NewPasswordArgs),
    /// Print the full key material for a paper backup.
    Export {
        /// Paper format: grouped hex with a checksum per line (the default; with --json the
        /// same text in a JSON string).
        #[arg(long, conflicts_with = "unlocked")]
        paper: bool,
        /// Instead, write the key in use, unencrypted, to FILE (created with mode 0600, never
        /// overwritten) for `--key-file FILE`: opening then needs no password and no key
        /// derivation. Anyone who reads FILE holds the key.
        #[arg(long, value_name = "FILE")]
        unlocked: Option<PathBuf>,
    },
    /// List the signers of snapshots and index objects that no trusted key or revocation
    /// vouches for (ignored by readers), and accept some with --accept.
    Signers {
        /// Accept the one signer whose public key starts with PREFIX (at least 8 hex digits, or
        /// all 64; a prefix two signers share is refused), repeatable; "all" for every one
        /// listed. Their objects so far become readable, later ones stay ignored.
        #[arg(long = "accept", value_name = "PREFIX")]
        accept: Vec<String>,
        /// Accept without asking (needed when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Create a key from a paper backup (read from FILE or standard input).
    Import {
        /// File with the paper key (default: standard input).
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        new: NewPasswordArgs,
    },
}

#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from FILE (first line).
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    /// Accept an empty new password (anyone who can read the storage can then read the backups).
    #[arg(long)]
    pub allow_empty_password: bool,
    /// Argon2id memory cost in KiB for the key file (at least 8192: less makes guessing the
    /// password cheap; at most 2097152 = 2 GiB, and memory × passes at most 2 GiB: readers
    /// refuse costlier key files).
    #[arg(long, default_value_t = tresor_format::keyfile::KdfParams::default().m_kib,
          value_parser = clap::value_parser!(u32)
              .range(8192..=i64::from(tresor_format::keyfile::KdfParams::MAX_M_KIB)))]
    pub kdf_memory_kib: u32,
    /// Argon2id passes for the key file (1 to 64).
    #[arg(long, default_value_t = tresor_format::keyfile::KdfParams::default().t,
          value_parser = clap::value_parser!(u32)
              .range(1..=i64::from(tresor_format::keyfile::KdfParams::MAX_T)))]
    pub kdf_iterations: u32,
}

#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// A put-only key: can write backups but not read, change or delete anything.
    #[arg(long)]
    pub put_only: bool,
    /// Host the key is for (recorded in the key file).
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub new: NewPasswordArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub new: NewPasswordArgs,
    /// Target pack size in MiB (packs are fewer and larger with more: fewer PUT requests).
    #[arg(long, default_value_t = tresor_format::config::DEFAULT_PACK_SIZE >> 20)]
    pub pack_size_mib: u64,
    /// zstd compression level (0 = off, 1–19).
    #[arg(long, default_value_t = 3)]
    pub compression_level: i32,
    /// S3: lock every object for N days after it is written (Object Lock; the bucket must have it
    /// enabled). Recorded in the repository config, so every writer applies it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub s3_object_lock_days: Option<u32>,
    /// S3: Object Lock mode, governance (default) or compliance.
    #[arg(long, value_name = "MODE", requires = "s3_object_lock_days")]
    pub s3_object_lock_mode: Option<String>,
    /// Repository format version: 3 (default), or 2 (no frames of small blobs; readable by
    /// tresor binaries older than version 3). Hidden: for tests and shared repositories.
    #[arg(long, value_name = "N", default_value_t = tresor_format::REPO_VERSION, hide = true,
          value_parser = clap::value_parser!(u32).range(i64::from(tresor_format::OLDEST_REPO_VERSION)..=i64::from(tresor_format::REPO_VERSION)))]
    pub format_version: u32,
}

#[derive(Debug, Args)]
pub struct SnapshotFilterArgs {
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Only snapshots that include this path (repeatable).
    #[arg(long = "path")]
    pub paths: Vec<String>,
    /// Only snapshots with all of these tags (comma-separated; repeatable: any of the options;
    /// "" matches snapshots without tags).
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    pub tags: Vec<String>,
}

/// A single file name as it may appear in a tree (format §10): refused with a usage error.
fn file_name(s: &str) -> Result<String, String> {
    if tresor_format::tree::valid_name(s.as_bytes()) {
        Ok(s.to_string())
    } else {
        Err("a file name must not be empty, `.` or `..`, nor hold `/` or NUL".into())
    }
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(required_unless_present_any = ["stdin", "files_from", "files_from_verbatim", "files_from_raw"])]
    pub paths: Vec<PathBuf>,
    /// Exclude paths matching GLOB (repeatable; restic syntax).
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from FILE (repeatable).
    #[arg(long = "exclude-file")]
    pub exclude_files: Vec<PathBuf>,
    /// Exclude directories that contain a file called NAME (repeatable).
    #[arg(long = "exclude-if-present")]
    pub exclude_if_present: Vec<String>,
    /// Exclude the contents of directories marked with a valid CACHEDIR.TAG (the directory and
    /// its CACHEDIR.TAG stay, as with restic).
    #[arg(long)]
    pub exclude_caches: bool,
    /// Do not cross file system boundaries.
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Tags for the snapshot (comma-separated; repeatable, the tags add up).
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Snapshot time, "YYYY-MM-DD HH:MM:SS" in local time (default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Compare with this snapshot instead of the latest one of the same host and paths.
    #[arg(long)]
    pub parent: Option<String>,
    /// Read every file (use no parent snapshot).
    #[arg(long)]
    pub force: bool,
    /// Back up standard input as one file.
    #[arg(long)]
    pub stdin: bool,
    /// File name for --stdin: one name (not empty, not `.` or `..`, no `/`).
    #[arg(long, default_value = "stdin", value_parser = file_name)]
    pub stdin_filename: String,
    /// Do everything except writing to the repository.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Offline spool (docs/format.md §17): prepare DIR while the repository is reachable, and
    /// back up into DIR when it is not (connection refused, timeout); `tresor spool flush`
    /// uploads it later.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// With --spool: always back up into the spool, even when the repository is reachable.
    #[arg(long, requires = "spool")]
    pub spool_always: bool,
    /// Also back up the paths FILE names, one glob per line ("#" comments and blank lines
    /// skipped; "-": standard input; repeatable).
    #[arg(long, value_name = "FILE")]
    pub files_from: Vec<PathBuf>,
    /// Also back up the paths FILE names, one per line as they are (repeatable).
    #[arg(long, value_name = "FILE")]
    pub files_from_verbatim: Vec<PathBuf>,
    /// Also back up the paths FILE names, separated by NUL bytes (repeatable).
    #[arg(long, value_name = "FILE")]
    pub files_from_raw: Vec<PathBuf>,
    /// Like --exclude, ignoring the case of names (repeatable).
    #[arg(long = "iexclude", value_name = "PATTERN")]
    pub iexcludes: Vec<String>,
    /// Like --exclude-file, ignoring the case of names (repeatable).
    #[arg(long = "iexclude-file", value_name = "FILE")]
    pub iexclude_files: Vec<PathBuf>,
    /// Leave out files (every entry but directories) larger than SIZE: bytes, or with a unit
    /// k, m, g, t (KiB, MiB, GiB, TiB), as restic.
    #[arg(long, value_name = "SIZE")]
    pub exclude_larger_than: Option<String>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// After the backup, extend the Object Lock retention of the packs and index objects the
    /// new snapshot needs to now + the repository's lock days (done by default in repositories
    /// created with --s3-object-lock-days; docs/format.md §16).
    #[arg(long)]
    pub extend_locks: bool,
    /// At most N retention requests per lock extension; the rest is left for the next run.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub extend_locks_max: usize,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Per host and set of paths, check the newest snapshot's age: list every group, mark the
    /// overdue ones, and exit 6 when any is overdue (or dated ahead of this clock).
    #[arg(long)]
    pub check_overdue: bool,
    /// With --check-overdue: the longest age allowed (e.g. 26h, 1d12h, 7d; y m d h as for
    /// `forget --keep-within`; default 26h).
    #[arg(long, value_name = "DURATION", requires = "check_overdue")]
    pub max_age: Option<String>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// `--check-overdue` with `-P NAME`: the profile's notifications (`[profiles.NAME.notify]`),
    /// sent once per check — failure when a group is overdue, else success. Never a flag.
    #[arg(skip)]
    pub notify: Option<crate::notify::Config>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot id (prefix) or "latest".
    pub snapshot: String,
    /// Paths inside the snapshot to list: each and its direct children (restic's rule;
    /// default: everything).
    #[arg(value_name = "PATH")]
    pub dirs: Vec<OsString>,
    /// With paths: list everything below them, not only their direct children.
    #[arg(long)]
    pub recursive: bool,
    /// Long listing: type, mode, owner, size, mtime.
    #[arg(short, long)]
    pub long: bool,
    /// With --long: sizes with binary units (1.50 MiB) instead of bytes.
    #[arg(long)]
    pub human_readable: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first snapshot (id prefix or "latest"), optionally `:PATH`, a directory in it.
    #[arg(value_name = "SNAPSHOT1[:PATH]")]
    pub before: OsString,
    /// The second snapshot, optionally `:PATH`, a directory in it.
    #[arg(value_name = "SNAPSHOT2[:PATH]")]
    pub after: OsString,
    /// Also show metadata-only changes (U): mode, owner, times but access time, xattrs ….
    #[arg(long)]
    pub metadata: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Empty directory to mount on.
    pub mountpoint: PathBuf,
    /// Let other users see the mount (needs `user_allow_other` in /etc/fuse.conf unless root);
    /// the snapshots' own owners and modes still apply.
    #[arg(long)]
    pub allow_other: bool,
    /// Show only the matching snapshots.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// config, key, snapshot, index, pack (header), tree, blob.
    pub kind: String,
    /// Object or blob id (snapshot: id prefix or "latest").
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// SNAPSHOT[:SUBPATH]: snapshot id (prefix) or "latest", optionally a path inside it.
    pub snapshot: OsString,
    /// Directory to restore into.
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching GLOB (repeatable).
    #[arg(short = 'i', long = "include")]
    pub includes: Vec<String>,
    /// Do not restore paths matching GLOB (repeatable).
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
    /// Re-read restored files and compare them with the snapshot.
    #[arg(long)]
    pub verify: bool,
    /// What to do with entries already in the target: always (default: a file stays only when
    /// its content is the snapshot's; only differing blobs are fetched), if-changed (trust
    /// files of the snapshot's size and mtime), if-newer (leave entries at least as new as the
    /// snapshot's), never (leave every existing entry).
    #[arg(long, value_name = "MODE", default_value = "always",
          value_parser = ["always", "if-changed", "if-newer", "never"])]
    pub overwrite: String,
    /// Never set owners, even as root (files belong to the user running restore; setuid and
    /// setgid bits and file capabilities are then not applied).
    #[arg(long)]
    pub no_owner: bool,
    /// Do not create device nodes, fifos or sockets.
    #[arg(long)]
    pub no_special_files: bool,
    /// Restore only extended attributes whose name matches GLOB (repeatable); replaces the
    /// default list: user.*, system.posix_acl_access, system.posix_acl_default,
    /// security.capability.
    #[arg(long = "include-xattr", value_name = "GLOB")]
    pub include_xattrs: Vec<String>,
    /// Do not restore extended attributes whose name matches GLOB (repeatable).
    #[arg(long = "exclude-xattr", value_name = "GLOB")]
    pub exclude_xattrs: Vec<String>,
    /// Apply device nodes, setuid/setgid bits and security.*/trusted.* attributes also from a
    /// snapshot written by a put-only key (withheld by default).
    #[arg(long)]
    pub trust_privileged: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Write nothing: list what would be restored, updated, left unchanged or kept (and
    /// deleted, with --delete), one line per entry.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove entries of the target's directories that the snapshot lacks (only those the
    /// include/exclude patterns select; never outside the target, never through a symlink).
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub thaw: ThawArgs,
}

/// How `restore`, `dump`, `check --read-data`, `copy` and `drill` thaw data packs in a cold storage
/// class (S3 `GLACIER`, `DEEP_ARCHIVE`; docs/cli.md "Cold tier").
#[derive(Debug, Clone, Default, Args)]
pub struct ThawArgs {
    /// Retrieval tier of thaw requests for data packs in a cold class (GLACIER, DEEP_ARCHIVE):
    /// expedited, standard (the default) or bulk. Any --thaw-* option makes the command look
    /// for cold packs (as does a cold --s3-storage-class-data).
    #[arg(long, value_name = "TIER", value_parser = ["expedited", "standard", "bulk"])]
    pub thaw_tier: Option<String>,
    /// Days thawed copies stay readable (default 7).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=30000))]
    pub thaw_days: Option<u32>,
    /// How long to wait for thaws before stopping with exit code 9 (run the same command again
    /// later): N followed by s, m, h or d. Default 0: send the requests and stop.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub thaw_wait: Option<std::time::Duration>,
}

impl ThawArgs {
    /// Whether any --thaw-* option was given.
    pub fn given(&self) -> bool {
        self.thaw_tier.is_some() || self.thaw_days.is_some() || self.thaw_wait.is_some()
    }
}

/// `N` followed by `s`, `m`, `h` or `d` (at most 400 days).
fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?}: expected a number followed by s, m, h or d (e.g. 90m)");
    let unit = match s.chars().last().ok_or_else(bad)? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
    let secs = n
        .checked_mul(unit)
        .filter(|&t| t <= 400 * 86_400)
        .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read and verify all data.
    #[arg(long)]
    pub read_data: bool,
    /// Read and verify a subset of packs: "N/M" (part N of M) or "P%".
    #[arg(long)]
    pub read_data_subset: Option<String>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub thaw: ThawArgs,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshot ids (prefixes) to forget, instead of a policy.
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots ("unlimited" or -1 for all).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<String>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<String>,
    /// Keep the newest snapshot of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<String>,
    /// Keep the newest snapshot of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<String>,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<String>,
    /// Keep the newest snapshot of each of the last N years.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<String>,
    /// Keep snapshots newer than DURATION (e.g. 1y2m3d4h) before the newest snapshot.
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep hourly snapshots within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_hourly: Option<String>,
    /// Keep daily snapshots within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_daily: Option<String>,
    /// Keep weekly snapshots within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_weekly: Option<String>,
    /// Keep monthly snapshots within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_monthly: Option<String>,
    /// Keep yearly snapshots within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_yearly: Option<String>,
    /// Keep snapshots with these tags (comma-separated: all of them; repeatable: any option).
    #[arg(long = "keep-tag", value_name = "TAGS")]
    pub keep_tags: Vec<String>,
    /// Group snapshots by these fields: host, paths, tags (comma-separated; "" for no grouping).
    #[arg(long, default_value = "host,paths")]
    pub group_by: String,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Show what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run `prune` (with its defaults) after removing snapshots.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Print the plan; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Unused space tolerated in partly used packs: N% of the used data, a size (500M, 2G) or
    /// "unlimited".
    #[arg(long, default_value = "5%", value_name = "PERCENT")]
    pub max_unused: String,
    /// Repack at most SIZE of packs in this run (e.g. 500M, 2G).
    #[arg(long, value_name = "SIZE")]
    pub max_repack_size: Option<String>,
    /// HOST will not back up again and has no backup running: stop waiting for its next
    /// snapshot before deleting condemned packs (repeatable).
    #[arg(long = "inactive-host", value_name = "HOST")]
    pub inactive_hosts: Vec<String>,
    /// Condemn wholly unused cold data packs (GLACIER, DEEP_ARCHIVE) even before their class's
    /// minimum storage duration (90/180 days): the storage charges the remaining days.
    #[arg(long)]
    pub cold_early_delete: bool,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the packs' headers (replaces every index object).
    Index(RepairIndexArgs),
    /// Write new snapshots that leave out damaged files and directories.
    Snapshots(RepairSnapshotsArgs),
}

#[derive(Debug, Args)]
pub struct RepairIndexArgs {
    /// Report what would be written; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Read every pack whole and verify each blob (finds bit flips; reads all the data):
    /// intact blobs of damaged packs are copied into new packs, the damaged packs left for
    /// `prune` to delete.
    #[arg(long)]
    pub read_data: bool,
}

#[derive(Debug, Args)]
pub struct RepairSnapshotsArgs {
    /// Report what would be written; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Remove each damaged snapshot once its repaired copy is written.
    #[arg(long)]
    pub forget: bool,
    /// Decode every data blob to find damaged ones (reads all the data).
    #[arg(long)]
    pub read_data: bool,
}

/// Flags of `tresor serve`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// `hash-token`, or none to serve.
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// Address to listen on, e.g. 127.0.0.1:8080 or [::]:8443.
    #[arg(long, value_name = "ADDR", required_unless_present = "stdio")]
    pub listen: Option<String>,
    /// Server config (TOML): repositories, clients with token hashes and roles, limits.
    #[arg(long, value_name = "FILE", required_unless_present = "stdio")]
    pub config: Option<PathBuf>,
    /// TLS certificate chain (PEM, leaf first); with --tls-key, serve HTTPS (HTTP/1.1 and h2).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve the repository given with -r/--repo on standard input and output (HTTP/2), for
    /// `command="tresor serve --stdio --repo PATH --role append"` in authorized_keys.
    #[arg(long, conflicts_with_all = ["listen", "config", "tls_cert"], requires = "role")]
    pub stdio: bool,
    /// --stdio: what the other end may do: append, read or admin.
    #[arg(long, value_parser = ["append", "read", "admin"])]
    pub role: Option<String>,
    /// --stdio: the client's name in the access log.
    #[arg(long, default_value = "ssh", value_name = "NAME")]
    pub client_name: String,
    /// --stdio: largest object accepted, in bytes (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_object_size: Option<u64>,
    /// --stdio: bytes of uploads received at once; more are answered 503 and retried by the
    /// client (default 1 GiB, at least --max-object-size).
    #[arg(long, value_name = "BYTES")]
    pub max_in_flight_bytes: Option<u64>,
    /// --stdio: folder for the temporary files of uploads larger than 1 MiB (default: the
    /// repository's own directory; for S3, the system temporary folder).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Append the access log to FILE (default: standard error; with --stdio only refused
    /// requests go there).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// Subcommands of `tresor serve`.
#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Make a new client token and print it with the Argon2id hash for the server config.
    HashToken(HashTokenArgs),
}

/// Flags of `tresor serve hash-token`.
#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// The client's name in the config ([clients.NAME]); the token starts with it.
    pub client: String,
    /// Repository for the printed config lines.
    #[arg(long, default_value = "main")]
    pub repository: String,
    /// Role for the printed config lines: append, read or admin.
    #[arg(long, default_value = "append", value_parser = ["append", "read", "admin"])]
    pub role: String,
    /// Hash the token read from standard input instead of making a new one.
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// Glob patterns (restic's syntax): matched against the name, or against consecutive
    /// components of the path when the pattern holds `/` (anchored at the root with a leading
    /// `/`).
    #[arg(required_unless_present_any = ["blobs", "trees"])]
    pub patterns: Vec<String>,
    /// Look only in this snapshot (id prefix or "latest"; repeatable; default: all).
    #[arg(short = 's', long = "snapshot", value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Only entries modified at or after this time ("YYYY-MM-DD[ HH:MM[:SS]]", local).
    #[arg(short = 'O', long, value_name = "TIME")]
    pub oldest: Option<String>,
    /// Only entries modified at or before this time ("YYYY-MM-DD[ HH:MM[:SS]]", local).
    #[arg(short = 'N', long, value_name = "TIME")]
    pub newest: Option<String>,
    /// Compare patterns and paths in lower case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Files whose content uses this data blob (id or unique prefix; repeatable).
    #[arg(long = "blob", value_name = "ID")]
    pub blobs: Vec<String>,
    /// Directories with this tree (id or unique prefix; repeatable).
    #[arg(long = "tree", value_name = "ID")]
    pub trees: Vec<String>,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// What `stats` counts (restic's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsMode {
    /// The size a restore of the snapshots would write (default).
    RestoreSize,
    /// Files with distinct content and their sizes.
    FilesByContents,
    /// The distinct blobs referenced and their stored size.
    RawData,
    /// The distinct data blobs of each distinct file content.
    BlobsPerFile,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Snapshots to count (id prefixes or "latest"; default: all that pass the filters).
    pub snapshots: Vec<String>,
    /// What to count.
    #[arg(long, value_enum, default_value = "restore-size")]
    pub mode: StatsMode,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// Subcommands of `tresor spool`.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// Upload what the spool holds into the repository (-r), verified, then empty it.
    Flush(SpoolArgs),
    /// Show the snapshots and bytes waiting in the spool (needs no repository).
    Status(SpoolArgs),
}

/// Flags of `tresor spool flush` and `tresor spool status`.
#[derive(Debug, Args)]
pub struct SpoolArgs {
    /// The spool directory (the one given to `backup --spool`).
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
}

/// Flags of `tresor copy`: the source repository and which of its snapshots.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source repository location (the same forms as --repo).
    #[arg(long, env = "TRESOR_FROM_REPOSITORY", value_name = "LOCATION")]
    pub from_repo: String,
    /// Read the source's password from the first line of FILE. Without it or
    /// --from-password-command: TRESOR_FROM_PASSWORD, else a prompt on the terminal.
    #[arg(long, env = "TRESOR_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run CMD (with sh -c) and use the first line of its output as the source's password.
    #[arg(long, env = "TRESOR_FROM_PASSWORD_COMMAND", value_name = "CMD")]
    pub from_password_command: Option<String>,
    /// Snapshots of the source to copy (id prefix or "latest"; default: all that the filters
    /// select).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Also re-sign snapshots that were not written by a full key (a put-only key's): this
    /// key then vouches for their privileged metadata (setuid/setgid bits, device nodes,
    /// security.*/trusted.* attributes), which restore applies from a full key's snapshot.
    /// Without it such snapshots are left as they are, with a warning (exit 1).
    #[arg(long)]
    pub trust_privileged: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    #[command(flatten)]
    pub thaw: ThawArgs,
}

/// Flags of `tresor tag`: at least one of --add, --remove, --set.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("edit").required(true).multiple(true)))]
pub struct TagArgs {
    /// Snapshots to edit (id prefix or "latest"; default: every snapshot the filters select).
    pub snapshots: Vec<String>,
    /// Tags to add (comma-separated; repeatable).
    #[arg(long, value_name = "TAG[,TAG]", group = "edit")]
    pub add: Vec<String>,
    /// Tags to remove (comma-separated; repeatable).
    #[arg(long, value_name = "TAG[,TAG]", group = "edit")]
    pub remove: Vec<String>,
    /// Replace the tags with these (comma-separated; repeatable; "" for none).
    #[arg(long, value_name = "TAG[,TAG]", group = "edit", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
    /// Also re-sign snapshots that were not written by a full key (a put-only key's): this
    /// key then vouches for their privileged metadata (setuid/setgid bits, device nodes,
    /// security.*/trusted.* attributes), which restore applies from a full key's snapshot.
    /// Without it such snapshots are left as they are, with a warning (exit 1).
    #[arg(long)]
    pub trust_privileged: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// Flags of `tresor rewrite`.
#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// Snapshots to rewrite (id prefix or "latest"; default: every snapshot the filters select).
    pub snapshots: Vec<String>,
    /// Leave out paths matching GLOB (repeatable; the syntax of backup's --exclude).
    #[arg(short = 'e', long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from FILE (repeatable).
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Like --exclude, ignoring the case of names (repeatable).
    #[arg(long = "iexclude", value_name = "GLOB")]
    pub iexcludes: Vec<String>,
    /// Like --exclude-file, ignoring the case of names (repeatable).
    #[arg(long = "iexclude-file", value_name = "FILE")]
    pub iexclude_files: Vec<PathBuf>,
    /// Delete each rewritten snapshot once its replacement is written (no `rewrite` tag then).
    #[arg(long)]
    pub forget: bool,
    /// Report what would be rewritten; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Also re-sign snapshots that were not written by a full key (a put-only key's): this
    /// key then vouches for their privileged metadata (setuid/setgid bits, device nodes,
    /// security.*/trusted.* attributes), which restore applies from a full key's snapshot.
    /// Without it such snapshots are left as they are, with a warning (exit 1).
    #[arg(long)]
    pub trust_privileged: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// Flags of `tresor dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// SNAPSHOT[:PATH]: snapshot id (prefix) or "latest", optionally a file or directory in it
    /// (default: the whole snapshot).
    #[arg(value_name = "SNAPSHOT[:PATH]")]
    pub snapshot: OsString,
    /// Archive format for a directory: tar (PAX) or zip. A file is written as its bytes.
    #[arg(long, default_value = "tar", value_parser = ["tar", "zip"])]
    pub archive: String,
    /// Write to FILE (through a temporary file in its directory, renamed when complete)
    /// instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Keep setuid/setgid bits, security.*/trusted.* attributes and device nodes even when
    /// the snapshot was not written by a full key.
    #[arg(long)]
    pub trust_privileged: bool,
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    #[command(flatten)]
    pub thaw: ThawArgs,
}

/// Where `backup`, `check`, `drill` and `snapshots --check-overdue` publish their metrics.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsArgs {
    /// Write this run's metrics into PATH (node_exporter textfile collector format: name it
    /// *.prom), merged with what the file holds, replaced atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
    /// Push this run's metrics to the Prometheus pushgateway at URL (retried; a failure is a
    /// warning, never an error).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// The profile the command runs with (the `profile` label); set by `-P`, never a flag.
    #[arg(skip)]
    pub profile: Option<String>,
}

/// Flags of `tresor cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Storage class to price the packs at (default: --s3-storage-class-data, else STANDARD).
    #[arg(long, value_name = "CLASS")]
    pub class_data: Option<String>,
    /// Storage class to price everything else at (default: --s3-storage-class-metadata, else
    /// STANDARD).
    #[arg(long, value_name = "CLASS")]
    pub class_metadata: Option<String>,
    /// A TOML file of `[prices.CLASS]` tables overriding the built-in AWS prices (after those
    /// of the configuration file).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
}
