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
    /// Allow plain http to non-loopback S3 endpoints.
    pub insecure_http: bool,
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
            insecure_http: g.insecure_http,
        })
    }

    /// The storage at the location: `s3:…` URLs are S3 (credentials from the AWS chain), anything
    /// else a local directory (`local:` prefix optional).
    pub fn storage(&self) -> Result<Arc<dyn Storage>> {
        if tresor_s3::is_s3_url(&self.location) {
            let mut o = tresor_s3::S3Options::default();
            o.insecure_http = self.insecure_http;
            return Ok(Arc::new(tresor_s3::S3Storage::open(&self.location, &o)?));
        }
        let loc = self
            .location
            .strip_prefix("local:")
            .unwrap_or(&self.location);
        if loc.contains("://") {
            bail!("repository location {loc:?}: unknown scheme (use a directory path or s3:…)");
        }
        let path = std::path::absolute(loc)?;
        Ok(Arc::new(LocalStorage::new(path)))
    }

    /// For S3 locations: check that the store refuses overwrites (`If-None-Match: *`). Some
    /// S3-compatible stores silently ignore the header; tresor must not trust them blindly.
    /// Returns `Ok(true)` for local repositories.
    pub fn probe_conditional_writes(&self) -> Result<bool> {
        if !tresor_s3::is_s3_url(&self.location) {
            return Ok(true);
        }
        let mut o = tresor_s3::S3Options::default();
        o.insecure_http = self.insecure_http;
        Ok(tresor_s3::S3Storage::open(&self.location, &o)?.probe_conditional_writes()?)
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
        Ok(Repository::open(storage, &pw)?)
    }

    /// Whether to draw progress bars: stderr is a terminal and output is for humans.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.json && std::io::IsTerminal::is_terminal(&std::io::stderr())
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
