//! Errors that name the thing: a location that holds no tresor repository says what is there in
//! one line naming the path (exit 10); a repository the storage refuses to show is named in the
//! "permission denied" line (exit 1: a local directory, S3's `403 AccessDenied`); a `mount` that
//! cannot open `/dev/fuse` says what to do.

use std::path::Path;
use tresor_testkit::cli::Env;
use tresor_testkit::require::{Need, require_all};

/// Run `tresor -r LOCATION ARGS` and require exit `code` and exactly `line` on stderr (nothing
/// else), and nothing on stdout.
fn one_line(env: &Env, location: &Path, args: &[&str], code: i32, line: &str) {
    let o = env
        .cmd()
        .arg("-r")
        .arg(location)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err, format!("{line}\n"), "{args:?}");
    assert!(o.stdout.is_empty(), "{args:?}: {o:?}");
}

/// restic's layout (its `doc/design.rst`): a `config` file and folders.
fn fake_restic(dir: &Path) {
    for d in ["data/00", "index", "keys", "locks", "snapshots"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("config"), b"\x00encrypted").unwrap();
    std::fs::write(dir.join("keys").join("a".repeat(64)), b"{}").unwrap();
}

#[test]
fn locations_without_a_repository_say_what_is_there() {
    let env = Env::new();
    let (file, restic, empty, other) = (
        env.path("file"),
        env.path("restic"),
        env.path("empty"),
        env.path("other"),
    );
    std::fs::write(&file, b"not a repository").unwrap();
    fake_restic(&restic);
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"x").unwrap();
    let missing = env.path("missing");
    let cases = [
        (
            &file,
            format!("{} is a file, not a tresor repository", file.display()),
        ),
        (
            &restic,
            format!(
                "{} is a restic repository, not a tresor repository",
                restic.display()
            ),
        ),
        (
            &empty,
            format!(
                "no repository at {}: the directory is empty (run `tresor init` first)",
                empty.display()
            ),
        ),
        (
            &missing,
            format!(
                "no repository at {}: no such file or directory (run `tresor init` first)",
                missing.display()
            ),
        ),
        (
            &other,
            format!(
                "{} is not a tresor repository (it has no config folder)",
                other.display()
            ),
        ),
    ];
    for (location, message) in &cases {
        for args in [
            &["snapshots"][..],
            &["backup", "/etc/hostname"],
            &["cat", "config"],
            &["key", "list"],
            &["check"],
        ] {
            one_line(&env, location, args, 10, &format!("tresor: {message}"));
        }
    }
    assert!(!missing.exists(), "nothing was created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn init_names_a_file_or_a_restic_repository_in_its_way() {
    let env = Env::new();
    let (file, restic, other) = (env.path("file"), env.path("restic"), env.path("other"));
    std::fs::write(&file, b"not a repository").unwrap();
    fake_restic(&restic);
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"x").unwrap();
    let elsewhere = "create the repository in a new or empty directory";
    for (location, what) in [
        (&file, "is a file:"),
        (&restic, "is a restic repository:"),
        (&other, ": the directory is not empty:"),
    ] {
        let sep = if what.starts_with(':') { "" } else { " " };
        let line = format!("tresor: {}{sep}{what} {elsewhere}", location.display());
        one_line(&env, location, &["init"], 1, &line);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a repository");
    let mut left: Vec<String> = std::fs::read_dir(&restic)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["config", "data", "index", "keys", "locks", "snapshots"]
    );
}

#[test]
fn a_real_restic_repository_is_named_as_one() {
    if !require_all(&[Need::Restic]) {
        return;
    }
    let env = Env::new();
    let repo = env.path("restic");
    let o = std::process::Command::new("restic")
        .env("RESTIC_PASSWORD", "restic")
        .args(["init", "--repo"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let line = format!(
        "tresor: {} is a restic repository, not a tresor repository",
        repo.display()
    );
    one_line(&env, &repo, &["snapshots"], 10, &line);
    let line = format!(
        "tresor: {} is a restic repository: create the repository in a new or empty directory",
        repo.display()
    );
    one_line(&env, &repo, &["init"], 1, &line);
}

#[test]
fn a_local_repository_that_refuses_access_is_named() {
    use std::os::unix::fs::PermissionsExt;
    if !require_all(&[Need::Root, Need::Setpriv]) {
        return;
    }
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.init();
    // The repository's files are the owner's alone (0600): the first read is refused.
    let config = std::fs::read_dir(env.repo.join("config"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let o = as_user(&[
        "-r".as_ref(),
        env.repo.as_os_str(),
        "--no-cache".as_ref(),
        "snapshots".as_ref(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "tresor: permission denied by repository {}: storage: read config {}: Permission \
             denied (os error 13)\n",
            env.repo.display(),
            config.to_str().unwrap()
        )
    );
}

/// `tresor ARGS` as uid and gid 1234 (no groups), with the test password.
fn as_user(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=1234", "--regid=1234", "--clear-groups"])
        .arg(tresor_testkit::cli::tresor_bin())
        .args(args)
        .env("TRESOR_PASSWORD", tresor_testkit::cli::PASSWORD)
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn a_user_who_cannot_open_dev_fuse_is_told_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    if !require_all(&[Need::Fuse, Need::Root, Need::Setpriv]) {
        return;
    }
    // A repository and a mount point user 1234 can read, outside the private temp dir.
    let top = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = Env::new();
    let repo = top.path().join("repo");
    let mnt = top.path().join("mnt");
    env.cmd()
        .arg("-r")
        .arg(&repo)
        .args(["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let o = std::process::Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(&repo)
        .output()
        .unwrap();
    assert!(o.status.success());
    // Whatever the machine's /dev/fuse mode (0600 here, 0666 on most systems), user 1234 sees
    // one it may not open: a root-only file bound over it in a mount namespace of its own.
    let closed = top.path().join("fuse-closed");
    std::fs::write(&closed, b"").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = "mount --bind \"$1\" /dev/fuse && shift && exec setpriv --reuid=1234 \
                  --regid=1234 --clear-groups \"$@\"";
    let o = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&closed)
        .arg(tresor_testkit::cli::tresor_bin())
        .arg("-r")
        .arg(&repo)
        .args(["--no-cache", "mount"])
        .arg(&mnt)
        .env("TRESOR_PASSWORD", tresor_testkit::cli::PASSWORD)
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        "tresor: cannot open /dev/fuse: permission denied: give this user access to it (add the \
         user to its group, or make it mode 0666 as most systems do) or run as root; see \
         `tresor mount` in docs/cli.md\n"
    );
}

/// A loopback "S3 server" that answers every request `403 AccessDenied` (at most 16
/// connections); returns its port.
fn access_denied_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
                    <Message>Access Denied</Message></Error>";
        for conn in listener.incoming().take(16) {
            let Ok(mut c) = conn else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                c,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: \
                 {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn s3_access_denied_names_the_repository() {
    let env = Env::new();
    let location = format!("s3:http://127.0.0.1:{}/bucket/pre", access_denied_server());
    let mut c = env.cmd();
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            c.env_remove(k);
        }
    }
    let o = c
        .args(["-r", &location, "--retry-for", "0", "snapshots"])
        .env("AWS_ACCESS_KEY_ID", "tresor-test")
        .env("AWS_SECRET_ACCESS_KEY", "tresor-test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let head = format!(
        "tresor: permission denied by repository {location}: storage: list config pre/config/: "
    );
    assert!(err.starts_with(&head), "{err}");
    assert!(err.contains("AccessDenied"), "{err}");
}
