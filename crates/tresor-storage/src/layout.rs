//! The object layout, defined once: which folder each [`Kind`] lives in, what an object name is,
//! and where an object of a kind and name is stored (format §2). Every storage follows it — the
//! local directory ([`crate::local`]), memory, S3 (`tresor-s3`: keys below the prefix), `tresor
//! serve` (URL paths: `/{repo}/{folder}/{name}`) and its client — and `tresor s3-policy` turns it
//! into IAM resource patterns ([`key_pattern`]).
//!
//! * An object name is [`NAME_LEN`] lowercase hex digits: the BLAKE3 hash of the bytes.
//! * An object of kind `k` named `n` is stored at `{k.dir()}/{n}`, except packs, which are
//!   fanned out by the first two hex digits of their name: `data/{n[..2]}/{n}` (256 folders, so
//!   no folder grows to millions of entries).
//! * Nothing else is an object: a listing skips every entry that is not at the key its name
//!   gives (temporary files, stray folders, a pack in the wrong fan-out folder).

use crate::{ErrorKind, Kind, Result, StorageError};

/// Length of an object name, in bytes: 64 lowercase hex digits (BLAKE3-256).
pub const NAME_LEN: usize = 64;

/// Length of the fan-out folder name of packs, in hex digits.
pub const SHARD_LEN: usize = 2;

impl Kind {
    /// The folder objects of this kind live in: `config`, `keys`, `snapshots`, `index`, `data`
    /// (packs, fanned out, see [`object_key`]), `revocations`, `prune`, `markers`, `trust`, `drills`. Also
    /// the kind's URL path segment in `tresor serve`'s protocol.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Key => "keys",
            Kind::Snapshot => "snapshots",
            Kind::Index => "index",
            Kind::Pack => "data",
            Kind::Revocation => "revocations",
            Kind::PruneRecord => "prune",
            Kind::Marker => "markers",
            Kind::Trust => "trust",
            Kind::Drill => "drills",
        }
    }

    /// The kind whose folder is `dir` ([`Kind::dir`]), or `None` for any other string.
    pub fn from_dir(dir: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.dir() == dir)
    }

    /// Whether objects of this kind are fanned out into `{dir}/{first two hex digits}/`
    /// folders (packs only).
    pub fn is_sharded(self) -> bool {
        self == Kind::Pack
    }
}

