//! Waiting out a store that throttles or fails in passing, for the storages behind a network
//! (S3, `tresor serve`): one policy for every request they send, and the notices that tell the
//! caller a request is waiting.
//!
//! A request that fails in passing (S3 `503 SlowDown`, `500`, `429`, a reset connection, a
//! timeout; a busy server) is sent again after an exponential backoff with jitter — the first
//! delay [`RetryPolicy::min_delay`], doubling up to [`RetryPolicy::max_delay`], each one drawn
//! from between half and all of that — or after the delay the server asked for (`Retry-After`),
//! until [`RetryPolicy::retry_for`] has passed since its first attempt (default five minutes).
//! Before every wait the storage's [`WaitObserver`] gets a [`WaitNotice`]; when a request that
//! waited succeeds, it is told that too.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How a storage retries requests that failed in passing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Keep retrying a request until this long after its first attempt. Default 300 s; zero
    /// never retries.
    pub retry_for: Duration,
    /// At most this many retries of one request after passing failures, whatever the time
    /// left (waits the store asks for, `Retry-After`, count only against the time). Default: no
    /// limit (`u32::MAX`), only the time.
    pub max_retries: u32,
    /// The first backoff. Default 200 ms.
    pub min_delay: Duration,
    /// The longest backoff. Default 10 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_for: DEFAULT_RETRY_FOR,
            max_retries: u32::MAX,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// [`RetryPolicy::retry_for`] by default: five minutes.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(300);

impl RetryPolicy {
    /// The default policy with another [`RetryPolicy::retry_for`] and
    /// [`RetryPolicy::max_retries`].
    pub fn new(retry_for: Duration, max_retries: u32) -> Self {
        RetryPolicy {
            retry_for,
            max_retries,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry `attempt` (1-based): `min_delay × 2^(attempt−1)`, at most
    /// `max_delay`, then a random point between half of it and all of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .min_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        base / 2 + base.mul_f64(random_fraction() / 2.0)
    }
}

/// A uniformly random number in [0, 1) from the operating system (0 if it has none).
fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / 4_294_967_296.0,
        Err(_) => 0.0,
    }
}

/// What a request is waiting for, told to the [`WaitObserver`] before each wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitNotice {
    /// The operation, e.g. `write`, `read`, `list`.
    pub op: String,
    /// The object or place concerned, e.g. `pack 1a2b…` (may be empty).
    pub object: String,
    /// Why: the store's answer or the transport failure, one line.
    pub error: String,
    /// Which retry comes after this wait (1 for the first).
    pub attempt: u32,
    /// How long it waits now.
    pub delay: Duration,
    /// How long the request has been trying so far.
    pub waited: Duration,
    /// How long it keeps trying in all ([`RetryPolicy::retry_for`]).
    pub budget: Duration,
}

impl fmt::Display for WaitNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.budget.saturating_sub(self.waited).as_secs();
        write!(
            f,
            "waiting for the store: {} {}: {}; retry {} in {:.1} s (giving up in {}:{:02})",
            self.op,
            self.object,
            self.error,
            self.attempt,
            self.delay.as_secs_f64(),
            left / 60,
            left % 60
        )
    }
}

/// Told when requests of a storage wait for the store. Must be quick: it runs on the thread
/// that is about to wait.
pub trait WaitObserver: Send + Sync {
    /// A request failed in passing and waits before it is sent again.
    fn waiting(&self, notice: &WaitNotice);
    /// A request that had waited succeeded.
    fn recovered(&self, _op: &str, _object: &str) {}
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The failure is final: return it.
    Final,
    /// A passing failure: retry after a backoff.
    Backoff,
    /// The store asked to wait this long before the next attempt.
    After(Duration),
}

/// Runs attempts of requests under a [`RetryPolicy`], telling its observer about waits.
pub struct Retrier {
    policy: RetryPolicy,
    observer: RwLock<Option<Arc<dyn WaitObserver>>>,
}

