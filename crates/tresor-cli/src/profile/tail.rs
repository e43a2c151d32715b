//! The tail of a job's log: what its steps and hooks wrote to standard error, the last
//! [`TAIL_BYTES`] bytes, kept for notifications while the text still passes through.

use std::io::{Read, Write as _};
use std::sync::{Arc, Mutex};

/// How much of the log a notification carries.
pub const TAIL_BYTES: usize = 10 * 1024;

/// A shared tail buffer (clones share it).
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<Vec<u8>>>);

impl Tail {
    /// Append `bytes`, keeping the last [`TAIL_BYTES`].
    pub fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        b.extend_from_slice(bytes);
        if b.len() > TAIL_BYTES {
            let cut = b.len() - TAIL_BYTES;
            b.drain(..cut);
        }
    }

    /// The tail as text (a character cut at the start or invalid UTF-8 as U+FFFD).
    pub fn text(&self) -> String {
        let b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Copy `from` to standard error until its end, keeping its tail.
    pub fn pass_through(&self, mut from: impl Read) {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                    self.push(&buf[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_bytes_stay() {
        let t = Tail::default();
        t.push(&vec![b'a'; TAIL_BYTES]);
        t.push(b"end");
        let text = t.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("aend"));
    }
}
