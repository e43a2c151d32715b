//! The state of one command run: the location, password sources and output mode from the
//! global options; opens the repository (storage through `location`).

use crate::args::Global;
use crate::location::{self, Location, Lock, OpenOptions};
use crate::password::PasswordSource;
use anyhow::{Result, bail};
use std::sync::Arc;
use tresor_core::Repository;
use tresor_storage::Storage;

/// Global state of one command run.
pub struct Context {
    /// Repository location as given.
    pub location: String,
    /// Password sources.
    pub password: PasswordSource,
    /// JSON output.
    pub json: bool,
    /// No progress, no chatter.
    pub quiet: bool,
    /// How often `-v` was given: with `--json`, status lines while working; else backup lists
    /// the files it saved (1: new and modified, 2: also unchanged ones and directories).
    pub verbose: u8,
    /// Local cache directory, if caching is on.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Options for S3 and server locations (from the global flags).
    pub open: OpenOptions,
    /// The requests this run's storage made ([`Context::storage`] counts into it).
    pub requests: Arc<tresor_storage::counted::Counter>,
    /// The id of the repository opened (set by [`Context::read_config`]), for the request log.
    pub repo_id: std::sync::OnceLock<String>,
    /// `--key-file`: open with this unlocked key file instead of a password.
    pub key_file: Option<std::path::PathBuf>,
    /// `--config`: the configuration file (its `[prices]` tables price summaries).
    pub config_file: Option<std::path::PathBuf>,
}

impl Context {
    /// From the global flags.
    pub fn new(g: &Global) -> Result<Self> {
        let Some(location) = g.repo.clone() else {
            bail!("no repository given: use -r/--repo or set TRESOR_REPOSITORY");
        };
        Ok(Context {
            location,
            password: PasswordSource {
                file: g.password_file.clone(),
                command: g.password_command.clone(),
                insecure_file: g.insecure_password_file,
                profile: g.profile_password.clone().map(Into::into),
                credential: g.password_credential.clone(),
            },
            key_file: g.key_file.clone(),
            json: g.json,
            quiet: g.quiet,
            verbose: g.verbose,
            cache_dir: if g.no_cache {
                None
            } else {
                g.cache_dir
                    .clone()
                    .or_else(tresor_core::repo::cache::default_dir)
            },
            open: OpenOptions::from_global(g)?,
            requests: Arc::default(),
            repo_id: std::sync::OnceLock::new(),
            config_file: g.config.clone(),
        })
    }

