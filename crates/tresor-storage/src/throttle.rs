//! Bandwidth limits (`--limit-upload`, `--limit-download`): a [`Forward`](crate::Forward) layer
//! over any storage that holds the bytes written (upload) and the bytes read (download) to a
//! rate each, with a token [`Bucket`] per direction.
//!
//! The bucket holds up to one second's worth of bytes and starts empty, so over any stretch
//! from the start a transfer never passes the rate. A transfer takes its bytes from the bucket
//! at once, going into debt when the bucket holds fewer, and then sleeps until the debt is
//! paid back: uploads before the write (their size is known), downloads after the read.
//! Concurrent transfers share the bucket: each one waits for its own debt behind the others'.

use crate::{Kind, Result, Storage};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest single sleep: a long wait is made of steps of at most this.
pub const MAX_SLEEP_STEP: Duration = Duration::from_millis(250);

/// Time for a [`Bucket`]: the system clock, or a fake one in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since a fixed origin (only differences count).
    fn now(&self) -> Duration;
    /// Wait for `d` (at most [`MAX_SLEEP_STEP`] per call).
    fn sleep(&self, d: Duration);
}

/// The system's monotonic clock and `thread::sleep`.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A token bucket: `rate` bytes per second, holding at most one second's worth, starting empty.
#[derive(Debug)]
pub struct Bucket<C: Clock = SystemClock> {
    rate: f64,
    clock: C,
    /// Bytes available (negative: owed), and when that was worked out.
    state: Mutex<(f64, Duration)>,
}

impl<C: Clock> Bucket<C> {
    /// A bucket of `rate` bytes per second (at least 1) on `clock`.
    pub fn new(rate: u64, clock: C) -> Self {
        let now = clock.now();
        Bucket {
            rate: rate.max(1) as f64,
            clock,
            state: Mutex::new((0.0, now)),
        }
    }

    /// Take `bytes` from the bucket and sleep until it is no longer in debt for them, in steps of
    /// at most [`MAX_SLEEP_STEP`]. Returns the whole time slept for.
    pub fn take(&self, bytes: u64) -> Duration {
        let owed = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.clock.now();
            let refill = now.saturating_sub(s.1).as_secs_f64() * self.rate;
            s.0 = (s.0 + refill).min(self.rate) - bytes as f64;
            s.1 = now;
            -s.0
        };
        if owed <= 0.0 {
            return Duration::ZERO;
        }
        let total = Duration::from_secs_f64(owed / self.rate);
        let mut left = total;
        while !left.is_zero() {
            let step = left.min(MAX_SLEEP_STEP);
            self.clock.sleep(step);
            left -= step;
        }
        total
    }
}

/// Limits in bytes per second; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes written per second (`--limit-upload`).
    pub upload: Option<u64>,
    /// Bytes read per second (`--limit-download`).
    pub download: Option<u64>,
}

/// A storage whose writes and reads are held to [`Limits`]; everything else passes through.
#[derive(Debug)]
pub struct Throttled {
    inner: Arc<dyn Storage>,
    upload: Option<Bucket>,
    download: Option<Bucket>,
}

impl Throttled {
    /// `inner` held to `limits`.
    pub fn new(inner: Arc<dyn Storage>, limits: Limits) -> Self {
        let bucket = |rate: Option<u64>| rate.map(|r| Bucket::new(r, SystemClock::default()));
        Throttled {
            inner,
            upload: bucket(limits.upload),
            download: bucket(limits.download),
        }
    }

    fn sent(&self, bytes: usize) {
        if let Some(b) = &self.upload {
            b.take(bytes as u64);
        }
    }

    fn received(&self, data: Result<Vec<u8>>) -> Result<Vec<u8>> {
        if let (Some(b), Ok(d)) = (&self.download, &data) {
            b.take(d.len() as u64);
        }
        data
    }
}

