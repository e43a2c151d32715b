//! The wire protocol shared by the server and [`crate::client::RemoteStorage`]
//! (`docs/protocol.md`): paths, ranges, error bodies and the mapping between HTTP statuses and
//! [`ErrorKind`]s.
//!
//! Paths are deliberately strict: only the bytes `A-Z a-z 0-9 . _ - /` are accepted, nothing is
//! percent-decoded, and every segment is checked against a fixed grammar, so a path can never
//! name anything outside the repository folders (no `..`, no encoded slashes).

use tresor_storage::{ErrorKind, Kind, layout};

/// Protocol version, reported by `GET /{repo}/` and documented in `docs/protocol.md`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The repository name under which `tresor serve --stdio` serves its one repository.
pub const STDIO_REPOSITORY: &str = "repo";

/// Longest repository or client name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The request header of a `PUT` whose object must stay readable without a thaw (a tree pack):
/// `Tresor-Hot: 1` makes the server write it with [`tresor_storage::Storage::write_vec_hot`], so
/// an S3 backend gives it the metadata class (`docs/protocol.md` §2). Any other value is a `400`.
pub const HOT_HEADER: &str = "tresor-hot";

/// Whether a `PUT` asks for the hot class: `None` (no [`HOT_HEADER`]) is `false`, `"1"` is
/// `true`.
///
/// # Errors
/// Any other value (a message for a `400 Bad Request`).
pub fn parse_hot(value: Option<&[u8]>) -> Result<bool, &'static str> {
    match value {
        None => Ok(false),
        Some(b"1") => Ok(true),
        Some(_) => Err("Tresor-Hot must be 1"),
    }
}

/// The URL path segment of an object kind: its folder name ([`Kind::dir`], the storage
/// layout), e.g. `data` for packs, `keys` for key files.
pub fn kind_segment(kind: Kind) -> &'static str {
    kind.dir()
}

/// The object kind of a URL path segment, or `None` for anything not in the fixed list
/// `config keys snapshots index data revocations prune markers trust` ([`Kind::from_dir`]).
pub fn kind_from_segment(segment: &str) -> Option<Kind> {
    Kind::from_dir(segment)
}

/// Whether `name` is a valid repository or client name: 1 to [`MAX_NAME_LEN`] bytes of
/// `A-Z a-z 0-9 . _ -`, starting with a letter or digit (so never `.` or `..`).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/{repo}/`: the repository itself (`GET`: who am I, which role).
    Repository(&'a str),
    /// `/{repo}/{kind}/`: the list of objects of one kind.
    List(&'a str, Kind),
    /// `/{repo}/{kind}/{name}`: one object.
    Object(&'a str, Kind, &'a str),
}

impl Target<'_> {
    /// The repository named by the path.
    pub fn repository(&self) -> &str {
        match *self {
            Target::Repository(r) | Target::List(r, _) | Target::Object(r, _, _) => r,
        }
    }

    /// The object kind, if the path names one.
    pub fn kind(&self) -> Option<Kind> {
        match *self {
            Target::Repository(_) => None,
            Target::List(_, k) | Target::Object(_, k, _) => Some(k),
        }
    }
}

/// Parse a request path (without query) into a [`Target`].
///
/// # Errors
/// A message for a `400 Bad Request` when the path has bytes outside `A-Z a-z 0-9 . _ - /`
/// (percent-encoding included), a bad repository name, an unknown kind, an object name that is
/// not 64 lowercase hex digits, or the wrong number of segments.
pub fn parse_path(path: &str) -> Result<Target<'_>, &'static str> {
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err("path has bytes outside [A-Za-z0-9._-/] (percent-encoding is not accepted)");
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("path must start with /");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let repo = segments[0];
    if !valid_name(repo) {
        return Err("bad repository name");
    }
    let kind = |s: &str| kind_from_segment(s).ok_or("unknown object kind");
    match segments.as_slice() {
        [_] | [_, ""] => Ok(Target::Repository(repo)),
        [_, k, ""] => Ok(Target::List(repo, kind(k)?)),
        [_, k, name] => {
            let kind = kind(k)?;
            if layout::is_object_name(name) {
                Ok(Target::Object(repo, kind, name))
            } else {
                Err("object names are 64 lowercase hex digits")
            }
        }
        _ => Err("path has too many segments"),
    }
}

