//! Cryptography (format §3). Composed only from reviewed constructions:
//!
//! * **Sealing** of whole objects (snapshots, index objects, pack headers, markers, prune
//!   records) uses HPKE (RFC 9180) in base mode with the suite DHKEM(X25519, HKDF-SHA256) /
//!   HKDF-SHA256 / ChaCha20-Poly1305, from the `hpke` crate. Anyone holding the repository public
//!   key can seal; only the secret key opens. The HPKE `info` string binds the object kind
//!   (`"tresor/v2/" + kind`). The AEAD associated data is the object's 5-byte plaintext header,
//!   followed, for objects that travel inside a signed envelope ([`SealedKind::in_envelope`]),
//!   by the envelope signer's 32-byte public key: such a ciphertext opens only under the
//!   signature of the key that sealed it, so nobody can re-sign it as their own.
//! * **Blobs** inside a pack are encrypted with XChaCha20-Poly1305 (`chacha20poly1305` crate)
//!   under a fresh random 32-byte *data key* per pack, with associated data
//!   `blob type byte || blob id`. Blob nonces are a random 16-byte prefix drawn once per pack
//!   followed by the blob's position in the pack (u64 LE, [`crate::pack::PackBuilder`]): unique
//!   because every pack has its own fresh data key. Key files and dedup lists use random
//!   192-bit nonces ([`DataKey::encrypt`]). The data key travels sealed (HPKE) in the pack
//!   header and in index objects.
//!
//! Wire form of a sealed object: `magic "TRS2" (4) || kind (1) || encapsulated key (32) ||
//! ciphertext || tag (16)`.

use crate::error::{FormatError, Result, random_fill};
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Magic bytes that start every sealed object.
pub const SEALED_MAGIC: &[u8; 4] = b"TRS2";
/// Bytes added by sealing: 5 header + 32 encapsulated key + 16 tag.
pub const SEALED_OVERHEAD: usize = 5 + 32 + 16;
/// Bytes added to a blob by encryption: 24 nonce + 16 tag.
pub const BLOB_CRYPTO_OVERHEAD: usize = 24 + 16;

/// Kinds of sealed objects; the byte is part of the header, the label part of the HPKE `info`.
/// Prune records (format §16) are sealed as [`SealedKind::Index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SealedKind {
    /// A snapshot (§11).
    Snapshot = 1,
    /// An index object (§9).
    Index = 2,
    /// A pack header (§8).
    PackHeader = 3,
    /// A backup start marker (§16.1).
    Marker = 4,
    /// A restore drill record (§18).
    Drill = 5,
}

impl SealedKind {
    fn label(self) -> &'static str {
        match self {
            SealedKind::Snapshot => "snapshot",
            SealedKind::Index => "index",
            SealedKind::PackHeader => "pack header",
            SealedKind::Marker => "marker",
            SealedKind::Drill => "drill",
        }
    }
    fn info(self) -> Vec<u8> {
        let mut v = b"tresor/v2/".to_vec();
        v.extend_from_slice(self.label().as_bytes());
        v
    }

    /// Whether objects of this kind are stored inside a signed envelope ([`crate::sign`]) and
    /// so bind the signer's public key in their associated data: snapshots, index objects (and
    /// prune records), markers. Pack headers are not signed.
    pub fn in_envelope(self) -> bool {
        !matches!(self, SealedKind::PackHeader)
    }

    /// AEAD associated data (format §3): the 5-byte `header`, then the signer's public key for
    /// kinds inside an envelope.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] when `signer` is given for a kind outside an envelope or
    /// missing for one inside (a programming error, never a property of stored bytes).
    fn aad(self, header: &[u8], signer: Option<&[u8; 32]>) -> Result<Vec<u8>> {
        match (self.in_envelope(), signer) {
            (true, Some(pk)) => Ok([header, pk.as_slice()].concat()),
            (false, None) => Ok(header.to_vec()),
            (true, None) => Err(FormatError::malformed(
                self.label(),
                "sealed inside a signed envelope but no signer given",
            )),
            (false, Some(_)) => Err(FormatError::malformed(
                self.label(),
                "a signer given for an object outside a signed envelope",
            )),
        }
    }
}

