//! `--limit-upload` / `--limit-download` (KiB/s) hold a command's transfers to the repository
//! to the rate: ~2 MiB of incompressible data at 1024 KiB/s takes about two seconds each way
//! (the bucket starts empty), against a local repository (the limit is one layer over every
//! storage), and against a `tresor serve` on loopback.

use std::time::{Duration, Instant};
use tresor_testkit::prelude::*;

/// `n` bytes that do not compress.
fn noise(n: usize) -> Vec<u8> {
    tresor_testkit::repo::noise(1, n)
}

fn timed(env: &Env, args: &[&str]) -> Duration {
    timed_with(env, &[], args)
}

/// The time `tresor ARGS` took, with the environment variables `vars` added; it must succeed.
fn timed_with(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Duration {
    let start = Instant::now();
    let o = env
        .cmd()
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    took
}

/// The time is the limit's: at least 1.5 s for ~2 MiB at 1024 KiB/s, less than 10 s.
fn limited(took: Duration, what: &str) {
    assert!(took >= Duration::from_millis(1500), "{what} took {took:?}");
    assert!(took < Duration::from_secs(10), "{what} took {took:?}");
}

#[test]
fn uploads_and_downloads_keep_to_the_limits() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = noise(2 << 20);
    std::fs::write(src.join("big"), &data).unwrap();
    let s = src.to_str().unwrap();
    limited(
        timed(&env, &["--limit-upload", "1024", "backup", s]),
        "backup",
    );
    let target = env.path("target");
    let t = target.to_str().unwrap();
    let down = timed(
        &env,
        &[
            "--limit-download",
            "1024",
            "restore",
            "latest",
            "--target",
            t,
        ],
    );
    assert!(down >= Duration::from_millis(1500), "restore took {down:?}");
    assert!(down < Duration::from_secs(10), "restore took {down:?}");
    let restored = std::fs::read(target.join(s.trim_start_matches('/')).join("big")).unwrap();
    assert!(restored == data, "restored bytes differ");
    // Without limits the same work is quicker by most of the ~2 s the limit adds (compared with
    // the limited run rather than a fixed bound, so that a loaded machine slows both alike).
    let target2 = env.path("target2");
    let free = timed(
        &env,
        &["restore", "latest", "--target", target2.to_str().unwrap()],
    );
    assert!(
        free + Duration::from_millis(800) < down,
        "unlimited restore took {free:?}, limited {down:?}"
    );
}

#[test]
fn the_limits_come_from_the_environment_too() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), noise(1 << 20)).unwrap();
    let start = Instant::now();
    let o = env
        .cmd()
        .env("TRESOR_LIMIT_UPLOAD", "1024")
        .args(["backup", src.to_str().unwrap()])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(took >= Duration::from_millis(900), "backup took {took:?}");
    assert!(took < Duration::from_secs(8), "backup took {took:?}");
}

#[test]
fn the_limits_hold_against_a_server_on_loopback() {
    use tresor_server::auth::{generate_token, hash_token};
    let env = Env::new();
    env.init();
    let token = generate_token("admin").unwrap();
    let config = format!(
        "[repositories.main]\npath = \"{}\"\n[clients.admin]\nrepository = \"main\"\nrole = \"admin\"\ntoken_hash = \"{}\"\n",
        env.repo.display(),
        hash_token(&token).unwrap()
    );
    let config = tresor_server::ServerConfig::parse(&config).unwrap();
    let server = tresor_server::Server::from_config(&config).unwrap();
    let log = std::fs::File::create(env.path("access.log")).unwrap();
    server.set_access_log(tresor_server::AccessLog::File(log));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = server.spawn(listener, None).unwrap();
    let url = format!("tresor+http://{}/main", handle.addr());
    let vars = [
        ("TRESOR_REPOSITORY", url.as_str()),
        ("TRESOR_SERVER_TOKEN", token.as_str()),
    ];
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = noise(2 << 20);
    std::fs::write(src.join("big"), &data).unwrap();
    let s = src.to_str().unwrap();
    let backup = ["--limit-upload", "1024", "backup", s];
    limited(timed_with(&env, &vars, &backup), "backup");
    let target = env.path("target");
    let t = target.to_str().unwrap();
    let restore = [
        "--limit-download",
        "1024",
        "restore",
        "latest",
        "--target",
        t,
    ];
    limited(timed_with(&env, &vars, &restore), "restore");
    let restored = std::fs::read(target.join(s.trim_start_matches('/')).join("big")).unwrap();
    assert!(restored == data, "restored bytes differ");
}
