//! Hand-signed S3 requests, for what OpenDAL does not expose: response headers of `HEAD`
//! (storage class, encryption, Object Lock), bucket-level settings (Object Lock configuration,
//! versioning) and per-object Object Lock headers on `PUT` (see [`crate::lock`]).
//!
//! Requests are signed with AWS SigV4 by `reqsign-aws-v4`, the signer OpenDAL itself uses, with a
//! credential chain built the same way as OpenDAL's (environment, shared files with the profile,
//! web identity, SSO, ECS, instance metadata unless disabled), and sent through OpenDAL's HTTP
//! transport (reqwest with rustls).
//!
//! OpenDAL's own requests are signed here too ([`SigningTransport`], with OpenDAL's signing
//! switched off): that is where the Object Lock headers are added to every `PUT`, and where query
//! strings are normalised to strict RFC 3986 encoding before signing (OpenDAL sends `prefix=a/`,
//! which AWS accepts but stores that check signatures over the raw query, such as moto, reject).

use crate::ObjectLock;
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter};
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, OsEnv, Signer};
use reqsign_file_read_tokio::TokioFileRead;
use std::sync::{Arc, RwLock};

/// Signs requests for one bucket and knows the bucket's base URL.
#[derive(Clone)]
pub(crate) struct BucketSigner {
    signer: Signer<Credential>,
    /// `https://endpoint/bucket` (path style) or `https://bucket.endpoint` (virtual host),
    /// without a trailing slash.
    pub(crate) bucket_url: String,
}

impl std::fmt::Debug for BucketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketSigner")
            .field("bucket_url", &self.bucket_url)
            .finish_non_exhaustive()
    }
}

/// The response to a hand-signed request.
#[derive(Debug, Clone)]
pub struct BucketResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl BucketResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Percent-encode a key for the URL path: everything but unreserved characters and `/`.
pub(crate) fn encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Re-encode a query string: keep unreserved characters and existing `%XX` escapes, escape the
/// rest (`/`, `:`, …) — the form AWS SigV4 canonicalises to.
pub(crate) fn normalize_query(q: &str) -> String {
    let b = q.as_bytes();
    let mut out = String::with_capacity(q.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            out.push_str(&q[i..i + 3]);
            i += 3;
            continue;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'&' | b'=') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
        i += 1;
    }
    out
}

/// The HTTP transport of the OpenDAL operators: adds the Object Lock headers to `PutObject`,
/// normalises the query, signs, and hands the request to OpenDAL's default transport.
pub(crate) struct SigningTransport {
    pub(crate) signer: BucketSigner,
    /// Retention given to every object written; shared with [`crate::S3Storage`].
    pub(crate) lock: Arc<RwLock<Option<ObjectLock>>>,
}

impl HttpTransport for SigningTransport {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        let (mut parts, body) = req.into_parts();
        if let Some(q) = parts.uri.query() {
            let normalized = normalize_query(q);
            if normalized != q {
                let path = parts.uri.path();
                let mut p = parts.uri.clone().into_parts();
                p.path_and_query = Some(format!("{path}?{normalized}").parse().map_err(|e| {
                    opendal::Error::new(opendal::ErrorKind::Unexpected, "bad query").set_source(e)
                })?);
                parts.uri = http::Uri::from_parts(p).map_err(|e| {
                    opendal::Error::new(opendal::ErrorKind::Unexpected, "bad uri").set_source(e)
                })?;
            }
        }
        let lock = *self.lock.read().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = lock
            && parts.method == http::Method::PUT
            && !parts.uri.query().is_some_and(|q| q.contains("partNumber="))
            && !parts.headers.contains_key("x-amz-copy-source")
        {
            let until = lock.retain_until_from_now();
            let h = &mut parts.headers;
            h.insert(
                "x-amz-object-lock-mode",
                http::HeaderValue::from_static(lock.mode.as_str()),
            );
            h.insert(
                "x-amz-object-lock-retain-until-date",
                http::HeaderValue::from_str(&until).map_err(|e| {
                    opendal::Error::new(opendal::ErrorKind::Unexpected, "bad date").set_source(e)
                })?,
            );
            // Object Lock buckets require an integrity header on PUT.
            if !h.keys().any(|k| k.as_str().starts_with("x-amz-checksum-"))
                && !h.contains_key("content-md5")
            {
                use base64::Engine;
                use md5::Digest;
                let md5 = md5::Md5::digest(body.to_bytes());
                let b64 = base64::engine::general_purpose::STANDARD.encode(md5);
                h.insert(
                    "content-md5",
                    http::HeaderValue::from_str(&b64).expect("base64 is a header value"),
                );
            }
        }
        let req = self
            .signer
            .sign(http::Request::from_parts(parts, body))
            .await?;
        HttpTransporter::default().fetch(req).await
    }
}

impl BucketSigner {
    /// A signer for `bucket` at `endpoint` (`None`: AWS, from `AWS_ENDPOINT_URL` or the region).
    pub(crate) fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        profile: Option<&str>,
        virtual_host: bool,
        disable_imds: bool,
    ) -> BucketSigner {
        let mut builder = DefaultCredentialProvider::builder();
        if let Some(p) = profile.filter(|p| !p.is_empty()) {
            builder = builder.with_profile(p);
        }
        if disable_imds {
            builder = builder.no_imds();
        }
        let ctx = Context::new()
            .with_file_read(TokioFileRead)
            .with_http_send(HttpTransporter::default())
            .with_env(OsEnv);
        let signer = Signer::new(ctx, builder.build(), RequestSigner::new("s3", region));
        let base = match endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|e| !e.is_empty())
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
        };
        let bucket_url = if virtual_host {
            base.replacen("://", &format!("://{bucket}."), 1)
        } else {
            format!("{base}/{bucket}")
        };
        BucketSigner { signer, bucket_url }
    }

    /// Sign and send `method` to `key` (relative to the bucket, not encoded; empty for the
    /// bucket itself) with the raw (already encoded) `query`, `headers` and `body`.
    pub(crate) async fn send(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> opendal::Result<BucketResponse> {
        let mut url = self.bucket_url.clone();
        if !key.is_empty() {
            url.push('/');
            url.push_str(&encode_path(key.trim_start_matches('/')));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header(http::header::CONTENT_LENGTH, body.len().to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Buffer::from(body)).map_err(|e| {
            opendal::Error::new(opendal::ErrorKind::Unexpected, "build request").set_source(e)
        })?;
        let req = self.sign(req).await?;
        let resp = HttpTransporter::default().send(req).await?;
        let (parts, body) = resp.into_parts();
        Ok(BucketResponse {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        })
    }

    /// Sign a request (replacing an earlier signature), ready for the transport.
    pub(crate) async fn sign(
        &self,
        req: http::Request<Buffer>,
    ) -> opendal::Result<http::Request<Buffer>> {
        let (mut parts, body) = req.into_parts();
        for h in [
            http::header::AUTHORIZATION.as_str(),
            "x-amz-date",
            "x-amz-security-token",
            "host",
        ] {
            parts.headers.remove(h);
        }
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            let temporary = e.is_retryable();
            opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                "cannot sign the request: no usable AWS credentials",
            )
            .with_temporary(temporary)
            .set_source(e)
        })?;
        // As OpenDAL does: let the HTTP client set Host itself.
        parts.headers.remove(http::header::HOST);
        Ok(http::Request::from_parts(parts, body))
    }
}
