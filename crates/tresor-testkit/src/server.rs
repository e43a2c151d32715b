//! A `tresor serve` server on 127.0.0.1 (feature `server`) with two repositories (`main`,
//! `other`) and one client per role, and raw HTTP/1.1 requests to it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;
use tresor_server::auth::{generate_token, hash_token};
use tresor_server::{AccessLog, RemoteOptions, RemoteStorage, Server, ServerConfig, ServerHandle};

/// A running server, its repositories in a temporary directory, and the clients' tokens.
pub struct TestServer {
    /// Holds the repositories `main` and `other` and the access log.
    pub dir: tempfile::TempDir,
    /// The server.
    pub server: Server,
    /// Its listener on 127.0.0.1 (a free port).
    pub handle: ServerHandle,
    /// Token of client `admin`: role admin on `main`.
    pub admin: String,
    /// Token of client `vps1`: role append on `main`.
    pub append: String,
    /// Token of client `restorer`: role read on `main`.
    pub read: String,
    /// Token of client `otheradmin`: role admin on `other`.
    pub other_admin: String,
    /// The access log file.
    pub log: PathBuf,
}

impl TestServer {
    /// Start with extra `[limits]` lines.
    pub fn start(limits: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let admin = generate_token("admin").unwrap();
        let append = generate_token("vps1").unwrap();
        let read = generate_token("restorer").unwrap();
        let other_admin = generate_token("otheradmin").unwrap();
        let client = |name: &str, repo: &str, role: &str, token: &str| {
            format!(
                "[clients.{name}]\nrepository = \"{repo}\"\nrole = \"{role}\"\ntoken_hash = \"{}\"\n",
                hash_token(token).unwrap()
            )
        };
        let config = format!(
            "[limits]\n{limits}\n[repositories.main]\npath = \"{}\"\n[repositories.other]\npath = \"{}\"\n{}{}{}{}",
            dir.path().join("main").display(),
            dir.path().join("other").display(),
            client("admin", "main", "admin", &admin),
            client("vps1", "main", "append", &append),
            client("restorer", "main", "read", &read),
            client("otheradmin", "other", "admin", &other_admin),
        );
        let config = ServerConfig::parse(&config).unwrap();
        let server = Server::from_config(&config).unwrap();
        let log = dir.path().join("access.log");
        server.set_access_log(AccessLog::File(std::fs::File::create(&log).unwrap()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let handle = server.spawn(listener, None).unwrap();
        TestServer {
            dir,
            server,
            handle,
            admin,
            append,
            read,
            other_admin,
            log,
        }
    }

    /// The `tresor+http://` URL of repository `repo`.
    pub fn url(&self, repo: &str) -> String {
        format!("tresor+http://{}/{repo}", self.handle.addr())
    }

    /// A client storage of repository `repo` with `token` (one retry).
    pub fn storage(&self, repo: &str, token: &str) -> RemoteStorage {
        let mut o = RemoteOptions::default();
        o.token = Some(token.to_string());
        o.retries = 1;
        RemoteStorage::open(&self.url(repo), &o).unwrap()
    }

    /// The folder of repository `repo`.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.dir.path().join(repo)
    }

    /// The access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// A new connection (20 s read timeout).
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.handle.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// A connection from another loopback address (`127.0.0.N`).
    pub fn connect_from(&self, local: [u8; 4]) -> TcpStream {
        let s = connect_from(local, self.handle.addr());
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// One request on a connection from another loopback address; (status, response text).
    pub fn request_from(&self, local: [u8; 4], path: &str, token: &str) -> (u16, String) {
        let mut s = self.connect_from(local);
        s.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        (status_of(&text), text)
    }

    /// Send raw bytes on a new connection, half-close, and read the whole answer.
    pub fn raw(&self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// One request with `Connection: close`; returns (status, whole response text).
    pub fn request(&self, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let text = self.raw(&req);
        (status_of(&text), text)
    }
}

/// A blocking TCP connection to `to` from `127.0.0.N` (any loopback address works on Linux).
pub fn connect_from(local: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::from(local), 0).into())
            .unwrap();
        socket.connect(to).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// The status code of a raw HTTP/1.1 response (0 when there is none).
pub fn status_of(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