/// Whether `name` is an object name: exactly [`NAME_LEN`] bytes of `0-9 a-f`.
pub fn is_object_name(name: &str) -> bool {
    name.len() == NAME_LEN && name.bytes().all(is_lower_hex)
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Check that `name` is an object name ([`is_object_name`]).
///
/// # Errors
/// [`ErrorKind::InvalidName`], naming the object.
pub fn check_name(kind: Kind, name: &str) -> Result<()> {
    if is_object_name(name) {
        Ok(())
    } else {
        Err(StorageError::new(
            ErrorKind::InvalidName,
            "check",
            kind,
            name,
            "object names are 64 lowercase hex digits",
        ))
    }
}

/// The fan-out folder of an object: the first two hex digits of its name for packs, `None` for
/// the other kinds. `name` must be an object name ([`check_name`]); for shorter strings this is
/// the string's first bytes (it never panics).
pub fn shard(kind: Kind, name: &str) -> Option<&str> {
    kind.is_sharded()
        .then(|| name.get(..SHARD_LEN).unwrap_or(name))
}

/// Whether `folder` is a fan-out folder name: two lowercase hex digits.
pub fn is_shard(folder: &str) -> bool {
    folder.len() == SHARD_LEN && folder.bytes().all(is_lower_hex)
}

/// Where an object is stored, relative to the repository root, with `/` separators:
/// `keys/{name}`, packs `data/{name[..2]}/{name}`. `name` must be an object name.
pub fn object_key(kind: Kind, name: &str) -> String {
    match shard(kind, name) {
        Some(s) => format!("{}/{s}/{name}", kind.dir()),
        None => format!("{}/{name}", kind.dir()),
    }
}

/// The object name stored at `rel`, a path relative to the kind's folder with `/` separators
/// (`{name}`, packs `{name[..2]}/{name}`), or `None` when nothing valid is stored there: not an
/// object name, a pack outside its own fan-out folder, deeper or shallower paths.
pub fn name_at(kind: Kind, rel: &str) -> Option<&str> {
    let name = if kind.is_sharded() {
        let (folder, name) = rel.split_once('/')?;
        if shard(kind, name) != Some(folder) {
            return None;
        }
        name
    } else {
        rel
    };
    is_object_name(name).then_some(name)
}

/// A glob over the keys of objects of `kind`, relative to the repository root, whose names
/// match `name_pattern` (e.g. `*`, or `"?".repeat(64)` for exactly one name): `keys/{pattern}`,
/// packs `data/??/{pattern}`. For IAM policies (`tresor s3-policy`).
pub fn key_pattern(kind: Kind, name_pattern: &str) -> String {
    if kind.is_sharded() {
        format!("{}/{}/{name_pattern}", kind.dir(), "?".repeat(SHARD_LEN))
    } else {
        format!("{}/{name_pattern}", kind.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn object_names_are_64_lowercase_hex_digits() {
        assert!(is_object_name(NAME));
        assert!(is_object_name(&"0".repeat(64)));
        for bad in [
            "",
            "ab",
            &NAME[..63],
            &format!("{NAME}0"),
            &NAME.to_uppercase(),
            &"g".repeat(64),
            &format!("../{}", &NAME[3..]),
            &format!("{}/", &NAME[..63]),
            &format!("{} ", &NAME[..63]),
        ] {
            assert!(!is_object_name(bad), "{bad:?}");
            let e = check_name(Kind::Index, bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidName);
        }
        check_name(Kind::Index, NAME).unwrap();
    }

    #[test]
    fn keys_of_every_kind() {
        let keys: Vec<String> = Kind::ALL.iter().map(|&k| object_key(k, NAME)).collect();
        assert_eq!(
            keys,
            [
                format!("config/{NAME}"),
                format!("keys/{NAME}"),
                format!("snapshots/{NAME}"),
                format!("index/{NAME}"),
                format!("data/ab/{NAME}"),
                format!("revocations/{NAME}"),
                format!("prune/{NAME}"),
                format!("markers/{NAME}"),
                format!("trust/{NAME}"),
                format!("drills/{NAME}"),
            ]
        );
        for k in Kind::ALL {
            assert_eq!(Kind::from_dir(k.dir()), Some(k));
            let rel = object_key(k, NAME);
            let rel = rel.strip_prefix(&format!("{}/", k.dir())).unwrap();
            assert_eq!(name_at(k, rel), Some(NAME), "{k}");
        }
        assert_eq!(Kind::from_dir("Data"), None);
        assert_eq!(Kind::from_dir("probe"), None);
        assert_eq!(Kind::from_dir(""), None);
    }

    #[test]
    fn only_what_is_at_its_own_key_is_an_object() {
        assert_eq!(name_at(Kind::Pack, NAME), None, "a pack outside a folder");
        assert_eq!(
            name_at(Kind::Pack, &format!("cd/{NAME}")),
            None,
            "wrong folder"
        );
        assert_eq!(
            name_at(Kind::Pack, &format!("ab/ab/{NAME}")),
            None,
            "too deep"
        );
        assert_eq!(
            name_at(Kind::Pack, &format!("ab/.tmp-{}", &NAME[..16])),
            None
        );
        assert_eq!(
            name_at(Kind::Index, &format!("ab/{NAME}")),
            None,
            "not sharded"
        );
        assert_eq!(name_at(Kind::Index, &format!(".tmp-{}", &NAME[..16])), None);
        assert_eq!(name_at(Kind::Index, &NAME.to_uppercase()), None);
        assert!(is_shard("00") && is_shard("ff") && is_shard("a9"));
        assert!(!is_shard("0") && !is_shard("FF") && !is_shard("abc") && !is_shard(".."));
        assert_eq!(shard(Kind::Pack, NAME), Some("ab"));
        assert_eq!(
            shard(Kind::Pack, "a"),
            Some("a"),
            "short strings do not panic"
        );
        assert_eq!(shard(Kind::Snapshot, NAME), None);
    }

    #[test]
    fn key_patterns_for_policies() {
        assert_eq!(key_pattern(Kind::Pack, "*"), "data/??/*");
        assert_eq!(key_pattern(Kind::Index, "*"), "index/*");
        assert_eq!(key_pattern(Kind::Key, "???"), "keys/???");
    }
}