/// The repository's key material (format §3.1), as held in a key file.
///
/// A *full* key has `secret_key`; a *put-only* key does not and can only write.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    /// X25519 secret key (32 bytes), absent in put-only keys.
    #[serde(with = "opt_hex32", default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<[u8; 32]>,
    /// X25519 public key (32 bytes): everything is sealed to it.
    #[serde(with = "hex32")]
    pub public_key: [u8; 32],
    /// BLAKE3 key for blob ids (32 bytes); writers need it to deduplicate.
    #[serde(with = "hex32")]
    pub id_key: [u8; 32],
    /// 256-bit key of the chunker's gear table (see [`crate::chunker::gear_table`]); held by
    /// every key, put-only included.
    #[serde(with = "hex32")]
    pub chunker_key: [u8; 32],
    /// Ed25519 public key of the repository admin: certifies keys, signs revocations.
    #[serde(with = "hex32")]
    pub admin_public: [u8; 32],
    /// Ed25519 secret of the repository admin (32 bytes), full keys only.
    #[serde(with = "opt_hex32", default, skip_serializing_if = "Option::is_none")]
    pub admin_secret: Option<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.secret_key.is_some() {
            "MasterKey(full)"
        } else {
            "MasterKey(put-only)"
        })
    }
}

impl MasterKey {
    /// Generate fresh key material for a new repository.
    ///
    /// # Errors
    /// [`FormatError::Random`] when the OS has no randomness.
    pub fn generate() -> Result<Self> {
        let mut ikm = crate::error::random_32()?;
        let (sk, pk) = Kem::derive_keypair(&ikm);
        ikm.zeroize();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&sk.to_bytes());
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        let admin = crate::sign::Signer::generate()?;
        Ok(MasterKey {
            secret_key: Some(secret),
            public_key: public,
            id_key: crate::error::random_32()?,
            chunker_key: crate::error::random_32()?,
            admin_public: admin.public(),
            admin_secret: Some(*admin.secret()),
        })
    }

    /// Whether the X25519 public key is the one of the secret key (always true for put-only
    /// keys, which hold no secret). Used to check typed-back key material.
    pub fn is_consistent(&self) -> bool {
        let Some(secret) = &self.secret_key else {
            return true;
        };
        match <Kem as hpke::Kem>::PrivateKey::from_bytes(secret) {
            Ok(sk) => Kem::sk_to_pk(&sk).to_bytes().as_slice() == self.public_key,
            Err(_) => false,
        }
    }

    /// Whether this key can read (holds the secret key).
    pub fn can_read(&self) -> bool {
        self.secret_key.is_some()
    }

    /// The same key without the secret key and the admin secret: what a put-only host receives.
    pub fn put_only(&self) -> MasterKey {
        MasterKey {
            secret_key: None,
            admin_secret: None,
            ..self.clone()
        }
    }

    /// The admin signer, for full keys.
    ///
    /// # Errors
    /// [`FormatError::PutOnlyKey`] without the admin secret.
    pub fn admin(&self) -> Result<crate::sign::Signer> {
        self.admin_secret
            .as_ref()
            .map(crate::sign::Signer::from_secret)
            .ok_or(FormatError::PutOnlyKey)
    }

    /// The blob id of `plaintext` under this repository's id key.
    pub fn blob_id(&self, plaintext: &[u8]) -> crate::BlobId {
        crate::BlobId::of(&self.id_key, plaintext)
    }

    /// Seal `plaintext` to the repository public key (HPKE base mode). `signer` is the public
    /// key of the signed envelope the object goes into — required exactly for the kinds that
    /// are [`SealedKind::in_envelope`] — and becomes part of the associated data (format §3).
    ///
    /// # Errors
    /// On an invalid public key in the key material, or a `signer` that does not fit `kind`.
    pub fn seal(
        &self,
        kind: SealedKind,
        plaintext: &[u8],
        signer: Option<&[u8; 32]>,
    ) -> Result<Vec<u8>> {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&self.public_key)
            .map_err(|e| FormatError::malformed("public key", e))?;
        let mut header = Vec::with_capacity(plaintext.len() + SEALED_OVERHEAD);
        header.extend_from_slice(SEALED_MAGIC);
        header.push(kind as u8);
        let aad = kind.aad(&header, signer)?;
        let (enc, mut ct) = hpke::single_shot_seal::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &pk,
            &kind.info(),
            plaintext,
            &aad,
        )
        .map_err(|e| FormatError::malformed("seal", e))?;
        let mut out = header;
        out.extend_from_slice(&enc.to_bytes());
        out.append(&mut ct);
        Ok(out)
    }

    /// Open an object sealed with [`MasterKey::seal`]; `signer` is the public key of the
    /// envelope it came in (as for `seal`).
    ///
    /// # Errors
    /// [`FormatError::PutOnlyKey`] without a secret key; [`FormatError::Malformed`] for a bad
    /// header; [`FormatError::Authentication`] when the bytes were changed, sealed elsewhere or
    /// sealed for another signer.
    pub fn open(
        &self,
        kind: SealedKind,
        sealed: &[u8],
        signer: Option<&[u8; 32]>,
    ) -> Result<Vec<u8>> {
        let secret = self.secret_key.as_ref().ok_or(FormatError::PutOnlyKey)?;
        check_sealed_header(kind, sealed)?;
        let aad = kind.aad(&sealed[..5], signer)?;
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
            .map_err(|e| FormatError::malformed("secret key", e))?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[5..37])
            .map_err(|_| FormatError::Authentication { what: kind.label() })?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            &kind.info(),
            &sealed[37..],
            &aad,
        )
        .map_err(|_| FormatError::Authentication { what: kind.label() })
    }
}

