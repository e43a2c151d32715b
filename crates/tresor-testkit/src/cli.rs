//! A temporary repository and the `tresor` binary to run against it ([`Env`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The password of every [`Env`]'s repository.
pub const PASSWORD: &str = "correct horse battery staple";

/// The `tresor` binary: `tresor` beside the folder of the running test binary
/// (`target/debug/deps/..`, where cargo puts a package's binaries for its integration tests).
/// The CLI tests check that this is `CARGO_BIN_EXE_tresor`.
pub fn tresor_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile.join("tresor")
}

/// A test repository in a temporary directory (removed when dropped) and the commands that
/// run `tresor` on it.
pub struct Env {
    /// The temporary directory.
    pub dir: tempfile::TempDir,
    /// The repository: `dir/repo` (not created until `init`).
    pub repo: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A new temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        Env { dir, repo }
    }

    /// `p` inside the temporary directory.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `XDG_CACHE_HOME` of [`Env::cmd`]: `xdg-cache` in the temporary directory, so the
    /// default cache of its commands is `xdg-cache/tresor`.
    pub fn cache_home(&self) -> PathBuf {
        self.path("xdg-cache")
    }

    /// `tresor` with `TRESOR_REPOSITORY` and `TRESOR_PASSWORD` set for this repository (and
    /// the other password sources removed), and its default cache (`$XDG_CACHE_HOME/tresor`)
    /// inside the temporary directory ([`Env::cache_home`]), not in the home of whoever runs
    /// the tests: each test's caches are its own and go when it ends.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(tresor_bin());
        c.env("TRESOR_REPOSITORY", &self.repo)
            .env("XDG_CACHE_HOME", self.cache_home())
            .env_remove("TRESOR_CACHE_DIR")
            .env("TRESOR_PASSWORD", PASSWORD)
            .env_remove("TRESOR_PASSWORD_FILE")
            .env_remove("TRESOR_PASSWORD_COMMAND");
        c
    }

    /// Run tresor with args; returns the output (any exit code).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run and require exit code `code`; the panic shows stdout and stderr.
    pub fn run_code(&self, args: &[&str], code: i32) -> Output {
        run_expecting(self.cmd(), args, code)
    }

    /// Run and require success.
    pub fn ok(&self, args: &[&str]) -> Output {
        self.run_code(args, 0)
    }

    /// `tresor init` with cheap key derivation.
    pub fn init(&self) {
        self.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    }

    /// Add, with the key in use, a put-only key for `host` whose password is the first line
    /// of `password_file` (see [`put_only_key_args`]).
    pub fn add_put_only_key(&self, host: &str, password_file: &Path) -> Output {
        let args = put_only_key_args(host, password_file);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A password file `name` in the test dir (mode 0600, as tresor requires) holding `content`.
    pub fn password_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Full ids of the snapshots (`snapshots --json`), oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        let o = self.ok(&["snapshots", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `backup --json` of `paths` with `extra` arguments, requiring exit code `code`; returns
    /// the summary.
    pub fn backup_json(&self, paths: &[&Path], extra: &[&str], code: i32) -> serde_json::Value {
        let mut args: Vec<String> = vec!["backup".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = self.run_code(&a, code);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("backup json: {e}: {}", String::from_utf8_lossy(&o.stdout)))
    }
}

/// Run `c` (a tresor command prepared with its environment, e.g. from [`Env::cmd`]) with `args`
/// and require exit code `code`; the panic shows the arguments, stdout and stderr.
pub fn run_expecting(mut c: Command, args: &[&str], code: i32) -> Output {
    let o = c.args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "tresor {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The arguments of `tresor key add --put-only --host HOST` with the new key's password from
/// `password_file` and cheap key derivation (8 MiB, one iteration), for tests that run it with
/// another repository's password than [`Env::ok`]'s.
pub fn put_only_key_args(host: &str, password_file: &Path) -> Vec<String> {
    let file = password_file.to_str().expect("test paths are UTF-8");
    [
        "key",
        "add",
        "--put-only",
        "--host",
        host,
        "--new-password-file",
        file,
    ]
    .into_iter()
    .chain(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
    .map(str::to_string)
    .collect()
}
