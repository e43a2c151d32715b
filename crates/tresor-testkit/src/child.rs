//! A test that must change the process environment (credentials from the AWS variables, say)
//! runs its body in a child process of the test binary instead: the other tests of the binary
//! share the parent's environment and must not see the change.
//!
//! ```no_run
//! use tresor_testkit::child;
//! #[test]
//! fn wrong_secret() {
//!     if !child::is_child() {
//!         child::run_alone("s3_wrong_credentials::wrong_secret", &[("AWS_SECRET_ACCESS_KEY", Some("x"))]);
//!         return;
//!     }
//!     // … the body, with the changed environment …
//! }
//! ```

use std::process::Command;

/// Set in the child's environment.
const CHILD: &str = "TRESOR_TESTKIT_CHILD";

/// Whether this process is a child started by [`run_alone`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Run the test `path` (its full path in this test binary, e.g. `module::test_name`) alone in a
/// child process of this binary, with the environment changed by `env` (`None`: removed).
/// Panics, showing the child's output, unless exactly that one test ran and passed.
pub fn run_alone(path: &str, env: &[(&str, Option<&str>)]) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([path, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("start the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{path} in a child process ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