    /// The directory of a local-directory repository (`None` for S3 and remote ones, and for a
    /// location that does not parse: opening it says why).
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        Location::parse(&self.location)
            .ok()?
            .local_path()
            .map(Into::into)
    }

    /// The storage at the location, held to `--limit-upload` / `--limit-download`; S3 objects
    /// get the Object Lock retention the repository's config asks for. Network storages print their waits for the store on stderr (unless
    /// `--quiet` or `--json`).
    pub fn storage(&self) -> Result<Arc<dyn Storage>> {
        let location = Location::parse(&self.location)?;
        let storage = location::open(&location, &self.open, Lock::FromConfig)?;
        let storage = location::throttled(storage, self.open.limits);
        let storage = self.counted(storage);
        if location.local_path().is_none() && !self.quiet && !self.json {
            storage.set_wait_observer(Some(Arc::new(crate::output::WaitLines::default())));
        }
        Ok(storage)
    }

    /// For `init --s3-object-lock-days`: the S3 storage, giving every object it writes this
    /// Object Lock retention, after checking that the bucket has Object Lock enabled and that a
    /// locked probe object really is locked.
    pub fn storage_with_object_lock(
        &self,
        lock: tresor_format::config::ObjectLockConfig,
    ) -> Result<Arc<dyn Storage>> {
        let storage = location::open(
            &Location::parse(&self.location)?,
            &self.open,
            Lock::Enable(lock),
        )?;
        Ok(self.counted(location::throttled(storage, self.open.limits)))
    }

    /// `storage` with its requests counted into [`Context::requests`].
    fn counted(&self, storage: Arc<dyn Storage>) -> Arc<dyn Storage> {
        let counter = self.requests.clone();
        Arc::new(tresor_storage::counted::Counted::new(storage, counter))
    }

    /// The requests counted so far, for a command's summary.
    pub fn request_counts(&self) -> crate::render::requests::Requests {
        self.requests.counts()
    }

    /// `outcome` with this run's requests so far (see [`crate::render::requests`]).
    pub fn with_requests<'a, O: crate::render::Outcome + ?Sized>(
        &self,
        outcome: &'a O,
    ) -> crate::render::requests::WithRequests<'a, O> {
        crate::render::requests::WithRequests::new(outcome, self.request_counts())
    }

    /// The prices in effect ([`crate::prices::load`]: built-in, then the configuration file's
    /// `[prices]`) and the class packs are priced at (`--s3-storage-class-data`, else STANDARD).
    ///
    /// # Errors
    /// A bad `[prices]` table.
    pub fn data_prices(&self) -> Result<(crate::prices::Prices, String)> {
        let prices = crate::prices::load(self.config_file.as_deref(), None)?;
        let class = self
            .open
            .s3
            .storage_class_data
            .as_deref()
            .unwrap_or("STANDARD");
        Ok((prices, class.to_ascii_uppercase()))
    }

    /// Append this run's requests to the repository's request log in the cache directory
    /// ([`crate::reqlog`]), if a repository was opened, requests were made and caching is on.
    /// A failure is a warning: the command's work is done.
    pub fn log_requests(&self, command: &str) {
        let (Some(dir), Some(id)) = (&self.cache_dir, self.repo_id.get()) else {
            return;
        };
        let counts = self.requests.counts();
        let Some(path) = crate::reqlog::path(dir, id) else {
            return;
        };
        if let Err(e) = crate::reqlog::append(&path, &crate::reqlog::Run::now(command, &counts)) {
            crate::render::say(format!("warning: request log {}: {e}", path.display()));
        }
    }

    /// Whether the store refuses overwrites (only S3 stores are asked; see
    /// [`location::probe_conditional_writes`]). A store that refused within the last
    /// [`crate::probes::FRESH`] (recorded in the cache directory) is not asked again: each
    /// probe costs two PUTs and a DELETE.
    pub fn probe_conditional_writes(&self) -> Result<bool> {
        let location = Location::parse(&self.location)?;
        if !matches!(location, Location::S3(_)) {
            return Ok(true);
        }
        let record = self
            .cache_dir
            .as_deref()
            .map(|d| crate::probes::Record::new(d, &self.location));
        if record.as_ref().is_some_and(crate::probes::Record::fresh) {
            return Ok(true);
        }
        let enforced = location::probe_conditional_writes(&location, &self.open)?;
        if let Some(r) = record.filter(|_| enforced) {
            r.save();
        }
        Ok(enforced)
    }

    /// The repository's config in `storage` (this context's); a local location that holds no
    /// repository says what is there instead ([`crate::diagnose::local`]).
    pub fn read_config(&self, storage: &dyn Storage) -> Result<tresor_format::config::Config> {
        Ok(self.read_config_with_id(storage)?.1)
    }

    /// [`Context::read_config`] with the config object's id (for
    /// [`Repository::open_with_config`]).
    fn read_config_with_id(
        &self,
        storage: &dyn Storage,
    ) -> Result<(tresor_format::ObjectId, tresor_format::config::Config)> {
        let (id, config) =
            Repository::read_config_with_id(storage).map_err(|e| -> anyhow::Error {
                let not_repo = matches!(
                    e,
                    tresor_core::CoreError::RepositoryNotFound(_)
                        | tresor_core::CoreError::Storage(_)
                );
                match self.local_path().filter(|_| not_repo) {
                    Some(p) => crate::diagnose::local(&p).map_or_else(|| e.into(), Into::into),
                    None => e.into(),
                }
            })?;
        let _ = self.repo_id.set(config.id.clone());
        Ok((id, config))
    }

    /// Open the repository with the password.
    pub fn open(&self) -> Result<Repository> {
        self.open_storage(self.storage()?)
    }

    /// Open the repository in `storage` (this context's, or an offline spool of it) with the
    /// password.
    pub fn open_storage(&self, storage: Arc<dyn Storage>) -> Result<Repository> {
        // Fail on a missing repository before asking for a password (and open with what was
        // read: the config is not listed and read twice).
        let config = self.read_config_with_id(storage.as_ref())?;
        let cache = self.cache_dir.as_deref();
        let repo = match &self.key_file {
            Some(f) => {
                let u = crate::password::read_unlocked(f, self.password.insecure_file)?;
                Repository::open_unlocked_with_config(storage, config, u, cache)?
            }
            None => {
                let pw = self.password.get(&format!(
                    "enter password for repository {}: ",
                    self.location
                ))?;
                Repository::open_with_config(storage, config, &pw, cache)?
            }
        };
        if let Some(p) = repo.cache_problem()
            && !self.quiet
        {
            crate::render::say(format!(
                "warning: local cache {p}: this machine cannot notice a rollback of the \
                 repository or hidden snapshots (use --cache-dir DIR)"
            ));
        }
        Ok(repo)
    }

    /// This machine's high-water marks of repository `repo_id` (`None` with `--no-cache`).
    pub fn high_water(&self, repo_id: &str) -> Option<tresor_core::repo::highwater::HighWater> {
        let dir = self.cache_dir.as_deref()?;
        Some(tresor_core::repo::highwater::HighWater::new(dir, repo_id))
    }

    /// How results are shown (`--json`, `--quiet`).
    pub fn mode(&self) -> crate::render::Mode {
        crate::render::Mode {
            json: self.json,
            quiet: self.quiet,
        }
    }

    /// Whether to draw progress bars: stderr is a terminal and output is for humans.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.json && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }

    /// Where the progress of backup and restore goes: JSON status lines with `--json -v`
    /// (not with `--quiet`), a bar when [`Context::progress_enabled`], else nowhere.
    pub fn progress(&self) -> crate::progress::Show {
        if self.json && self.verbose > 0 && !self.quiet {
            crate::progress::Show::Json
        } else {
            crate::progress::Show::bar_if(self.progress_enabled())
        }
    }
}

/// Host name of this machine.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// User name running tresor: the name of the real uid in the user database (getpwuid, as
/// restic does), else the uid in decimal. Not `$USER`, which cron and systemd units lack and
/// anyone can set.
pub fn username() -> String {
    let uid = rustix::process::getuid().as_raw();
    tresor_core::fsmeta::NameCache::default()
        .user(uid)
        .unwrap_or_else(|| uid.to_string())
}
