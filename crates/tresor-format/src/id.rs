//! Identifiers (format §2).
//!
//! * [`ObjectId`] names a stored object: the plain (unkeyed) BLAKE3-256 hash of the object's stored
//!   bytes, written as 64 lowercase hex digits. A storage server can verify `name == hash(bytes)`
//!   without any key.
//! * [`BlobId`] names a blob: keyed BLAKE3-256 of the blob's plaintext, with the repository's
//!   32-byte id key (`blake3::keyed_hash`). Keyed, so that ids do not reveal plaintext hashes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The id as 64 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex digits, as shown in listings.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = crate::FormatError;
            fn from_str(s: &str) -> crate::Result<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|e| crate::FormatError::malformed("id", format!("{s:?}: {e}")))?;
                Ok($name(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    Ok($name(<[u8; 32]>::deserialize(d)?))
                }
            }
        }
    };
}

id_type!(
    ObjectId,
    "Name of a stored object: plain BLAKE3-256 of its stored bytes."
);
id_type!(
    BlobId,
    "Id of a blob: keyed BLAKE3-256 of its plaintext under the repository id key."
);

impl ObjectId {
    /// The name an object with these stored bytes must have.
    pub fn of(stored: &[u8]) -> Self {
        ObjectId(*blake3::hash(stored).as_bytes())
    }
}

impl BlobId {
    /// The id of a blob with this plaintext under `id_key`.
    pub fn of(id_key: &[u8; 32], plaintext: &[u8]) -> Self {
        BlobId(*blake3::keyed_hash(id_key, plaintext).as_bytes())
    }
}