/// Refuse bytes that are not a sealed object of `kind` (magic, length, kind byte).
fn check_sealed_header(kind: SealedKind, sealed: &[u8]) -> Result<()> {
    if sealed.len() < SEALED_OVERHEAD || &sealed[..4] != SEALED_MAGIC {
        return Err(FormatError::malformed(
            kind.label(),
            "not a sealed tresor object",
        ));
    }
    if sealed[4] != kind as u8 {
        return Err(FormatError::malformed(
            kind.label(),
            format!(
                "object kind byte {} where {} was expected",
                sealed[4], kind as u8
            ),
        ));
    }
    Ok(())
}

/// A per-pack symmetric key (32 bytes) for XChaCha20-Poly1305.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct DataKey(pub [u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random data key.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn generate() -> Result<Self> {
        Ok(DataKey(crate::error::random_32()?))
    }

    /// Encrypt `buf` in place and return `nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn encrypt(&self, aad: &[u8], mut buf: Vec<u8>) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 24];
        random_fill(&mut nonce)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&self.0).expect("32-byte key");
        let n = XNonce::from(nonce);
        let tag = cipher
            .encrypt_inout_detached(&n, aad, InOutBuf::from(buf.as_mut_slice()))
            .map_err(|e| FormatError::malformed("blob", e))?;
        let mut out = Vec::with_capacity(buf.len() + BLOB_CRYPTO_OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Encrypt `buf` in place with `nonce` and return the 16-byte tag. The caller MUST NOT use a
    /// nonce twice with one key.
    ///
    /// # Panics
    /// When `buf` is longer than XChaCha20 allows (256 GiB); blobs are at most 4 GiB.
    pub fn encrypt_in_place(&self, nonce: &[u8; 24], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let cipher = XChaCha20Poly1305::new_from_slice(&self.0).expect("32-byte key");
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(*nonce), aad, InOutBuf::from(buf))
            .expect("blob shorter than 256 GiB");
        tag.into()
    }

    /// Decrypt `nonce || ciphertext || tag`.
    ///
    /// # Errors
    /// [`FormatError::Authentication`] when the bytes or the associated data do not match.
    pub fn decrypt(&self, aad: &[u8], data: &[u8], what: &'static str) -> Result<Vec<u8>> {
        let mut buf = data.to_vec();
        let r = self.decrypt_in_place(aad, &mut buf, what)?;
        buf.truncate(r.end);
        buf.drain(..r.start);
        Ok(buf)
    }

    /// Decrypt `nonce || ciphertext || tag` where it lies; returns where the plaintext is in
    /// `data` (bytes 24 to `len − 16`).
    ///
    /// # Errors
    /// [`FormatError::Authentication`] when the bytes or the associated data do not match
    /// (`data` then holds garbage).
    pub fn decrypt_in_place(
        &self,
        aad: &[u8],
        data: &mut [u8],
        what: &'static str,
    ) -> Result<std::ops::Range<usize>> {
        if data.len() < BLOB_CRYPTO_OVERHEAD {
            return Err(FormatError::Authentication { what });
        }
        let nonce = XNonce::try_from(&data[..24]).expect("24 bytes");
        let tag_at = data.len() - 16;
        let tag = Tag::try_from(&data[tag_at..]).expect("16 bytes");
        let cipher = XChaCha20Poly1305::new_from_slice(&self.0).expect("32-byte key");
        cipher
            .decrypt_inout_detached(&nonce, aad, InOutBuf::from(&mut data[24..tag_at]), &tag)
            .map_err(|_| FormatError::Authentication { what })?;
        Ok(24..tag_at)
    }
}