impl fmt::Debug for Retrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Retrier {
    /// A retrier with this policy and no observer.
    pub fn new(policy: RetryPolicy) -> Self {
        Retrier {
            policy,
            observer: RwLock::new(None),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Replace the observer; returns the one before.
    pub fn set_observer(
        &self,
        observer: Option<Arc<dyn WaitObserver>>,
    ) -> Option<Arc<dyn WaitObserver>> {
        let mut o = self.observer.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *o, observer)
    }

    fn observer(&self) -> Option<Arc<dyn WaitObserver>> {
        self.observer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Run `attempt` until it succeeds, `judge` calls its error [`Verdict::Final`], or the
    /// policy gives up (then the last error is returned). `op` and `object` name the request
    /// in notices. Blocks the calling thread while it waits.
    ///
    /// # Errors
    /// The last error of `attempt`.
    pub fn run<T, E: fmt::Display>(
        &self,
        op: &str,
        object: &str,
        mut attempt: impl FnMut() -> Result<T, E>,
        judge: impl Fn(&E) -> Verdict,
    ) -> Result<T, E> {
        let start = Instant::now();
        // All retries (for notices), and those after passing failures (for `max_retries`).
        let (mut retries, mut backoffs) = (0u32, 0u32);
        loop {
            let e = match attempt() {
                Ok(v) => {
                    if retries > 0
                        && let Some(o) = self.observer()
                    {
                        o.recovered(op, object);
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            let left = self.policy.retry_for.saturating_sub(start.elapsed());
            let delay = match judge(&e) {
                Verdict::Final => return Err(e),
                Verdict::Backoff if backoffs >= self.policy.max_retries => return Err(e),
                Verdict::Backoff => {
                    backoffs += 1;
                    self.policy.backoff(backoffs)
                }
                Verdict::After(d) => d + d.mul_f64(random_fraction() / 4.0),
            };
            if left.is_zero() {
                return Err(e);
            }
            retries += 1;
            let delay = delay.min(left);
            if let Some(o) = self.observer() {
                o.waiting(&WaitNotice {
                    op: op.to_string(),
                    object: object.to_string(),
                    error: one_line(&e.to_string()),
                    attempt: retries,
                    delay,
                    waited: start.elapsed(),
                    budget: self.policy.retry_for,
                });
            }
            std::thread::sleep(delay);
        }
    }
}

/// `s` on one line, at most 300 characters.
fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);
    impl WaitObserver for Log {
        fn waiting(&self, n: &WaitNotice) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", n.attempt, n.error));
        }
        fn recovered(&self, op: &str, object: &str) {
            self.0.lock().unwrap().push(format!("ok {op} {object}"));
        }
    }

    fn fast(retry_for: Duration) -> RetryPolicy {
        RetryPolicy {
            retry_for,
            max_retries: u32::MAX,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        for (attempt, base_ms) in [
            (1, 200),
            (2, 400),
            (3, 800),
            (6, 6400),
            (7, 10_000),
            (40, 10_000),
        ] {
            for _ in 0..20 {
                let d = p.backoff(attempt).as_millis() as u64;
                assert!(d >= base_ms / 2 && d <= base_ms, "{attempt}: {d}");
            }
        }
    }

    #[test]
    fn passing_failures_are_retried_and_observed_until_success() {
        let r = Retrier::new(fast(Duration::from_secs(10)));
        let log = Arc::new(Log::default());
        r.set_observer(Some(log.clone()));
        let mut n = 0;
        let out: Result<u32, String> = r.run(
            "write",
            "pack ab",
            || {
                n += 1;
                if n < 4 {
                    Err(format!("503 SlowDown #{n}"))
                } else {
                    Ok(n)
                }
            },
            |_| Verdict::Backoff,
        );
        assert_eq!(out, Ok(4));
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "1 503 SlowDown #1",
                "2 503 SlowDown #2",
                "3 503 SlowDown #3",
                "ok write pack ab"
            ]
        );
    }

    #[test]
    fn final_errors_limits_and_the_time_budget_end_the_retries() {
        let r = Retrier::new(fast(Duration::from_secs(10)));
        let mut n = 0;
        let out: Result<(), String> = r.run(
            "read",
            "x",
            || {
                n += 1;
                Err(format!("404 #{n}"))
            },
            |_| Verdict::Final,
        );
        assert_eq!((out, n), (Err("404 #1".into()), 1));
        let r = Retrier::new(RetryPolicy {
            max_retries: 2,
            ..fast(Duration::from_secs(10))
        });
        let mut n = 0;
        let out: Result<(), String> = r.run(
            "read",
            "x",
            || {
                n += 1;
                Err(format!("500 #{n}"))
            },
            |_| Verdict::Backoff,
        );
        assert_eq!((out, n), (Err("500 #3".into()), 3));
        let r = Retrier::new(fast(Duration::from_millis(300)));
        let start = Instant::now();
        let out: Result<(), String> = r.run(
            "list",
            "",
            || Err("reset".to_string()),
            |_| Verdict::After(Duration::from_millis(50)),
        );
        assert_eq!(out, Err("reset".into()));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        let r = Retrier::new(fast(Duration::ZERO));
        let mut n = 0;
        let _ = r.run(
            "list",
            "",
            || -> Result<(), String> {
                n += 1;
                Err("reset".into())
            },
            |_| Verdict::Backoff,
        );
        assert_eq!(n, 1, "zero time: no retry");
    }

    #[test]
    fn notices_read_as_one_line() {
        let n = WaitNotice {
            op: "write".into(),
            object: "pack 1a2b3c4d".into(),
            error: one_line("503 Slow Down\n  <Code>SlowDown</Code>"),
            attempt: 2,
            delay: Duration::from_millis(1500),
            waited: Duration::from_secs(61),
            budget: Duration::from_secs(300),
        };
        assert_eq!(
            n.to_string(),
            "waiting for the store: write pack 1a2b3c4d: 503 Slow Down <Code>SlowDown</Code>; \
             retry 2 in 1.5 s (giving up in 3:59)"
        );
    }
}
