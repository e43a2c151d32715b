//! The one rule for tests that need something from the machine (an S3 server, moto, sshd,
//! FUSE, restic, root, setpriv): when it is there the test runs; when it is absent on a
//! developer machine the test says `skipped: …` on stderr and passes; when it is absent in CI
//! (`CI` set, and not `false` or `0`) the test **fails** — CI must run every test.
//!
//! ```no_run
//! use tresor_testkit::require::{Need, require};
//! if !require(Need::Fuse) {
//!     return;
//! }
//! // … mount …
//! ```

use std::path::Path;

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// An S3 server: `TRESOR_TEST_S3_URL` (and the `AWS_*` credentials), SeaweedFS from
    /// `scripts/s3-server.sh start`.
    S3,
    /// moto with IAM enforced: `TRESOR_TEST_MOTO_ENDPOINT`, `_ADMIN_KEY`, `_ADMIN_SECRET` and
    /// `TRESOR_TEST_S3_PYTHON`, from `scripts/s3-server.sh moto-start`.
    Moto,
    /// OpenSSH's server, `/usr/sbin/sshd` (Debian `openssh-server`).
    Sshd,
    /// FUSE: `/dev/fuse`.
    Fuse,
    /// restic on the `PATH` (Debian `restic`).
    Restic,
    /// Running as root (CI does).
    Root,
    /// `setpriv` (util-linux), to run commands as another user.
    Setpriv,
    /// `systemd-analyze` on the `PATH` (Debian `systemd`), to verify generated units.
    SystemdAnalyze,
}

impl Need {
    /// Whether the machine has it.
    pub fn present(self) -> bool {
        match self {
            Need::S3 => var("TRESOR_TEST_S3_URL").is_some(),
            Need::Moto => moto_vars().is_some(),
            Need::Sshd => Path::new("/usr/sbin/sshd").exists(),
            Need::Fuse => Path::new("/dev/fuse").exists(),
            Need::Restic => on_path("restic"),
            Need::Root => is_root(),
            Need::Setpriv => on_path("setpriv"),
            Need::SystemdAnalyze => on_path("systemd-analyze"),
        }
    }

    /// What is missing, and how to get it.
    pub fn describe(self) -> &'static str {
        match self {
            Need::S3 => {
                "an S3 server: TRESOR_TEST_S3_URL is not set \
                 (run `eval \"$(scripts/s3-server.sh start)\"`)"
            }
            Need::Moto => {
                "moto: TRESOR_TEST_MOTO_ENDPOINT is not set \
                 (run `eval \"$(scripts/s3-server.sh moto-start)\"`)"
            }
            Need::Sshd => "/usr/sbin/sshd (apt-get install openssh-server)",
            Need::Fuse => "/dev/fuse (FUSE)",
            Need::Restic => "restic (apt-get install restic)",
            Need::Root => "root (CI runs the tests as root)",
            Need::Setpriv => "setpriv (util-linux)",
            Need::SystemdAnalyze => "systemd-analyze (apt-get install systemd)",
        }
    }
}

/// Whether `need` is met. If not: `false` after a `skipped: …` note on a developer machine; a
/// panic naming what is missing in CI ([`in_ci`]).
pub fn require(need: Need) -> bool {
    need.present() || absent(need.describe())
}

/// [`require`] for each of `needs`, stopping at the first one missing.
pub fn require_all(needs: &[Need]) -> bool {
    needs.iter().all(|&n| require(n))
}

/// The rule itself, for needs [`Need`] does not list: `false` after a note on a developer
/// machine; panics in CI.
pub fn absent(what: &str) -> bool {
    assert!(!in_ci(), "CI must run this test, but it lacks {what}");
    eprintln!("skipped: this test needs {what}");
    false
}

/// Whether the tests run in CI: `CI` is set, and not empty, `false` or `0`.
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

fn ci_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The S3 test server's URL (`s3:http://127.0.0.1:8333/tresor-test`), or `None` after
/// [`require`]`(`[`Need::S3`]`)` said it is absent.
pub fn s3_url() -> Option<String> {
    require(Need::S3).then(|| var("TRESOR_TEST_S3_URL").expect("present"))
}

/// A fresh location in the S3 test bucket: the server's URL with the prefix
/// `{tag}-{16 random hex digits}`. `None` as for [`s3_url`].
pub fn s3_url_under(tag: &str) -> Option<String> {
    let url = s3_url()?;
    Some(format!(
        "{}/{tag}-{}",
        url.trim_end_matches('/'),
        random_hex(8)
    ))
}

/// moto, as `scripts/s3-server.sh moto-start` describes it.
#[derive(Debug, Clone)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key of moto's administrator IAM user.
    pub admin_key: String,
    /// Its secret key.
    pub admin_secret: String,
    /// A Python with boto3, for IAM calls.
    pub python: String,
}

fn moto_vars() -> Option<Moto> {
    Some(Moto {
        endpoint: var("TRESOR_TEST_MOTO_ENDPOINT")?,
        admin_key: var("TRESOR_TEST_MOTO_ADMIN_KEY")?,
        admin_secret: var("TRESOR_TEST_MOTO_ADMIN_SECRET")?,
        python: var("TRESOR_TEST_S3_PYTHON")?,
    })
}

/// moto, or `None` after [`require`]`(`[`Need::Moto`]`)` said it is absent.
pub fn moto() -> Option<Moto> {
    if require(Need::Moto) {
        moto_vars()
    } else {
        None
    }
}

/// `2 × bytes` random lowercase hex digits (for unique prefixes and names).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("random bytes");
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts_as_ci() {
        for (v, ci) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(ci_value(v), ci, "{v:?}");
        }
    }

    #[test]
    fn programs_are_found_on_the_path() {
        assert!(on_path("sh"), "every test machine has sh");
        assert!(!on_path("no-such-program-tresor-testkit"));
    }

    #[test]
    fn random_hex_is_fresh_and_of_its_length() {
        let (a, b) = (random_hex(8), random_hex(8));
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
