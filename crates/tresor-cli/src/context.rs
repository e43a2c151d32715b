//! Opening storage and repositories from the global options.

use crate::cli::Global;
use crate::password::PasswordSource;
use anyhow::{Result, bail};
use std::sync::Arc;
use tresor_core::Repository;
use tresor_storage::Storage;
use tresor_storage::local::LocalStorage;

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
    /// Local cache directory, if caching is on.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Options for S3 locations (from the global flags).
    pub s3: tresor_s3::S3Options,
    /// Options for tresor+http(s):// and ssh:// locations (from the global flags).
    pub server: crate::commands::serve::ServerFlags,
    /// How long network storages retry a request that fails in passing (`--retry-for`).
    pub retry_for: std::time::Duration,
}

/// S3 options from the global flags.
pub fn s3_options(g: &Global) -> Result<tresor_s3::S3Options> {
    let mut o = tresor_s3::S3Options::default();
    o.insecure_http = g.insecure_http;
    o.retry_for = std::time::Duration::from_secs(g.retry_for);
    o.storage_class_data = g.s3.storage_class_data.clone();
    o.connections = usize::from(g.s3.connections);
    o.storage_class_metadata = g.s3.storage_class_metadata.clone();
    o.sse = match (&g.s3.sse, &g.s3.sse_kms_key_id) {
        (Some(a), k) => Some(tresor_s3::Sse::parse(a, k.as_deref())?),
        (None, Some(_)) => bail!("--s3-sse-kms-key-id needs --s3-sse aws:kms"),
        (None, None) => None,
    };
    Ok(o)
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
            },
            json: g.json,
            quiet: g.quiet,
            cache_dir: if g.no_cache {
                None
            } else {
                g.cache_dir.clone().or_else(tresor_core::cache::default_dir)
            },
            s3: s3_options(g)?,
            server: g.server.clone(),
            retry_for: std::time::Duration::from_secs(g.retry_for),
        })
    }

    /// The location as a local directory (without a `local:` prefix), or `None` for S3 and
    /// remote repositories.
    fn local_location(&self) -> Option<&str> {
        if tresor_s3::is_s3_url(&self.location) || tresor_server::is_remote_url(&self.location) {
            return None;
        }
        Some(
            self.location
                .strip_prefix("local:")
                .unwrap_or(&self.location),
        )
    }

    /// The directory of a local-directory repository (`None` for S3 and remote ones).
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        std::path::absolute(self.local_location()?).ok()
    }

    /// The storage at the location: `s3:…` URLs are S3 (credentials from the AWS chain),
    /// `tresor+http(s)://` and `ssh://` a `tresor serve` server, anything else a local directory
    /// (`local:` prefix optional). Network storages print their waits for the store on stderr
    /// (unless `--quiet` or `--json`).
    pub fn storage(&self) -> Result<Arc<dyn Storage>> {
        let remote: Arc<dyn Storage> = if tresor_s3::is_s3_url(&self.location) {
            Arc::new(self.open_s3()?)
        } else if tresor_server::is_remote_url(&self.location) {
            let mut o = self.server.remote_options()?;
            o.retry_for = self.retry_for;
            Arc::new(tresor_server::RemoteStorage::open(&self.location, &o)?)
        } else {
            return self.local_storage();
        };
        if !self.quiet && !self.json {
            remote.set_wait_observer(Some(Arc::new(crate::output::WaitLines::default())));
        }
        Ok(remote)
    }

    /// The local directory at the location.
    fn local_storage(&self) -> Result<Arc<dyn Storage>> {
        let loc = self.local_location().expect("neither S3 nor remote");
        if loc.contains("://") {
            bail!("repository location {loc:?}: unknown scheme (use a directory path or s3:…)");
        }
        let path = std::path::absolute(loc)?;
        Ok(Arc::new(LocalStorage::new(path)))
    }

    /// The S3 storage at the location. When the repository's config asks for Object Lock, every
    /// object written gets that retention.
    fn open_s3(&self) -> Result<tresor_s3::S3Storage> {
        let s3 = tresor_s3::S3Storage::open(&self.location, &self.s3)?;
        match Repository::read_config(&s3) {
            Ok(c) => s3.set_object_lock(c.object_lock.map(object_lock)),
            Err(tresor_core::CoreError::RepositoryNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(s3)
    }

    /// For `init --s3-object-lock-days`: the S3 storage, giving every object it writes this
    /// Object Lock retention, after checking that the bucket has Object Lock enabled and that a
    /// locked probe object really is locked.
    pub fn storage_with_object_lock(
        &self,
        lock: tresor_format::config::ObjectLockConfig,
    ) -> Result<Arc<dyn Storage>> {
        if !tresor_s3::is_s3_url(&self.location) {
            bail!("--s3-object-lock-days needs an S3 repository location (s3:…)");
        }
        let s3 = tresor_s3::S3Storage::open(&self.location, &self.s3)?;
        let bucket = s3.bucket_object_lock()?;
        if !bucket.enabled {
            bail!(
                "{}: the bucket does not have Object Lock enabled (create it with Object Lock, \
                 e.g. `aws s3api create-bucket --object-lock-enabled-for-bucket`)",
                self.location
            );
        }
        s3.set_object_lock(Some(object_lock(lock)));
        if !s3.probe_object_lock()? {
            bail!(
                "{}: the store accepted the Object Lock headers but did not lock the probe object; \
                 refusing to rely on it",
                self.location
            );
        }
        Ok(Arc::new(s3))
    }

    /// For S3 locations: check that the store refuses overwrites (`If-None-Match: *`). Some
    /// S3-compatible stores silently ignore the header; tresor must not trust them blindly.
    /// Returns `Ok(true)` for local repositories.
    pub fn probe_conditional_writes(&self) -> Result<bool> {
        if !tresor_s3::is_s3_url(&self.location) {
            return Ok(true);
        }
        Ok(self.open_s3()?.probe_conditional_writes()?)
    }

    /// Open the repository with the password.
    pub fn open(&self) -> Result<Repository> {
        let storage = self.storage()?;
        // Fail on a missing repository before asking for a password.
        Repository::read_config(storage.as_ref())?;
        let pw = self.password.get(&format!(
            "enter password for repository {}: ",
            self.location
        ))?;
        let repo = Repository::open_with(storage, &pw, self.cache_dir.as_deref())?;
        if let Some(p) = repo.cache_problem()
            && !self.quiet
        {
            eprintln!(
                "warning: local cache {p}: this machine cannot notice a rollback of the \
                 repository or hidden snapshots (use --cache-dir DIR)"
            );
        }
        Ok(repo)
    }

    /// This machine's high-water marks of repository `repo_id` (`None` with `--no-cache`).
    pub fn high_water(&self, repo_id: &str) -> Option<tresor_core::highwater::HighWater> {
        let dir = self.cache_dir.as_deref()?;
        Some(tresor_core::highwater::HighWater::new(dir, repo_id))
    }

    /// Whether to draw progress bars: stderr is a terminal and output is for humans.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.json && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

/// The S3 form of a config's Object Lock setting.
pub fn object_lock(c: tresor_format::config::ObjectLockConfig) -> tresor_s3::ObjectLock {
    use tresor_format::config::ObjectLockMode;
    tresor_s3::ObjectLock {
        mode: match c.mode {
            ObjectLockMode::Governance => tresor_s3::LockMode::Governance,
            ObjectLockMode::Compliance => tresor_s3::LockMode::Compliance,
        },
        days: c.days,
    }
}

/// Host name of this machine.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// User name running tresor.
pub fn username() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| uid.to_string())
}
