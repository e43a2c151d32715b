//! Extending the Object Lock retention of existing objects (`PutObjectRetention`), for
//! `tresor protect` and lock extension after a backup (docs/format.md §16).

use crate::{LockMode, S3Storage, option_error};
use std::time::SystemTime;
use tresor_storage::retry::Verdict;
use tresor_storage::{ErrorKind, Kind, Result, StorageError, check_name};

/// `2026-12-06T20:16:09Z`: the form S3 takes for retain-until dates (whole seconds, rounded up).
///
/// # Errors
/// A time S3 cannot express ([`ErrorKind::Other`]).
pub fn s3_date(t: SystemTime) -> Result<String> {
    let ts = jiff::Timestamp::try_from(t)
        .map_err(|e| option_error(format!("retain-until date out of range: {e}")))?;
    let up = if ts.subsec_nanosecond() > 0 {
        ts + jiff::SignedDuration::from_secs(1)
    } else {
        ts
    };
    Ok(up.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The `PutObjectRetention` body.
fn retention_xml(mode: LockMode, until: &str) -> String {
    format!(
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
         <RetainUntilDate>{until}</RetainUntilDate></Retention>",
        mode.as_str()
    )
}

impl S3Storage {
    /// Set the retention of object `name` of `kind` to `mode` until `until`
    /// (`PutObjectRetention`; S3 refuses to shorten a retention or to turn a compliance lock
    /// into a governance one). Callers read the current retention first ([`S3Storage::head`])
    /// and only ever extend it; `x-amz-bypass-governance-retention` is never sent.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`] (the credentials lack
    /// `s3:PutObjectRetention`, the bucket has no Object Lock, or the date would shorten the
    /// lock), transport errors.
    pub fn put_retention(
        &self,
        kind: Kind,
        name: &str,
        mode: LockMode,
        until: SystemTime,
    ) -> Result<()> {
        check_name(kind, name)?;
        let body = retention_xml(mode, &s3_date(until)?);
        self.retrier.run(
            "retention",
            &format!("{kind} {name}"),
            || self.put_retention_once(kind, name, body.as_bytes()),
            |e| match e.kind {
                ErrorKind::Transient => Verdict::Backoff,
                _ => Verdict::Final,
            },
        )
    }

    fn put_retention_once(&self, kind: Kind, name: &str, body: &[u8]) -> Result<()> {
        use base64::Engine;
        use md5::Digest;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        let key = self.key(kind, name);
        let r = self.bucket_request(
            "PUT",
            &key,
            "retention",
            &[("content-md5", &md5), ("content-type", "application/xml")],
            body,
        )?;
        let fail = |k, what: &str| {
            Err(StorageError::new(
                k,
                "retention",
                kind,
                name,
                format!("{what}: HTTP {} {}", r.status, r.text().trim()),
            ))
        };
        match r.status {
            200..=299 => Ok(()),
            404 => fail(ErrorKind::NotFound, "no such object"),
            403 => fail(ErrorKind::PermissionDenied, "PutObjectRetention refused"),
            s if s >= 500 || s == 429 => fail(ErrorKind::Transient, "server error"),
            _ => fail(ErrorKind::Other, "PutObjectRetention failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_up_to_the_second_and_the_body_names_mode_and_date() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_001);
        assert_eq!(s3_date(t).unwrap(), "2023-11-14T22:13:21Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(s3_date(t).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(
            retention_xml(LockMode::Compliance, "2023-11-14T22:13:20Z"),
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode>\
             <RetainUntilDate>2023-11-14T22:13:20Z</RetainUntilDate></Retention>"
        );
    }
}