impl crate::Forward for Throttled {
    fn inner(&self) -> &dyn Storage {
        self.inner.as_ref()
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        self.received(self.inner.read(kind, name))
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.received(self.inner.read_range(kind, name, offset, length))
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.sent(data.len());
        self.inner.write(kind, name, data)
    }

    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.sent(data.len());
        self.inner.write_vec(kind, name, data)
    }

    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.sent(data.len());
        self.inner.write_vec_hot(kind, name, data)
    }

    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        self.sent(len as usize);
        self.inner.write_file(kind, name, path, len, hot)
    }

    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        self.sent(parts.iter().map(|p| p.len()).sum());
        self.inner.write_parts(kind, name, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when slept on, recording each sleep.
    #[derive(Debug, Default)]
    struct FakeClock {
        now: Mutex<Duration>,
        slept: Mutex<Vec<Duration>>,
    }

    impl Clock for &FakeClock {
        fn now(&self) -> Duration {
            *self.now.lock().unwrap()
        }
        fn sleep(&self, d: Duration) {
            *self.now.lock().unwrap() += d;
            self.slept.lock().unwrap().push(d);
        }
    }

    impl FakeClock {
        fn advance(&self, d: Duration) {
            *self.now.lock().unwrap() += d;
        }
        fn slept(&self) -> Vec<Duration> {
            std::mem::take(&mut self.slept.lock().unwrap())
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn starts_empty_and_sleeps_off_the_debt_in_bounded_steps() {
        let clock = FakeClock::default();
        let b = Bucket::new(1000, &clock);
        assert_eq!(b.take(500), MS(500));
        assert_eq!(clock.slept(), [MS(250), MS(250)]);
        assert_eq!(b.take(600), MS(600));
        assert_eq!(clock.slept(), [MS(250), MS(250), MS(100)]);
        assert_eq!(*clock.now.lock().unwrap(), MS(1100));
    }

    #[test]
    fn an_idle_bucket_fills_up_to_one_seconds_worth() {
        let clock = FakeClock::default();
        let b = Bucket::new(1000, &clock);
        clock.advance(MS(400));
        assert_eq!(b.take(400), Duration::ZERO);
        clock.advance(Duration::from_secs(5));
        // Full at 1000 bytes, not 5000: 1500 bytes owe 500.
        assert_eq!(b.take(1500), MS(500));
        assert_eq!(clock.slept(), [MS(250), MS(250)]);
        assert_eq!(b.take(0), Duration::ZERO);
        assert_eq!(clock.slept(), []);
    }

    #[test]
    fn debts_add_up() {
        let clock = FakeClock::default();
        let b = Bucket::new(2000, &clock);
        clock.advance(MS(500));
        assert_eq!(b.take(1000), Duration::ZERO);
        // Empty now: 100 bytes owe 50 ms, paid back by the sleep; 300 more owe 150 ms.
        assert_eq!(b.take(100), MS(50));
        assert_eq!(b.take(300), MS(150));
        assert_eq!(clock.slept(), [MS(50), MS(150)]);
    }

    /// A pack stored from a spool file is held to the upload limit like one sent from memory:
    /// 200 kB at 1 MB/s from an empty bucket take 200 ms.
    #[test]
    fn spooled_writes_are_throttled() {
        let slow = Limits {
            upload: Some(1_000_000),
            download: None,
        };
        let s = Throttled::new(Arc::new(crate::memory::MemoryStorage::new()), slow);
        s.create().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spooled");
        let data = vec![7u8; 200_000];
        std::fs::write(&path, &data).unwrap();
        let start = std::time::Instant::now();
        let name = crate::name_of(&data);
        s.write_file(Kind::Pack, &name, &path, 200_000, false)
            .unwrap();
        assert!(start.elapsed() >= MS(190), "{:?}", start.elapsed());
        assert_eq!(s.read(Kind::Pack, &name).unwrap(), data);
    }

    #[test]
    fn a_throttled_storage_keeps_the_contract() {
        let fast = Limits {
            upload: Some(1 << 40),
            download: Some(1 << 40),
        };
        let s = Throttled::new(Arc::new(crate::memory::MemoryStorage::new()), fast);
        s.create().unwrap();
        crate::conformance::run_all(&s);
    }
}
