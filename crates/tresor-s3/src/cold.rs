//! Cold storage classes on S3: `GLACIER` and `DEEP_ARCHIVE` objects are read only after a
//! `RestoreObject` (`POST ?restore`) has made a temporary copy; `HEAD`'s `x-amz-restore` says
//! where that stands.

use crate::{ObjectHead, S3Storage, what};
use tresor_storage::cold::{ColdClass, ColdState, Restore, ThawTier};
use tresor_storage::retry::Verdict;
use tresor_storage::{ErrorKind, Kind, Result, StorageError, check_name};

/// Parse an `x-amz-restore` header: `ongoing-request="true"` is a thaw under way,
/// `ongoing-request="false", expiry-date="..."` a finished one. `None` (no header) is no thaw.
///
/// # Errors
/// Any other value (a message quoting at most 80 bytes of it): a store answering garbage must
/// not be taken for a finished thaw.
pub fn parse_restore(value: Option<&str>) -> std::result::Result<Restore, String> {
    let Some(v) = value else {
        return Ok(Restore::None);
    };
    let first = v.split(',').next().unwrap_or("").trim();
    match first.replace(' ', "").as_str() {
        "ongoing-request=\"true\"" => Ok(Restore::Ongoing),
        "ongoing-request=\"false\"" if v.contains("expiry-date=") => Ok(Restore::Done),
        _ => {
            let shown: String = v.chars().take(80).collect();
            Err(format!("unreadable x-amz-restore header {shown:?}"))
        }
    }
}

/// The body of a `RestoreObject` request.
pub fn restore_body(tier: ThawTier, days: u32) -> String {
    format!(
        "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>{days}</Days>\
         <GlacierJobParameters><Tier>{}</Tier></GlacierJobParameters></RestoreRequest>",
        tier.as_s3()
    )
}

impl S3Storage {
    pub(crate) fn cold_state_of(&self, kind: Kind, name: &str) -> Result<Option<ColdState>> {
        let head: ObjectHead = self.head(kind, name)?;
        let Some(class) = head.storage_class.as_deref().and_then(ColdClass::from_s3) else {
            return Ok(None);
        };
        let restore = parse_restore(head.restore.as_deref())
            .map_err(|m| StorageError::new(ErrorKind::Other, "head", kind, name, m))?;
        let stored_at = head.last_modified.as_deref().and_then(|d| {
            let t = jiff::fmt::rfc2822::parse(d).ok()?.timestamp();
            std::time::SystemTime::try_from(t).ok()
        });
        Ok(Some(ColdState {
            class,
            restore,
            stored_at,
        }))
    }

    pub(crate) fn request_thaw_of(
        &self,
        kind: Kind,
        name: &str,
        tier: ThawTier,
        days: u32,
    ) -> Result<()> {
        check_name(kind, name)?;
        let key = self.key(kind, name);
        let body = restore_body(tier, days);
        let fail = |k, m: String| StorageError::new(k, "thaw", kind, name, m);
        self.retrier.run(
            "thaw",
            &what(kind, name),
            || {
                let r = self.bucket_request("POST", &key, "restore", &[], body.as_bytes())?;
                match r.status {
                    // 202 accepted, 200 already thawed (copy's expiry extended), 409 under way.
                    200 | 202 | 409 => Ok(()),
                    404 => Err(fail(ErrorKind::NotFound, "no such object".into())),
                    403 => Err(fail(ErrorKind::PermissionDenied, "access denied".into())),
                    s if s >= 500 || s == 429 => {
                        Err(fail(ErrorKind::Transient, format!("HTTP {s}")))
                    }
                    s => Err(fail(
                        ErrorKind::Other,
                        format!("HTTP {s}: {}", short(&r.text())),
                    )),
                }
            },
            |e| match e.kind {
                ErrorKind::Transient => Verdict::Backoff,
                _ => Verdict::Final,
            },
        )
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_headers() {
        assert_eq!(parse_restore(None), Ok(Restore::None));
        assert_eq!(
            parse_restore(Some("ongoing-request=\"true\"")),
            Ok(Restore::Ongoing)
        );
        let done = "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"";
        assert_eq!(parse_restore(Some(done)), Ok(Restore::Done));
        for bad in [
            "",
            "yes",
            "ongoing-request=\"false\"",
            "ongoing-request=maybe",
            "\u{7f}x",
        ] {
            let e = parse_restore(Some(bad)).unwrap_err();
            assert!(e.contains("unreadable x-amz-restore"), "{bad}: {e}");
        }
    }

    #[test]
    fn body_names_days_and_tier() {
        let b = restore_body(ThawTier::Bulk, 7);
        assert!(b.contains("<Days>7</Days>"), "{b}");
        assert!(b.contains("<Tier>Bulk</Tier>"), "{b}");
    }
}
