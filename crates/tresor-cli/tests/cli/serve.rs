//! `tresor serve` end to end: init, backup and restore through `tresor+http://127.0.0.1:PORT/main`
//! with per-role tokens, a hostile append client, and the SSH stdio mode through a local child.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tresor_server::auth::{generate_token, hash_token};
use tresor_server::{AccessLog, Server, ServerConfig, ServerHandle};
use tresor_testkit::prelude::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A server for `env.repo` as repository `main` (plus an empty `other`), with one token per
/// role.
struct Served {
    handle: ServerHandle,
    admin: String,
    append: String,
    read: String,
    log: PathBuf,
}

fn serve(env: &Env, limits: &str) -> Served {
    let admin = generate_token("admin").unwrap();
    let append = generate_token("vps1").unwrap();
    let read = generate_token("restorer").unwrap();
    let client = |name: &str, role: &str, token: &str| {
        format!(
            "[clients.{name}]\nrepository = \"main\"\nrole = \"{role}\"\ntoken_hash = \"{}\"\n",
            hash_token(token).unwrap()
        )
    };
    let text = format!(
        "[limits]\n{limits}\n[repositories.main]\npath = \"{}\"\n[repositories.other]\npath = \"{}\"\n{}{}{}",
        env.repo.display(),
        env.path("other").display(),
        client("admin", "admin", &admin),
        client("vps1", "append", &append),
        client("restorer", "read", &read),
    );
    let server = Server::from_config(&ServerConfig::parse(&text).unwrap()).unwrap();
    let log = env.path("access.log");
    server.set_access_log(AccessLog::File(std::fs::File::create(&log).unwrap()));
    let handle = server
        .spawn(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), None)
        .unwrap();
    Served {
        handle,
        admin,
        append,
        read,
        log,
    }
}

impl Served {
    fn url(&self) -> String {
        format!("tresor+http://{}/main", self.handle.addr())
    }

    /// tresor with the repository at the server and `token`.
    fn run(&self, env: &Env, token: &str, password: Option<&Path>, args: &[&str]) -> Output {
        let mut c = env.cmd();
        c.env("TRESOR_REPOSITORY", self.url())
            .env("TRESOR_SERVER_TOKEN", token)
            .env("TRESOR_CACHE_DIR", env.path("cache"));
        if let Some(pw) = password {
            c.env_remove("TRESOR_PASSWORD")
                .env("TRESOR_PASSWORD_FILE", pw);
        }
        c.args(args).output().unwrap()
    }

