//! Trust records (format §4.3): the admin-signed, numbered statement of which keys are trusted,
//! which are revoked, and which config object is the repository's.
//!
//! A trust record is compact JSON in a signed envelope ([`crate::sign`], kind
//! [`SignedKind::Trust`]) made with the admin key. Every change of trust (a key added, removed,
//! imported, a signer accepted) writes a new record whose `seq` is one more than the highest seen.
//! Readers use the record with the highest `seq`; as the config's id is in it, the config is
//! authenticated by the admin key too.

use crate::ObjectId;
use crate::error::{FormatError, Result};
use crate::keyfile::KeyKind;
use crate::sign::{SignedKind, Signer, open_envelope};
use serde::{Deserialize, Serialize};

/// A trusted key, as the record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The key's Ed25519 signing public key (hex in JSON).
    #[serde(with = "crate::crypto::hex32")]
    pub signing_public: [u8; 32],
    /// Full or put-only.
    pub kind: KeyKind,
    /// The host the key is certified for.
    pub host: String,
    /// Creation time of the key, RFC 3339.
    pub created: String,
}

/// A revoked key, as the record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedKey {
    /// The revoked signing public key (hex in JSON).
    #[serde(with = "crate::crypto::hex32")]
    pub signing_public: [u8; 32],
    /// Its kind, when a key file told it; `null` for a signer accepted without a key file
    /// (its accepted objects count as a put-only key's).
    pub kind: Option<KeyKind>,
    /// The host it was certified for; `null` when unknown (a signer without a key file).
    pub host: Option<String>,
    /// The revocation object (format §4.2) that lists the objects of this key that stay valid.
    pub revocation: ObjectId,
}

/// A trust record (`trust/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// Record version: the format version ([`crate::FORMAT_VERSION`]).
    pub version: u32,
    /// Sequence number: 1 at `init`, one more than the highest seen for every change.
    pub seq: u64,
    /// Object id of the repository's config (format §5): any other config is refused.
    pub config: ObjectId,
    /// Trusted keys, sorted by signing public key, unique.
    pub keys: Vec<TrustedKey>,
    /// Revoked keys, sorted by signing public key, unique, none of them in `keys`.
    pub revoked: Vec<RevokedKey>,
}

impl TrustRecord {
    /// A record of sequence number `seq` for the config `config`, with no keys yet.
    pub fn new(seq: u64, config: ObjectId) -> Self {
        TrustRecord {
            version: crate::FORMAT_VERSION,
            seq,
            config,
            keys: Vec::new(),
            revoked: Vec::new(),
        }
    }

    /// Sort both lists by signing public key (the stored order).
    pub fn sort(&mut self) {
        self.keys.sort_by_key(|k| k.signing_public);
        self.revoked.sort_by_key(|k| k.signing_public);
    }

    /// Add (or replace) a trusted key; it leaves the revoked list if it was there.
    pub fn trust(&mut self, key: TrustedKey) {
        self.keys.retain(|k| k.signing_public != key.signing_public);
        self.revoked
            .retain(|k| k.signing_public != key.signing_public);
        self.keys.push(key);
        self.sort();
    }

    /// Move a key to the revoked list (or add a revoked signer that was never a trusted key).
    pub fn revoke(&mut self, key: RevokedKey) {
        self.keys.retain(|k| k.signing_public != key.signing_public);
        self.revoked
            .retain(|k| k.signing_public != key.signing_public);
        self.revoked.push(key);
        self.sort();
    }

    /// The stored bytes: compact JSON (lists sorted) in an envelope signed by the admin key.
    pub fn to_object(&self, admin: &Signer) -> Vec<u8> {
        let mut r = self.clone();
        r.sort();
        let body = serde_json::to_vec(&r).expect("trust record serializes");
        admin.envelope(SignedKind::Trust, &body)
    }

    /// Open stored bytes: the envelope must be signed by `admin_public`, the version supported,
    /// the record well-formed ([`TrustRecord::validate`]).
    ///
    /// # Errors
    /// [`FormatError::Authentication`] for another signer or a bad signature,
    /// [`FormatError::UnsupportedVersion`], [`FormatError::Malformed`].
    pub fn open(admin_public: &[u8; 32], stored: &[u8]) -> Result<Self> {
        let (signer, body) = open_envelope(SignedKind::Trust, stored)?;
        if &signer != admin_public {
            return Err(FormatError::Authentication {
                what: "trust record (not signed by the admin key)",
            });
        }
        crate::error::check_json_version(body, "trust record", crate::FORMAT_VERSION)?;
        let r: TrustRecord =
            serde_json::from_slice(body).map_err(|e| FormatError::malformed("trust record", e))?;
        r.validate()?;
        Ok(r)
    }

