//! ListObjectsV2 by hand (signed, paginated), for what OpenDAL's listing drops: each object's
//! `StorageClass` ([`tresor_storage::Storage::list_classes`], priced by `tresor cost`).

use crate::{S3Storage, signed};
use serde::Deserialize;
use tresor_storage::retry::Verdict;
use tresor_storage::{Classed, ErrorKind, Kind, Result, StorageError, layout};

/// Most pages one listing reads (1 000 keys each: ten million objects); a store that keeps
/// answering "truncated" past that is an error, not an endless loop.
const MAX_PAGES: usize = 10_000;

/// One page of a ListObjectsV2 answer (the fields used).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPage {
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// The token of the next page.
    pub next_continuation_token: Option<String>,
    /// The objects of this page.
    pub contents: Vec<Listed>,
}

/// One `<Contents>` entry.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Listed {
    /// The full key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// `StorageClass`; AWS always sends it, a store that leaves it out means `STANDARD`.
    pub storage_class: Option<String>,
}

/// Parse one ListObjectsV2 page.
///
/// # Errors
/// A message quoting the parser's complaint: not XML, or fields of the wrong type.
pub fn parse_page(xml: &str) -> std::result::Result<ListPage, String> {
    quick_xml::de::from_str(xml).map_err(|e| format!("unreadable ListObjectsV2 answer: {e}"))
}

/// A query value percent-encoded for the raw query of a signed request.
fn query_value(v: &str) -> String {
    signed::encode_path(v).replace('/', "%2F")
}

impl S3Storage {
    /// Every object of `kind` at its own key ([`layout::name_at`]) with its size and class.
    pub(crate) fn list_classes_of(&self, kind: Kind) -> Result<Vec<Classed>> {
        let dir = self.full_key(&format!("{}/", kind.dir()));
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(kind, &dir, token.as_deref())?;
            for o in page.contents {
                let Some(rest) = o.key.strip_prefix(&dir) else {
                    continue;
                };
                if let Some(name) = layout::name_at(kind, rest) {
                    let class = o.storage_class.unwrap_or_else(|| "STANDARD".into());
                    out.push(Classed {
                        name: name.to_string(),
                        size: o.size,
                        class: class.to_ascii_uppercase(),
                    });
                }
            }
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(t)) if !t.is_empty() => token = Some(t),
                (true, _) => return Err(self.list_error(kind, "truncated page without a token")),
                (false, _) => return Ok(out),
            }
        }
        Err(self.list_error(kind, &format!("more than {MAX_PAGES} pages")))
    }

    /// One page below `prefix`, after `token`.
    fn list_page(&self, kind: Kind, prefix: &str, token: Option<&str>) -> Result<ListPage> {
        let mut query = format!("list-type=2&prefix={}", query_value(prefix));
        if let Some(t) = token {
            query.push_str(&format!("&continuation-token={}", query_value(t)));
        }
        let text = self.retrier.run(
            "list",
            prefix,
            || {
                let r = self.bucket_request("GET", "", &query, &[], &[])?;
                let k = match r.status {
                    200..=299 => return Ok(r.text()),
                    403 => ErrorKind::PermissionDenied,
                    s if s >= 500 || s == 429 => ErrorKind::Transient,
                    _ => ErrorKind::Other,
                };
                let msg = format!("HTTP {}", r.status);
                Err(StorageError::new(k, "list", kind, &self.key(kind, ""), msg))
            },
            |e| match e.kind {
                ErrorKind::Transient => Verdict::Backoff,
                _ => Verdict::Final,
            },
        )?;
        parse_page(&text).map_err(|m| self.list_error(kind, &m))
    }

    fn list_error(&self, kind: Kind, message: &str) -> StorageError {
        StorageError::new(ErrorKind::Other, "list", kind, &self.key(kind, ""), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Prefix>p/data/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
<IsTruncated>true</IsTruncated><NextContinuationToken>1/a+b=</NextContinuationToken>
<Contents><Key>p/data/ab/x</Key><LastModified>2026-12-07T00:00:00.000Z</LastModified>
<ETag>&quot;e&quot;</ETag><Size>1234</Size><StorageClass>DEEP_ARCHIVE</StorageClass></Contents>
<Contents><Key>p/data/cd/y</Key><Size>5</Size></Contents></ListBucketResult>"#;
        let p = parse_page(xml).unwrap();
        assert!(p.is_truncated);
        assert_eq!(p.next_continuation_token.as_deref(), Some("1/a+b="));
        assert_eq!(
            p.contents,
            [
                Listed {
                    key: "p/data/ab/x".into(),
                    size: 1234,
                    storage_class: Some("DEEP_ARCHIVE".into()),
                },
                Listed {
                    key: "p/data/cd/y".into(),
                    size: 5,
                    storage_class: None,
                },
            ]
        );
        let empty =
            parse_page("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert_eq!(empty.unwrap(), ListPage::default());
        assert_eq!(query_value("1/a+b="), "1%2Fa%2Bb%3D");
        for bad in [
            "",
            "<x",
            "<ListBucketResult><Contents><Size>big</Size></Contents>",
        ] {
            let e = parse_page(bad);
            assert!(e.is_err(), "{bad}: {e:?}");
        }
    }
}
