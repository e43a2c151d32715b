//! `ssh://` through a real OpenSSH server on 127.0.0.1, with forced commands in
//! `authorized_keys` (`command="tresor serve --stdio …"`). Runs only when `CI` is set, as root,
//! with `/usr/sbin/sshd` installed (Debian `openssh-server`; `scripts/test.sh` installs it).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tresor_testkit::prelude::*;
use tresor_testkit::require::{Need, require_all};

const SSHD: &str = "/usr/sbin/sshd";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn backup_and_restore_through_sshd_forced_commands() {
    let _serial = exclusive(); // see tresor_testkit::serial
    // It starts an sshd of its own (on 127.0.0.1): only in CI, where it must run.
    if !tresor_testkit::require::in_ci() {
        eprintln!("skipped: runs in CI only (CI=true), where it needs root and {SSHD}");
        return;
    }
    if !require_all(&[Need::Sshd, Need::Root]) {
        return;
    }
    let env = Env::new();
    env.init();
    let d = env.path("ssh");
    std::fs::create_dir_all(&d).unwrap();
    keygen(&d.join("host_key"));
    keygen(&d.join("id_append"));
    keygen(&d.join("id_read"));
    let tresor = env!("CARGO_BIN_EXE_tresor");
    let mut auth = String::new();
    for (key, role) in [("id_append", "append"), ("id_read", "read")] {
        let pubkey = std::fs::read_to_string(d.join(format!("{key}.pub"))).unwrap();
        auth.push_str(&format!(
            "command=\"{tresor} serve --stdio --repo {} --role {role} --client-name {key}\",restrict {}",
            env.repo.display(),
            pubkey.trim()
        ));
        auth.push('\n');
    }
    std::fs::write(d.join("authorized_keys"), auth).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nPermitRootLogin forced-commands-only\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nLogLevel ERROR\n",
            d.join("host_key").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        ),
    )
    .unwrap();
    // sshd wants its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let _sshd = Sshd(
        Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The client's own `ssh …` invocation (from the ssh:// URL), through a wrapper that adds
    // this test's client config.
    let client_config = d.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host 127.0.0.1\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile /dev/null\n\
             StrictHostKeyChecking no\n  BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n",
            d.join("id_append").display()
        ),
    )
    .unwrap();
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("ssh"),
        format!(
            "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
            client_config.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let host_pw = env.password_file("host-pw", "host password\n");
    env.ok(&[
        "key",
        "add",
        "--put-only",
        "--host",
        "vps1",
        "--new-password-file",
        host_pw.to_str().unwrap(),
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
    ]);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), pseudo_random(11, 2 << 20)).unwrap();
    let url = format!("ssh://root@127.0.0.1:{port}/not/used/with/a/forced/command");
    let o = env
        .cmd()
        .env("PATH", &path)
        .env("TRESOR_REPOSITORY", &url)
        .env_remove("TRESOR_PASSWORD")
        .env("TRESOR_PASSWORD_FILE", &host_pw)
        .env("TRESOR_CACHE_DIR", env.path("cache"))
        .args(["backup", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "backup over ssh: {}", stderr(&o));
    // The append key cannot restore, even with the full key's password.
    let t = env.path("restored");
    let o = env
        .cmd()
        .env("PATH", &path)
        .env("TRESOR_REPOSITORY", &url)
        .args(["restore", "latest", "--target", t.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    // The read key restores, reached with --server-command.
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", &url)
        .args([
            "--server-command",
            &format!(
                "ssh -F {} -i {} -p {port} root@127.0.0.1",
                client_config.display(),
                d.join("id_read").display()
            ),
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "restore over ssh: {}", stderr(&o));
    assert_same(
        &scan(&src, false),
        &scan(&t.join(src.strip_prefix("/").unwrap()), false),
    );
    env.ok(&["check", "--read-data"]);
}

/// A stand-in `ssh` in a directory put first on `PATH`: it records its arguments, one a line,
/// in `argv` beside it and fails.
fn fake_ssh(env: &Env) -> (std::ffi::OsString, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let argv = bin.join("argv");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 1\n",
        argv.display()
    );
    std::fs::write(bin.join("ssh"), script).unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    (path, argv)
}

/// Issue 10: an `ssh://` host or user starting with `-` would be an option of ssh
/// (`-oProxyCommand…` runs a command); it is refused before ssh is started, and the destination
/// always follows `--`.
#[test]
fn ssh_locations_never_pass_options_to_ssh() {
    let _serial = exclusive(); // see tresor_testkit::serial
    let env = Env::new();
    let (path, argv) = fake_ssh(&env);
    for (bad, why) in [
        (
            "ssh://-oProxyCommand/srv/repo",
            "an ssh host name must not start with '-'",
        ),
        (
            "ssh://-lroot@host/srv/repo",
            "an ssh user name must not start with '-'",
        ),
    ] {
        let o = env
            .cmd()
            .env("PATH", &path)
            .args(["-r", bad, "snapshots"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with("tresor: ") && e.contains(why), "{e}");
        assert!(!argv.exists(), "ssh was not started for {bad}");
    }
    let o = env
        .cmd()
        .env("PATH", &path)
        .args(["-r", "ssh://backup@host:2222/srv/a b", "snapshots"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&argv).unwrap(),
        "-T\n-p\n2222\n--\nbackup@host\ntresor serve --stdio --repo '/srv/a b' --role admin\n"
    );
}