    /// Check the rules of format §4.3: `seq` ≥ 1, both lists strictly increasing by signing
    /// public key, no key in both.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] naming the rule broken.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(FormatError::malformed("trust record", m));
        if self.seq == 0 {
            return bad("seq 0 (the first record is 1)".into());
        }
        let increasing = |v: &mut dyn Iterator<Item = [u8; 32]>| {
            let keys: Vec<[u8; 32]> = v.collect();
            keys.windows(2).all(|w| w[0] < w[1])
        };
        if !increasing(&mut self.keys.iter().map(|k| k.signing_public)) {
            return bad("keys are not sorted and unique".into());
        }
        if !increasing(&mut self.revoked.iter().map(|k| k.signing_public)) {
            return bad("revoked keys are not sorted and unique".into());
        }
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| self.is_revoked(&k.signing_public))
        {
            return bad(format!(
                "key {} is both trusted and revoked",
                hex::encode(&k.signing_public[..4])
            ));
        }
        Ok(())
    }

    /// The trusted key with this signing public key.
    pub fn key(&self, signing_public: &[u8; 32]) -> Option<&TrustedKey> {
        self.keys
            .iter()
            .find(|k| &k.signing_public == signing_public)
    }

    /// Whether the record lists this signing public key as revoked.
    pub fn is_revoked(&self, signing_public: &[u8; 32]) -> bool {
        self.revoked
            .iter()
            .any(|k| &k.signing_public == signing_public)
    }

    /// Two different records of the same `seq` (two admins changed trust at once, or a forger
    /// with the admin key), merged conservatively: a key stays trusted only when both list it
    /// alike and neither revokes it; a key revoked by either stays revoked (`self`'s entry
    /// first). `seq` and `config` are `self`'s: readers check that the configs agree.
    pub fn merge_conservatively(&self, other: &TrustRecord) -> TrustRecord {
        let mut out = TrustRecord::new(self.seq, self.config);
        out.version = self.version;
        for r in self.revoked.iter().chain(&other.revoked) {
            if !out.is_revoked(&r.signing_public) {
                out.revoked.push(r.clone());
            }
        }
        out.keys = self
            .keys
            .iter()
            .filter(|k| other.key(&k.signing_public) == Some(*k))
            .filter(|k| !out.is_revoked(&k.signing_public))
            .cloned()
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8, kind: KeyKind, host: &str) -> TrustedKey {
        TrustedKey {
            signing_public: [b; 32],
            kind,
            host: host.into(),
            created: "2026-01-02T03:04:05Z".into(),
        }
    }

    fn revoked(b: u8, rev: u8) -> RevokedKey {
        RevokedKey {
            signing_public: [b; 32],
            kind: Some(KeyKind::PutOnly),
            host: Some("gone".into()),
            revocation: ObjectId([rev; 32]),
        }
    }

    fn admin() -> Signer {
        Signer::from_secret(&[9; 32])
    }

    fn sample() -> TrustRecord {
        let mut r = TrustRecord::new(3, ObjectId([7; 32]));
        r.trust(key(2, KeyKind::PutOnly, "vps1"));
        r.trust(key(1, KeyKind::Full, "admin"));
        r.revoke(revoked(5, 0xee));
        r
    }

    #[test]
    fn round_trips_as_exact_compact_json_signed_by_the_admin() {
        let r = sample();
        let stored = r.to_object(&admin());
        let (signer, body) = open_envelope(SignedKind::Trust, &stored).unwrap();
        assert_eq!(signer, admin().public());
        let one = |b: u8| hex::encode([b; 32]);
        let expected = format!(
            concat!(
                r#"{{"version":{v},"seq":3,"config":"{c}","#,
                r#""keys":[{{"signing_public":"{k1}","kind":"full","host":"admin","created":"2026-01-02T03:04:05Z"}},"#,
                r#"{{"signing_public":"{k2}","kind":"put-only","host":"vps1","created":"2026-01-02T03:04:05Z"}}],"#,
                r#""revoked":[{{"signing_public":"{k5}","kind":"put-only","host":"gone","revocation":"{rv}"}}]}}"#
            ),
            v = crate::FORMAT_VERSION,
            c = one(7),
            k1 = one(1),
            k2 = one(2),
            k5 = one(5),
            rv = one(0xee),
        );
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), expected);
        let back = TrustRecord::open(&admin().public(), &stored).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.keys[0].signing_public, [1; 32]);
        assert_eq!(back.keys[1].host, "vps1");
        assert!(back.is_revoked(&[5; 32]));
        assert!(!back.is_revoked(&[1; 32]));
    }

    #[test]
    fn another_signer_a_flipped_byte_or_another_kind_is_refused() {
        let r = sample();
        let stored = r.to_object(&admin());
        let other = Signer::from_secret(&[8; 32]);
        let e = TrustRecord::open(&admin().public(), &r.to_object(&other)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "authentication failed (trust record (not signed by the admin key)): data is corrupt or was sealed to another key"
        );
        for i in [0, 4, 40, stored.len() / 2, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[i] ^= 1;
            assert!(
                TrustRecord::open(&admin().public(), &bad).is_err(),
                "byte {i}"
            );
        }
        let body = serde_json::to_vec(&r).unwrap();
        let as_revocation = admin().envelope(SignedKind::Revocation, &body);
        assert!(TrustRecord::open(&admin().public(), &as_revocation).is_err());
        assert!(TrustRecord::open(&admin().public(), b"").is_err());
        assert!(TrustRecord::open(&admin().public(), &[0xff; 300]).is_err());
    }

    #[test]
    fn malformed_records_are_refused_by_rule() {
        let open = |r: &TrustRecord| {
            let body = serde_json::to_vec(r).unwrap();
            TrustRecord::open(
                &admin().public(),
                &admin().envelope(SignedKind::Trust, &body),
            )
            .map_err(|e| e.to_string())
        };
        let mut unsorted = sample();
        unsorted.keys.reverse();
        assert_eq!(
            open(&unsorted).unwrap_err(),
            "malformed trust record: keys are not sorted and unique"
        );
        let mut dup = sample();
        dup.revoked.push(revoked(5, 1));
        assert_eq!(
            open(&dup).unwrap_err(),
            "malformed trust record: revoked keys are not sorted and unique"
        );
        let mut both = sample();
        both.revoked = vec![revoked(2, 1)];
        assert_eq!(
            open(&both).unwrap_err(),
            "malformed trust record: key 02020202 is both trusted and revoked"
        );
        let mut zero = sample();
        zero.seq = 0;
        assert_eq!(
            open(&zero).unwrap_err(),
            "malformed trust record: seq 0 (the first record is 1)"
        );
        let mut newer = sample();
        newer.version = 99;
        assert_eq!(
            open(&newer).unwrap_err(),
            format!(
                "unsupported trust record version 99 (this tresor reads version {})",
                crate::FORMAT_VERSION
            )
        );
        let junk = admin().envelope(SignedKind::Trust, br#"{"version":2,"seq":"x"}"#);
        assert!(
            TrustRecord::open(&admin().public(), &junk)
                .unwrap_err()
                .to_string()
                .starts_with("malformed trust record"),
        );
    }

    #[test]
    fn trusting_and_revoking_move_keys_between_the_lists() {
        let mut r = sample();
        r.revoke(revoked(2, 0x33));
        assert_eq!(r.keys.len(), 1);
        assert_eq!(r.revoked.len(), 2);
        assert_eq!(r.revoked[0].signing_public, [2; 32]);
        assert_eq!(r.revoked[0].revocation, ObjectId([0x33; 32]));
        r.validate().unwrap();
        r.trust(key(5, KeyKind::Full, "back"));
        assert_eq!(r.key(&[5; 32]).unwrap().host, "back");
        assert!(!r.is_revoked(&[5; 32]));
        r.validate().unwrap();
    }

    #[test]
    fn same_seq_records_merge_to_keys_in_both_and_revocations_of_either() {
        let a = sample();
        let mut b = sample();
        b.trust(key(3, KeyKind::Full, "only-in-b"));
        b.revoke(revoked(1, 0x44));
        b.trust(key(2, KeyKind::Full, "vps1")); // listed differently: not trusted
        let m = a.merge_conservatively(&b);
        assert_eq!(m.seq, 3);
        assert_eq!(m.config, ObjectId([7; 32]));
        assert!(m.keys.is_empty(), "{:?}", m.keys);
        let revoked: Vec<[u8; 32]> = m.revoked.iter().map(|k| k.signing_public).collect();
        assert_eq!(revoked, [[1; 32], [5; 32]]);
        assert_eq!(m.revoked[0].revocation, ObjectId([0x44; 32]));
        m.validate().unwrap();
        // The same record merged with itself is itself.
        assert_eq!(a.merge_conservatively(&a), a);
        assert_eq!(b.merge_conservatively(&a).keys, m.keys);
    }
}
