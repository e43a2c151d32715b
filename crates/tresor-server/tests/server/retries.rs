//! The client waits out a throttling or failing server (issue 13, item 8): a fake `tresor
//! serve` on 127.0.0.1 (HTTP/2 with prior knowledge, as the client speaks to `tresor+http://`)
//! answers every request of a 3-second burst with 503 (no `Retry-After`), 500, 429 or a reset
//! stream, in turn, then serves; reads and writes started in the burst succeed after it and the
//! storage's wait observer heard of each kind of failure. With a retry time shorter than the
//! burst, the request fails as a passing fault.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tresor_server::{RemoteOptions, RemoteStorage};
use tresor_storage::retry::{WaitNotice, WaitObserver};
use tresor_storage::{ErrorKind, Kind, Storage, name_of};

/// Answers of the fake server: failures until `until`, then 200 with `BODY` (GET) or 201.
struct Fake {
    until: Instant,
    seen: AtomicU64,
    /// Fail with 503 only (not in turn with 500, 429 and resets).
    only_503: bool,
}

const BODY: &[u8] = b"the stored object";

impl Fake {
    fn answer(
        &self,
        req: &Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, String> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let status = |s: u16, text: &str| {
            let body = Full::new(Bytes::from(format!("{{\"error\":\"{text}\"}}")));
            Ok(Response::builder().status(s).body(body).unwrap())
        };
        if Instant::now() < self.until {
            return match if self.only_503 { 0 } else { n % 4 } {
                0 => status(503, "slow down"),
                1 => status(500, "internal error"),
                2 => status(429, "too many requests"),
                _ => Err("reset this stream".into()),
            };
        }
        match *req.method() {
            hyper::Method::GET => Ok(Response::new(Full::new(Bytes::from_static(BODY)))),
            _ => status(201, "created"),
        }
    }
}

/// Start the fake on 127.0.0.1; returns its address.
fn start(fake: Arc<Fake>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (s, _) = listener.accept().await.unwrap();
                let fake = Arc::clone(&fake);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let fake = Arc::clone(&fake);
                        async move {
                            let answer = fake.answer(&req);
                            let _ = req.into_body().collect().await;
                            answer
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), service)
                        .await;
                });
            }
        });
    });
    addr
}

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl WaitObserver for Log {
    fn waiting(&self, n: &WaitNotice) {
        self.0.lock().unwrap().push(n.to_string());
    }
    fn recovered(&self, op: &str, _object: &str) {
        self.0.lock().unwrap().push(format!("recovered {op}"));
    }
}

fn storage(addr: std::net::SocketAddr, retry_for: Duration) -> (RemoteStorage, Arc<Log>) {
    let mut o = RemoteOptions::default();
    o.token = Some("client.secret".into());
    o.retry_for = retry_for;
    let s = RemoteStorage::open(&format!("tresor+http://{addr}/main"), &o).unwrap();
    let log = Arc::new(Log::default());
    s.set_wait_observer(Some(log.clone()));
    (s, log)
}

#[test]
fn requests_wait_out_a_burst_of_throttling_and_server_errors() {
    let burst = Duration::from_secs(3);
    let fake = Arc::new(Fake {
        until: Instant::now() + burst,
        seen: AtomicU64::new(0),
        only_503: false,
    });
    let addr = start(Arc::clone(&fake));
    let (s, log) = storage(addr, Duration::from_secs(300));
    let name = name_of(BODY);
    let started = Instant::now();
    assert_eq!(s.read(Kind::Index, &name).unwrap(), BODY);
    assert!(started.elapsed() >= burst, "{:?}", started.elapsed());
    let lines = log.0.lock().unwrap().clone();
    for what in ["503", "500", "429"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("waiting for the store: read index ") && l.contains(what)),
            "{what}: {lines:#?}"
        );
    }
    assert!(
        lines.len() >= 5,
        "the stream reset was retried too: {lines:#?}"
    );
    assert_eq!(lines.last().unwrap(), "recovered read");
    // A write in a new burst.
    let fake2 = Arc::new(Fake {
        until: Instant::now() + Duration::from_secs(1),
        seen: AtomicU64::new(0),
        only_503: false,
    });
    let (s2, log2) = storage(start(fake2), Duration::from_secs(300));
    s2.write(Kind::Pack, &name, BODY).unwrap();
    assert_eq!(log2.0.lock().unwrap().last().unwrap(), "recovered write");
}

#[test]
fn a_burst_longer_than_the_retry_time_fails_as_a_passing_fault() {
    let fake = Arc::new(Fake {
        until: Instant::now() + Duration::from_secs(60),
        seen: AtomicU64::new(0),
        only_503: true,
    });
    let (s, log) = storage(start(fake), Duration::from_secs(1));
    let started = Instant::now();
    let e = s.list(Kind::Snapshot).unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("503"), "{e}");
    assert!(!log.0.lock().unwrap().is_empty());
}