    fn ok(&self, env: &Env, token: &str, password: Option<&Path>, args: &[&str]) -> Output {
        let o = self.run(env, token, password, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        o
    }

    /// One raw HTTP/1.1 request on a new connection; returns the status (0: none).
    fn raw(&self, request: &[u8]) -> u16 {
        let mut s = TcpStream::connect(self.handle.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn request(&self, method: &str, path: &str, token: &str, body: &[u8]) -> u16 {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }
}

fn password_file(env: &Env, name: &str, text: &str) -> PathBuf {
    env.password_file(name, &format!("{text}\n"))
}

/// init (admin) → put-only key (admin) → backup (append token, put-only key) → restore and
/// check --read-data (read token, full key).
fn backup_through_server(env: &Env, srv: &Served) -> (PathBuf, PathBuf) {
    srv.ok(
        env,
        &srv.admin,
        None,
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
    );
    let host_pw = password_file(env, "host-pw", "host password");
    srv.ok(
        env,
        &srv.admin,
        None,
        &[
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
        ],
    );
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("big"), pseudo_random(7, 3 << 20)).unwrap();
    std::fs::write(src.join("d/small"), b"through the server").unwrap();
    srv.ok(
        env,
        &srv.append,
        Some(&host_pw),
        &["backup", src.to_str().unwrap()],
    );
    // A second run: nothing changed, the put-only cache skips every file.
    let o = srv.ok(
        env,
        &srv.append,
        Some(&host_pw),
        &["backup", "--json", src.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bytes_read"], 0, "{v}");
    (src, host_pw)
}

#[test]
fn init_backup_restore_through_the_server() {
    let env = Env::new();
    let srv = serve(&env, "");
    let (src, host_pw) = backup_through_server(&env, &srv);
    // The append client's backups were refused nothing.
    let log = std::fs::read_to_string(&srv.log).unwrap();
    let used: std::collections::BTreeSet<String> = log
        .lines()
        .filter(|l| l.contains("client=vps1"))
        .filter_map(|l| {
            let f = |k: &str| {
                l.split(' ')
                    .find_map(|w| w.strip_prefix(k))
                    .map(str::to_string)
            };
            Some(format!("{} {} {}", f("op=")?, f("kind=")?, f("status=")?))
        })
        .collect();
    eprintln!("append client used: {used:?}");
    assert!(
        used.iter().all(|u| [" 200", " 201", " 206", " 404"]
            .iter()
            .any(|c| u.ends_with(c))),
        "{used:?}"
    );
    // The append token cannot read backups, even with a full key's password.
    let t = env.path("restored");
    let o = srv.run(
        &env,
        &srv.append,
        None,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(0));
    // The read token restores; the append token's host key cannot delete anything.
    srv.ok(
        &env,
        &srv.read,
        None,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_same(
        &scan(&src, false),
        &scan(&t.join(src.strip_prefix("/").unwrap()), false),
    );
    srv.ok(&env, &srv.read, None, &["check", "--read-data"]);
    // The read token cannot forget.
    let o = srv.run(&env, &srv.read, None, &["forget", "--keep-last", "0"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    let _ = host_pw;
    let log = std::fs::read_to_string(&srv.log).unwrap();
    assert!(log.contains("client=vps1 role=append"), "{log}");
    assert!(log.contains("op=write kind=data"), "{log}");
    for t in [&srv.admin, &srv.append, &srv.read] {
        assert!(!log.contains(t.as_str()), "tokens never reach the log");
    }
}

/// Every file below `dir` with its size.
fn files(dir: &Path) -> std::collections::BTreeMap<PathBuf, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), m.len());
            }
        }
    }
    out
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn hostile_append_client_changes_nothing() {
    let env = Env::new();
    let srv = serve(
        &env,
        "max_object_size = 6291456\nheader_timeout_secs = 2\nbody_timeout_secs = 2",
    );
    let (src, host_pw) = backup_through_server(&env, &srv);
    let before = files(&env.repo);
    let pack = before
        .keys()
        .find(|p| p.parent().unwrap().parent().unwrap().ends_with("data"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let index = before
        .keys()
        .find(|p| p.parent().unwrap().ends_with("index"))
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let tok = srv.append.clone();
    let body = b"hostile bytes".to_vec();
    let name = tresor_storage::name_of(&body);

    // Deletes and overwrites.
    assert_eq!(
        srv.request("DELETE", &format!("/main/data/{pack}"), &tok, b""),
        403
    );
    assert_eq!(
        srv.request("DELETE", &format!("/main/index/{index}"), &tok, b""),
        403
    );
    assert_eq!(
        srv.request("PUT", &format!("/main/data/{pack}"), &tok, &body),
        409
    );
    assert_eq!(
        srv.request("PUT", &format!("/main/index/{index}"), &tok, &body),
        409
    );
    // Name and body disagree.
    let wrong = tresor_storage::name_of(b"something else");
    assert_eq!(
        srv.request("PUT", &format!("/main/data/{wrong}"), &tok, &body),
        400
    );
    // Kinds an append client may not create or read.
    for kind in ["keys", "config", "revocations", "prune"] {
        assert_eq!(
            srv.request("PUT", &format!("/main/{kind}/{name}"), &tok, &body),
            403
        );
    }
    assert_eq!(
        srv.request("GET", &format!("/main/data/{pack}"), &tok, b""),
        403
    );
    assert_eq!(srv.request("GET", "/main/snapshots/", &tok, b""), 403);
    // Path traversal, plain and encoded.
    for path in [
        "/main/../other/config/".to_string(),
        "/main/data/../../../etc/passwd".to_string(),
        "/main/%2e%2e%2fconfig/".to_string(),
        "/main/%2E%2E/keys/".to_string(),
        format!("/main/data%2f..%2fkeys/{name}"),
        format!("/main/data/..%2f{name}"),
        "/..%2f..%2fetc%2fpasswd".to_string(),
        "//etc/passwd".to_string(),
        format!("/main/data/{name}/.."),
        format!("/main/./data/{name}"),
        format!("/main/data/{name}?x=../y"),
    ] {
        for method in ["GET", "PUT"] {
            let s = srv.request(method, &path, &tok, &body);
            assert!((400..500).contains(&s), "{method} {path}: {s}");
        }
    }
    // Other repositories do not exist for it; without a valid token nothing does.
    assert_eq!(srv.request("GET", "/other/", &tok, b""), 404);
    assert_eq!(
        srv.request("PUT", &format!("/other/data/{name}"), &tok, &body),
        404
    );
    assert_eq!(srv.request("GET", "/nosuch/config/", &tok, b""), 404);
    assert_eq!(srv.request("GET", "/main/config/", "vps1.wrong", b""), 401);
    assert_eq!(
        srv.raw(b"GET /main/config/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        401
    );
    // Oversized: declared (413); streamed without a length: refused before the body is read
    // (411, uploads need a Content-Length).
    let put_head = |len: &str| {
        format!(
            "PUT /main/data/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n{len}\r\n\r\n"
        )
    };
    assert_eq!(srv.raw(put_head("Content-Length: 7340032").as_bytes()), 413);
    {
        let mut s = TcpStream::connect(srv.handle.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(put_head("Transfer-Encoding: chunked").as_bytes())
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..8 {
            if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .is_err()
                || s.write_all(&chunk).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let mut out = [0u8; 12];
        let _ = s.read(&mut out);
        assert_eq!(&out, b"HTTP/1.1 411");
    }
    // Truncated: Content-Length larger than what is sent, then close.
    {
        let mut s = TcpStream::connect(srv.handle.addr()).unwrap();
        s.write_all(put_head("Content-Length: 1000").as_bytes())
            .unwrap();
        s.write_all(&[b'y'; 500]).unwrap();
        drop(s);
    }
    // Stalled body: 408 after body_timeout_secs.
    {
        let mut s = TcpStream::connect(srv.handle.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(put_head("Content-Length: 100").as_bytes())
            .unwrap();
        s.write_all(&[b'z'; 10]).unwrap();
        let mut out = [0u8; 12];
        let _ = s.read(&mut out);
        assert_eq!(&out, b"HTTP/1.1 408");
    }
    // Garbage: 400, and the server stays up.
    let garbage: Vec<u8> = pseudo_random(3, 4096);
    let s = srv.raw(&garbage);
    assert!(s == 400 || s == 0, "garbage: {s}");
    assert_eq!(
        srv.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"),
        400
    );
    assert_eq!(
        srv.raw(b"GET /main/ HTTP/1.1\r\nHost: x\r\nX: \x01\x02\x00\r\n\r\n"),
        400
    );
    assert_eq!(srv.request("GET", "/main/", &tok, b""), 200);

    // Slow loris: one connection sends its headers a byte at a time; others are served
    // meanwhile, and the server drops the slow one after header_timeout_secs.
    let addr = srv.handle.addr();
    let loris = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = Instant::now();
        let head = b"GET /main/ HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for b in head.iter() {
            if s.write_all(&[*b]).is_err() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The server answered or closed: see what is there.
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if out.starts_with(b"HTTP/1.1 200") {
            None
        } else {
            Some(start.elapsed())
        }
    });
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        assert_eq!(srv.request("GET", "/main/config/", &tok, b""), 200);
        assert!(t.elapsed() < Duration::from_secs(1), "served promptly");
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served >= 10, "{served}");
    let cut = loris.join().unwrap();
    assert!(
        cut.is_some_and(|d| d < Duration::from_secs(8)),
        "slow connection was cut: {cut:?}"
    );

    // Nothing changed, nothing was left behind, and the repository checks clean.
    assert_eq!(files(&env.repo), before);
    env.ok(&["check", "--read-data"]);
    // The server still takes backups.
    std::fs::write(src.join("after"), b"after the attack").unwrap();
    srv.ok(
        &env,
        &srv.append,
        Some(&host_pw),
        &["backup", src.to_str().unwrap()],
    );
    env.ok(&["check", "--read-data"]);
}

/// `tresor serve --stdio` for `repo` with `role`, as a `--server-command`.
fn stdio_command(repo: &Path, role: &str) -> String {
    format!(
        "exec '{}' serve --stdio --repo '{}' --role {role}",
        env!("CARGO_BIN_EXE_tresor"),
        repo.display()
    )
}

#[test]
fn stdio_mode_conforms() {
    let env = Env::new();
    let mut o = tresor_server::RemoteOptions::default();
    o.server_command = Some(stdio_command(&env.repo, "admin"));
    let s =
        tresor_server::RemoteStorage::open("ssh://backup@example.invalid/srv/repo", &o).unwrap();
    use tresor_storage::Storage;
    s.create().unwrap();
    tresor_storage::conformance::run_all(&s);
    assert_eq!(s.info().unwrap()["role"], "admin");
}

#[test]
fn backup_and_restore_over_a_server_command() {
    let env = Env::new();
    env.init();
    let host_pw = password_file(&env, "host-pw", "host password");
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
    std::fs::write(src.join("f"), pseudo_random(9, 1 << 20)).unwrap();
    let remote = |role: &str, pw: Option<&Path>, args: &[&str]| {
        let mut c = env.cmd();
        c.env("TRESOR_REPOSITORY", "ssh://backup@example.invalid/srv/repo")
            .env("TRESOR_SERVER_COMMAND", stdio_command(&env.repo, role))
            .env("TRESOR_CACHE_DIR", env.path("cache"));
        if let Some(pw) = pw {
            c.env_remove("TRESOR_PASSWORD")
                .env("TRESOR_PASSWORD_FILE", pw);
        }
        c.args(args).output().unwrap()
    };
    let o = remote("append", Some(&host_pw), &["backup", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The append role cannot delete: forget with the full key fails over this pipe.
    let o = remote("append", None, &["forget", "--keep-last", "0"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = env.path("restored");
    let o = remote(
        "read",
        None,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same(
        &scan(&src, false),
        &scan(&t.join(src.strip_prefix("/").unwrap()), false),
    );
    env.ok(&["check", "--read-data"]);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn serve_command_line_with_hash_token() {
    let env = Env::new();
    let mut config = format!("[repositories.main]\npath = \"{}\"\n", env.repo.display());
    let mut tokens = Vec::new();
    for (name, role) in [("admin", "admin"), ("vps1", "append")] {
        let o = env.ok(&[
            "serve",
            "hash-token",
            name,
            "--repository",
            "main",
            "--role",
            role,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        tokens.push(v["token"].as_str().unwrap().to_string());
        config.push_str(&format!(
            "[clients.{name}]\nrepository = \"main\"\nrole = \"{role}\"\ntoken_hash = \"{}\"\n",
            v["token_hash"].as_str().unwrap()
        ));
        assert!(!config.contains(tokens.last().unwrap().as_str()));
    }
    // The text form prints the token once as a comment, and the config lines.
    let o = env.ok(&["serve", "hash-token", "vps2"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("# vps2.") && text.contains("[clients.vps2]"),
        "{text}"
    );
    let cfg = env.path("serve.toml");
    std::fs::write(&cfg, &config).unwrap();
    let mut child = std::process::Command::new(tresor_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let url = format!("tresor+http://{addr}/main");
    let run = |token: &str, args: &[&str]| {
        env.cmd()
            .env("TRESOR_REPOSITORY", &url)
            .env("TRESOR_SERVER_TOKEN", token)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(
        &tokens[0],
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The append token cannot add keys (keys/ is admin-only).
    let o = run(&tokens[1], &["key", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run("vps1.not-the-token", &["key", "list"]);
    assert_ne!(o.status.code(), Some(0));
    // Token from a file instead of the environment.
    let tf = password_file(&env, "token", &tokens[0]);
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", &url)
        .env_remove("TRESOR_SERVER_TOKEN")
        .args(["--server-token-file", tf.to_str().unwrap(), "snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    child.kill().unwrap();
    let _ = child.wait();
    let log = log.join().unwrap();
    assert!(
        log.iter().any(|l| l.contains("client=admin role=admin")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("status=401")), "{log:#?}");
    assert!(
        !log.iter()
            .any(|l| tokens.iter().any(|t| l.contains(t.as_str())))
    );
    // A non-loopback plain-HTTP location is refused by the client.
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", "tresor+http://192.0.2.1:8080/main")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
}

/// Two rounds of eight concurrent backups through the server, each host with its own put-only
/// key (certified for its host: a put-only key writes for one host) and cache; during the
/// second round the admin forgets every snapshot of the first round and prunes. Afterwards (and after the prunes that delete what was condemned) every
/// kept snapshot restores byte for byte and `check --read-data` is clean.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn eight_clients_back_up_at_once_while_an_admin_forgets_and_prunes() {
    let env = Env::new();
    let srv = serve(&env, "");
    srv.ok(
        &env,
        &srv.admin,
        None,
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
    );
    let host_pws: Vec<PathBuf> = (0..8)
        .map(|i| {
            let pw = password_file(&env, &format!("host{i}-pw"), &format!("host {i} password"));
            let host = format!("client{i}");
            let mut add = vec!["key", "add", "--put-only", "--host", &host];
            add.extend(["--new-password-file", pw.to_str().unwrap()]);
            add.extend(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
            srv.ok(&env, &srv.admin, None, &add);
            pw
        })
        .collect();
    // Eight sources sharing some data (each put-only key stores its own copy: they
    // deduplicate against their own index objects only) and with their own.
    let shared = pseudo_random(100, 256 << 10);
    let sources: Vec<PathBuf> = (0..8u64)
        .map(|i| {
            let s = env.path(&format!("src{i}"));
            std::fs::create_dir_all(s.join("d")).unwrap();
            std::fs::write(s.join("shared"), &shared).unwrap();
            std::fs::write(s.join("d/own"), pseudo_random(i, 384 << 10)).unwrap();
            std::fs::write(s.join("name"), format!("client {i}")).unwrap();
            s
        })
        .collect();
    let url = srv.url();
    let start_round = || -> Vec<std::process::Child> {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut c = env.cmd();
                c.env("TRESOR_REPOSITORY", &url)
                    .env("TRESOR_SERVER_TOKEN", &srv.append)
                    .env_remove("TRESOR_PASSWORD")
                    .env("TRESOR_PASSWORD_FILE", &host_pws[i])
                    .env("TRESOR_CACHE_DIR", env.path(&format!("cache{i}")))
                    .args(["backup", "--json", "--host", &format!("client{i}")])
                    .arg(s)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect()
    };
    let finish_round = |children: Vec<std::process::Child>| -> Vec<String> {
        children
            .into_iter()
            .enumerate()
            .map(|(i, child)| {
                let o = child.wait_with_output().unwrap();
                assert_eq!(o.status.code(), Some(0), "client {i}: {}", stderr(&o));
                assert!(
                    !stderr(&o).contains("marker"),
                    "the append role writes start markers: {}",
                    stderr(&o)
                );
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                v["snapshot_id"].as_str().unwrap().to_string()
            })
            .collect()
    };

    // Round 1, while the admin prunes (nothing to free yet).
    let round = start_round();
    let o = srv.run(&env, &srv.admin, None, &["prune"]);
    let (prune_ok, prune_err) = (o.status.code() == Some(0), stderr(&o));
    let first = finish_round(round);
    assert!(prune_ok, "prune during backups: {prune_err}");

    // Round 2 with new own data, while the admin forgets round 1 and prunes: round 1's own
    // data is condemned while round 2 deduplicates the shared file against it.
    for (i, s) in sources.iter().enumerate() {
        std::fs::write(s.join("d/own"), pseudo_random(50 + i as u64, 300 << 10)).unwrap();
        std::fs::write(s.join("round"), b"2").unwrap();
    }
    let round = start_round();
    let mut forget: Vec<&str> = vec!["forget", "--prune"];
    forget.extend(first.iter().map(String::as_str));
    let o = srv.run(&env, &srv.admin, None, &forget);
    let (forget_ok, forget_err) = (o.status.code() == Some(0), stderr(&o));
    let second = finish_round(round);
    assert!(forget_ok, "forget --prune during backups: {forget_err}");
    let o = srv.ok(&env, &srv.admin, None, &["snapshots", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut want = second.clone();
    want.sort();
    assert_eq!(listed, want, "only round 2 is left");

    // The next prunes approve and delete what round 1 alone used.
    srv.ok(&env, &srv.admin, None, &["prune"]);
    let o = srv.ok(&env, &srv.admin, None, &["prune", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["stats"].is_object(), "{v}");
    for (i, (id, s)) in second.iter().zip(&sources).enumerate() {
        let t = env.path(&format!("restored{i}"));
        srv.ok(
            &env,
            &srv.read,
            None,
            &["restore", id, "--target", t.to_str().unwrap()],
        );
        assert_same(
            &scan(s, false),
            &scan(&t.join(s.strip_prefix("/").unwrap()), false),
        );
    }
    srv.ok(&env, &srv.read, None, &["check", "--read-data"]);
}