/// Serde helpers for 32-byte values as hex strings. The hex text of key material is as secret
/// as the key: it lives in [`zeroize::Zeroizing`] strings, wiped when dropped.
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(v)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        decode(&s).map_err(serde::de::Error::custom)
    }
    pub(super) fn decode(s: &str) -> Result<[u8; 32], hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(out)
    }
}

/// [`hex32`] for optional values (absent in put-only keys).
pub(crate) mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::hex32::serialize(v, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let s: Option<Zeroizing<String>> = Option::<String>::deserialize(d)?.map(Zeroizing::new);
        s.map(|s| super::hex32::decode(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{SignedKind, Signer};

    #[test]
    fn the_signer_is_bound_in_the_associated_data() {
        let key = MasterKey::generate().unwrap();
        let (a, b) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        for kind in [SealedKind::Snapshot, SealedKind::Index, SealedKind::Marker] {
            let sealed = key.seal(kind, b"plain", Some(&a.public())).unwrap();
            assert_eq!(
                key.open(kind, &sealed, Some(&a.public())).unwrap(),
                b"plain"
            );
            assert!(matches!(
                key.open(kind, &sealed, Some(&b.public())),
                Err(FormatError::Authentication { .. })
            ));
            // A kind inside an envelope needs a signer, on both sides.
            assert!(matches!(
                key.seal(kind, b"plain", None),
                Err(FormatError::Malformed { .. })
            ));
            assert!(matches!(
                key.open(kind, &sealed, None),
                Err(FormatError::Malformed { .. })
            ));
        }
        // Pack headers are not signed: no signer in their associated data.
        let sealed = key.seal(SealedKind::PackHeader, b"h", None).unwrap();
        assert_eq!(
            key.open(SealedKind::PackHeader, &sealed, None).unwrap(),
            b"h"
        );
        let e = key
            .seal(SealedKind::PackHeader, b"h", Some(&a.public()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed pack header: a signer given for an object outside a signed envelope"
        );
        assert!(
            key.open(SealedKind::PackHeader, &sealed, Some(&a.public()))
                .is_err()
        );
    }

    #[test]
    fn a_sealed_snapshot_cannot_be_re_signed_by_another_key() {
        let key = MasterKey::generate().unwrap();
        let (honest, forger) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        let snap = crate::snapshot::Snapshot {
            version: crate::FORMAT_VERSION,
            time: "2026-01-01T00:00:00Z".into(),
            tree: crate::BlobId([1; 32]),
            paths: vec!["/".into()],
            hostname: "h".into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: "tresor".into(),
            markers: vec![],
            original: None,
        };
        let stored = snap.seal(&key, &honest).unwrap();
        let (_, sealed) = crate::sign::open_envelope(SignedKind::Snapshot, &stored).unwrap();
        // The forger can sign the honest ciphertext as its own, but it no longer opens.
        let rewrapped = forger.envelope(SignedKind::Snapshot, sealed);
        assert_eq!(
            crate::snapshot::Snapshot::signer_of(&rewrapped).unwrap(),
            forger.public()
        );
        assert!(matches!(
            crate::snapshot::Snapshot::open(&key, &rewrapped),
            Err(FormatError::Authentication { what: "snapshot" })
        ));
        assert_eq!(
            crate::snapshot::Snapshot::open(&key, &stored).unwrap(),
            (honest.public(), snap)
        );
    }

    #[test]
    fn key_material_json_uses_chunker_key() {
        let key = MasterKey::generate().unwrap();
        let v: serde_json::Value = serde_json::to_value(&key).unwrap();
        assert_eq!(v["chunker_key"], hex::encode(key.chunker_key));
        assert!(v.get("chunker_seed").is_none());
        let back: MasterKey = serde_json::from_value(v).unwrap();
        assert_eq!(back.chunker_key, key.chunker_key);
        // A version-1 payload (u64 seed, no key) does not parse.
        let mut old: serde_json::Value = serde_json::to_value(key.put_only()).unwrap();
        let o = old.as_object_mut().unwrap();
        o.remove("chunker_key");
        o.insert("chunker_seed".into(), 12345.into());
        assert!(serde_json::from_value::<MasterKey>(old).is_err());
        assert_ne!(MasterKey::generate().unwrap().chunker_key, key.chunker_key);
    }
}