/// The path of a target, as the client sends it (no encoding needed: every segment is plain).
pub fn path_of(repo: &str, kind: Option<Kind>, name: Option<&str>) -> String {
    match (kind, name) {
        (None, _) => format!("/{repo}/"),
        (Some(k), None) => format!("/{repo}/{}/", kind_segment(k)),
        (Some(k), Some(n)) => format!("/{repo}/{}/{n}", kind_segment(k)),
    }
}

/// A parsed `Range` header: the first byte and, if given, the last byte (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset of the last byte (inclusive); `None`: to the end of the object.
    pub end: Option<u64>,
}

/// Parse `bytes=START-END` or `bytes=START-` (one range; suffix ranges and lists are not part of
/// the protocol).
///
/// # Errors
/// A message for a `400 Bad Request`.
pub fn parse_range(value: &str) -> Result<ByteRange, &'static str> {
    let bad = "Range must be bytes=START-END or bytes=START-";
    let spec = value.trim().strip_prefix("bytes=").ok_or(bad)?;
    let (a, b) = spec.split_once('-').ok_or(bad)?;
    let num = |s: &str| -> Result<u64, &'static str> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
            Err(bad)
        } else {
            s.parse().map_err(|_| bad)
        }
    };
    let start = num(a)?;
    let end = if b.is_empty() { None } else { Some(num(b)?) };
    if end.is_some_and(|e| e < start) {
        return Err("Range end before start");
    }
    Ok(ByteRange { start, end })
}

/// The JSON body of every error response: `{"error": "message"}`.
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::json!({ "error": message })
        .to_string()
        .into_bytes()
}

/// The message of an error body, or the body itself as text when it is not one.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// The HTTP status the server answers for a storage error of this kind.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::AlreadyExists => 409,
        ErrorKind::PermissionDenied => 403,
        ErrorKind::InvalidName => 400,
        ErrorKind::ShortRead => 416,
        ErrorKind::NoSpace => 507,
        ErrorKind::Transient => 503,
        ErrorKind::Other => 500,
    }
}

/// The storage error kind a client reports for an error status: 404 → `NotFound`, 409 →
/// `AlreadyExists`, 401/403 → `PermissionDenied`, 416 → `ShortRead`, 507 → `NoSpace`,
/// 408/429/502/503/504 → `Transient`, anything else → `Other`.
pub fn kind_of(status: u16) -> ErrorKind {
    match status {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::AlreadyExists,
        401 | 403 => ErrorKind::PermissionDenied,
        416 => ErrorKind::ShortRead,
        507 => ErrorKind::NoSpace,
        408 | 429 | 502 | 503 | 504 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn hot_header_values() {
        assert_eq!(parse_hot(None), Ok(false));
        assert_eq!(parse_hot(Some(b"1")), Ok(true));
        for bad in [&b""[..], b"0", b"true", b"1 ", b"11"] {
            assert_eq!(parse_hot(Some(bad)), Err("Tresor-Hot must be 1"), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/main/"), Ok(Target::Repository("main")));
        assert_eq!(parse_path("/main"), Ok(Target::Repository("main")));
        assert_eq!(
            parse_path("/main/data/"),
            Ok(Target::List("main", Kind::Pack))
        );
        assert_eq!(
            parse_path(&format!("/main/keys/{N}")),
            Ok(Target::Object("main", Kind::Key, N))
        );
        for bad in [
            "",
            "/",
            "//",
            "/../data/",
            "/main/../config/",
            "/main/%2e%2e%2fconfig/",
            "/main/data%2f",
            "/main/tmp/",
            "/main/data/x",
            &format!("/main/data/{}", N.to_uppercase()),
            &format!("/main/data/{N}/"),
            &format!("/main/data/00/{N}"),
            "/.hidden/",
            "/main/ data/",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Ok(ByteRange {
                start: 0,
                end: Some(9)
            })
        );
        assert_eq!(
            parse_range("bytes=5-"),
            Ok(ByteRange {
                start: 5,
                end: None
            })
        );
        for bad in [
            "bytes=-5",
            "bytes=9-0",
            "bytes=1-2,4-5",
            "items=0-1",
            "bytes=a-b",
            "",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for k in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied,
            ErrorKind::ShortRead,
            ErrorKind::NoSpace,
            ErrorKind::Transient,
            ErrorKind::Other,
        ] {
            assert_eq!(kind_of(status_of(k)), k);
        }
    }
}
