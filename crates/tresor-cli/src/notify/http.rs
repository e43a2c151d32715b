//! One POST with retries and exponential backoff, over reqwest's blocking client (rustls).

use std::time::Duration;

/// A POST to make.
pub struct Request {
    /// The target's name for warnings: `healthchecks`, `webhook`, `ntfy`.
    pub target: &'static str,
    /// Where.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A client with a per-request timeout and a number of retries.
pub struct Client {
    inner: reqwest::blocking::Client,
    retries: u32,
}

impl Client {
    /// A client whose requests time out after `timeout`, retried `retries` times.
    ///
    /// # Errors
    /// reqwest cannot build its client (no TLS roots).
    pub fn new(timeout: Duration, retries: u32) -> Result<Client, String> {
        let inner = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Client { inner, retries })
    }

    /// POST `req`, retrying a failure (a connection error, a timeout, 408, 429 or 5xx) after
    /// 1 s, 2 s, 4 s … up to `retries` times.
    ///
    /// # Errors
    /// The last failure, in words that never hold the URL.
    pub fn send(&self, req: &Request) -> Result<(), String> {
        let mut wait = Duration::from_secs(1);
        let mut attempt = 0;
        loop {
            let (err, again) = match self.once(req) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !again || attempt >= self.retries {
                let tries = attempt + 1;
                return Err(format!("{err} (after {tries} attempt{})", plural(tries)));
            }
            attempt += 1;
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    /// One attempt: the error and whether it is worth retrying.
    fn once(&self, req: &Request) -> Result<(), (String, bool)> {
        let mut b = self.inner.post(&req.url).body(req.body.clone());
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let resp = b.send().map_err(|e| {
            let again = !e.is_builder();
            (describe(&e.without_url()), again)
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let again = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
        Err((format!("HTTP status {}", status.as_u16()), again))
    }
}

/// reqwest's error (its URL already removed) and its causes, in one line.
fn describe(e: &reqwest::Error) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !words.iter().any(|w| w.contains(&s)) {
            words.push(s);
        }
        cur = c.source();
    }
    words.join(": ")
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}
