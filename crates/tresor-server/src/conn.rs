//! Connection limits: connections per client address, and the deadlines of a connection that
//! has no request in progress (its first request, then idleness between requests).
//!
//! Every request handler and every response body being sent holds an [`Active`] guard of its
//! connection's [`Activity`]; [`drive`] closes the connection gracefully when no guard has been
//! held for the first-request deadline (no request yet) or the idle deadline (after one), and
//! drops it when the client does not finish closing within the grace period.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The part of a client address that connection counts are kept for: the IPv4 address, or the
/// /64 prefix of an IPv6 address (one host usually holds a whole /64).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client address, with a cap.
#[derive(Debug)]
pub(crate) struct AddressSlots {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`AddressSlots`], given back on drop.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    slots: Arc<AddressSlots>,
    key: IpAddr,
}

impl AddressSlots {
    pub(crate) fn new(max: usize) -> Arc<AddressSlots> {
        Arc::new(AddressSlots {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when its address already has the most.
    pub(crate) fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection is doing: requests in progress, requests seen, and since when the count
/// of requests in progress last changed.
#[derive(Debug, Clone, Copy)]
struct State {
    active: usize,
    requests: u64,
    since: Instant,
}

/// The activity of one connection (shared by its requests).
#[derive(Debug)]
pub(crate) struct Activity(watch::Sender<State>);

/// A request in progress (its handler running, or its response being sent).
#[derive(Debug)]
pub(crate) struct Active(Arc<Activity>);

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity(watch::Sender::new(State {
            active: 0,
            requests: 0,
            since: Instant::now(),
        })))
    }

    /// Mark a request as started; it ends when the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Active {
        self.0.send_modify(|s| {
            s.active += 1;
            s.requests += 1;
            s.since = Instant::now();
        });
        Active(Arc::clone(self))
    }

    /// Resolves when the connection has had no request in progress for `first` (before any
    /// request) or `idle` (after one).
    async fn expired(&self, first: Duration, idle: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            let s = *rx.borrow_and_update();
            if s.active > 0 {
                let _ = rx.changed().await;
                continue;
            }
            let deadline = s.since + if s.requests == 0 { first } else { idle };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = rx.changed() => {}
            }
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.0.send_modify(|s| {
            s.active -= 1;
            s.since = Instant::now();
        });
    }
}

/// A response body that keeps its request [`Active`] until it has been sent (or dropped).
#[derive(Debug)]
pub(crate) struct TrackedBody {
    inner: Full<Bytes>,
    _active: Option<Active>,
}

impl TrackedBody {
    pub(crate) fn new(inner: Full<Bytes>, active: Option<Active>) -> TrackedBody {
        TrackedBody {
            inner,
            _active: active,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Deadlines of one connection: see [`crate::config::Limits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// No request yet.
    pub first: Duration,
    /// No request in progress after one.
    pub idle: Duration,
    /// After the graceful close starts, how long the client has to finish.
    pub grace: Duration,
}

/// How a connection ended, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client closed it, or a protocol error did.
    Closed,
    /// Closed by the server after a deadline with no request in progress.
    Idle {
        /// Whether a request had been seen (idle) or not (no first request in time).
        had_requests: bool,
    },
}

/// Run connection `conn` until it ends; with deadlines, close it gracefully (`shut`) when it has
/// had no request in progress for too long, and drop it when the close takes longer than the
/// grace period.
pub(crate) async fn drive<C, F>(
    conn: C,
    activity: &Activity,
    deadlines: Option<Deadlines>,
    shut: F,
) -> (Result<(), hyper::Error>, Ended)
where
    C: Future<Output = Result<(), hyper::Error>>,
    F: FnOnce(Pin<&mut C>),
{
    tokio::pin!(conn);
    let Some(d) = deadlines else {
        return (conn.await, Ended::Closed);
    };
    tokio::select! {
        r = conn.as_mut() => return (r, Ended::Closed),
        () = activity.expired(d.first, d.idle) => {}
    }
    let had_requests = activity.0.borrow().requests > 0;
    shut(conn.as_mut());
    let r = match tokio::time::timeout(d.grace, conn).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    };
    (r, Ended::Idle { had_requests })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_ipv6_prefix() {
        let slots = AddressSlots::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none());
        assert!(
            slots
                .try_take("::ffff:127.0.0.1".parse().unwrap())
                .is_none(),
            "v4-mapped is the same address"
        );
        let _other = slots.try_take(b).unwrap();
        drop(first);
        let _again = slots.try_take(a).unwrap();
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _x = slots.try_take(v6("2001:db8::1")).unwrap();
        let _y = slots.try_take(v6("2001:db8::ffff:2")).unwrap();
        assert!(
            slots.try_take(v6("2001:db8:0:0:1::3")).is_none(),
            "same /64"
        );
        assert!(
            slots.try_take(v6("2001:db8:0:1::1")).is_some(),
            "another /64"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_count_from_the_last_request() {
        let a = Activity::new();
        let start = Instant::now();
        a.expired(Duration::from_secs(2), Duration::from_secs(10))
            .await;
        assert_eq!(start.elapsed().as_secs(), 2, "first-request deadline");
        let guard = a.begin();
        let waiting = {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                let t = Instant::now();
                a.expired(Duration::from_secs(2), Duration::from_secs(10))
                    .await;
                t.elapsed().as_secs()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(guard);
        assert_eq!(
            waiting.await.unwrap(),
            40,
            "busy for 30 s, then idle for 10 s"
        );
    }
}
