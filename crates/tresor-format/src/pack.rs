//! Packs (format §8).
//!
//! ```text
//! pack = blob_0 || blob_1 || … || blob_n-1 || sealed header || header length (u32 LE) || "TPK2"
//! ```
//! Each `blob_i` is a stored blob ([`crate::blob`]). The header is a postcard-encoded
//! [`PackHeader`] sealed with HPKE ([`crate::crypto::SealedKind::PackHeader`], associated data the
//! sealed header alone: packs are not signed); it holds the pack's
//! data key and one [`BlobEntry`] per blob. A pack is named by the BLAKE3 of all its bytes.

use crate::BlobId;
use crate::blob::{self, BlobType};
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Trailer magic.
pub const PACK_MAGIC: &[u8; 4] = b"TPK2";
/// Length of the trailer (header length + magic).
pub const TRAILER_LEN: u64 = 8;

/// Data blobs with a plaintext below this many bytes become frame members (writers, format §8).
pub const MEMBER_BELOW: usize = 256 << 10;

/// A frame closes before a member would take its plaintext over this many bytes (writers,
/// format §8): a random read of one member decompresses at most this much (16 MiB,
/// [`blob::MAX_FRAME_SIZE`], from any writer).
pub const FRAME_TARGET: usize = 1 << 20;

/// Most blobs tresor's writers put in one pack of `pack_size` bytes: as many as the smallest
/// stored blob (104 bytes, §7) would fill, at least 1. Frames let a pack hold far more small
/// blobs than its stored bytes would (a member costs no padding and compresses), so writers
/// close a pack at this count too; one pack's index entries then stay within `pack_size` bytes
/// (format §2, §9), as version 2's stored sizes kept them.
pub const fn max_entries(pack_size: u64) -> usize {
    let n = pack_size / crate::blob::stored_len(0) as u64;
    if n == 0 { 1 } else { n as usize }
}

/// Where a blob sits in a pack (the version-3 encoding; version 2's lacks `member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    /// Data or tree.
    pub blob_type: BlobType,
    /// Blob id.
    pub id: BlobId,
    /// Offset of the stored blob in the pack, in bytes.
    pub offset: u64,
    /// Length of the stored blob, in bytes.
    pub length: u64,
    /// Length of the plaintext, in bytes.
    pub raw_length: u64,
    /// For a member of a frame (format §7, flag 2): the offset of its plaintext within the
    /// frame's plaintext, bytes; `offset` and `length` are then the frame's. `None` for a blob
    /// stored alone (always in version 2).
    pub member: Option<u64>,
}

/// [`BlobEntry`] as version 2 encodes it: without `member`.
#[derive(Serialize, Deserialize)]
pub(crate) struct BlobEntryV2 {
    blob_type: BlobType,
    id: BlobId,
    offset: u64,
    length: u64,
    raw_length: u64,
}

impl BlobEntryV2 {
    /// The blob's id.
    pub(crate) fn id(&self) -> BlobId {
        self.id
    }
}

impl From<BlobEntryV2> for BlobEntry {
    fn from(e: BlobEntryV2) -> Self {
        BlobEntry {
            blob_type: e.blob_type,
            id: e.id,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
            member: None,
        }
    }
}

impl From<&BlobEntry> for BlobEntryV2 {
    fn from(e: &BlobEntry) -> Self {
        BlobEntryV2 {
            blob_type: e.blob_type,
            id: e.id,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        }
    }
}

/// The version to encode entries `blobs` with when `version` is asked for: version 2 cannot
/// hold frame members, so entries with one are always encoded in version 3.
pub(crate) fn entries_version<'a>(
    version: u32,
    mut blobs: impl Iterator<Item = &'a BlobEntry>,
) -> u32 {
    if version < 3 && blobs.any(|b| b.member.is_some()) {
        3
    } else {
        version
    }
}

/// The decrypted pack header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    /// Pack header version: [`crate::REPO_VERSION`] (3), or 2 in a version-2 repository.
    pub version: u32,
    /// The key every blob of this pack is encrypted with.
    pub data_key: DataKey,
    /// The blobs, in pack order.
    pub blobs: Vec<BlobEntry>,
}

/// [`PackHeader`] as version 2 encodes it.
#[derive(Serialize, Deserialize)]
struct PackHeaderV2 {
    version: u32,
    data_key: DataKey,
    blobs: Vec<BlobEntryV2>,
}

/// The frame being filled: its members' plaintexts back to back, and their ids.
#[derive(Default)]
struct OpenFrame {
    plain: Vec<u8>,
    /// Id, offset in `plain`, length of each member.
    members: Vec<(BlobId, usize, usize)>,
}

/// Builds one pack. Blobs are encrypted as they are added; small data blobs of a version-3 pack
/// are collected into frames (format §7, §8) that are encrypted when they close.
///
/// The pack's bytes are final as soon as a blob or frame is stored (offsets never change), so a
/// writer may take them out as the pack fills ([`PackBuilder::take_sealed`]) and write them to a
/// file: the builder then holds only what was stored since, the open frame and the entries.
/// Without that, the whole pack stays in memory until [`PackBuilder::finish`].
///
/// Nonces (format §7): a random 16-byte prefix drawn once per pack, followed by the position of
/// the stored blob or frame in the pack as a u64 LE. Every pack has a fresh random data key, so
/// nonces never repeat under one key, and no system call is made per blob.
pub struct PackBuilder {
    data_key: DataKey,
    nonce_prefix: [u8; 16],
    /// Stored blobs and frames so far (the nonce counter).
    stored: u64,
    /// Bytes at the start of the pack handed out by [`PackBuilder::take_sealed`]: `buf` holds
    /// the pack's bytes from this offset on.
    taken: u64,
    buf: Vec<u8>,
    blobs: Vec<BlobEntry>,
    compression_level: i32,
    version: u32,
    frame: OpenFrame,
}

impl PackBuilder {
    /// An empty version-3 pack ([`crate::REPO_VERSION`]) with a fresh data key.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn new(compression_level: i32, capacity: usize) -> Result<Self> {
        Self::with_buffer(compression_level, Vec::with_capacity(capacity))
    }

    /// An empty version-3 pack with a fresh data key, built in `buf` (cleared first): lets a
    /// caller reuse the buffer of a pack it has written.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn with_buffer(compression_level: i32, mut buf: Vec<u8>) -> Result<Self> {
        buf.clear();
        let mut nonce_prefix = [0u8; 16];
        crate::error::random_fill(&mut nonce_prefix)?;
        Ok(PackBuilder {
            data_key: DataKey::generate()?,
            nonce_prefix,
            stored: 0,
            taken: 0,
            buf,
            blobs: Vec::new(),
            compression_level,
            version: crate::REPO_VERSION,
            frame: OpenFrame::default(),
        })
    }

    /// Write the pack in format `version` (2 or 3; the repository's): version 2 makes no
    /// frames and writes a version-2 header.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Whether small data blobs go into frames: version 3 with compression on.
    fn frames(&self) -> bool {
        self.version >= 3 && self.compression_level != 0
    }

    fn next_nonce(&mut self) -> [u8; 24] {
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&self.stored.to_le_bytes());
        self.stored += 1;
        nonce
    }

    /// Add a blob: encode, encrypt and append it, or, for a data blob under [`MEMBER_BELOW`]
    /// bytes in a version-3 pack, put it into the open frame (closing that frame first when
    /// the blob would take it over [`FRAME_TARGET`]). Returns the stored bytes appended to
    /// the pack (0 when the blob only joined the open frame).
    ///
    /// # Errors
    /// See [`blob::encode`].
    pub fn add(&mut self, blob_type: BlobType, id: BlobId, plaintext: &[u8]) -> Result<u64> {
        if !(self.frames() && blob_type == BlobType::Data && plaintext.len() < MEMBER_BELOW) {
            return self.add_single(blob_type, id, plaintext, self.compression_level);
        }
        let mut written = 0;
        if self.frame.plain.len() + plaintext.len() > FRAME_TARGET {
            written = self.close_frame()?;
        }
        let f = &mut self.frame;
        f.members.push((id, f.plain.len(), plaintext.len()));
        f.plain.extend_from_slice(plaintext);
        Ok(written)
    }

    /// Encode, encrypt and append one blob stored alone at `level`.
    fn add_single(
        &mut self,
        blob_type: BlobType,
        id: BlobId,
        plaintext: &[u8],
        level: i32,
    ) -> Result<u64> {
        let nonce = self.next_nonce();
        let offset = self.stored_end();
        let key = &self.data_key;
        let length =
            blob::encode_into(key, &nonce, blob_type, &id, plaintext, level, &mut self.buf)? as u64;
        self.blobs.push(BlobEntry {
            blob_type,
            id,
            offset,
            length,
            raw_length: plaintext.len() as u64,
            member: None,
        });
        Ok(length)
    }

    /// Store the open frame, if any: a frame of one member is stored as a single blob; one
    /// whose zstd frame does not save 1/32 as single blobs (each compressed or not by the rule of
    /// format §7). Returns the bytes appended.
    fn close_frame(&mut self) -> Result<u64> {
        let OpenFrame { plain, members } = std::mem::take(&mut self.frame);
        if let [(id, _, _)] = members[..] {
            return self.add_single(BlobType::Data, id, &plain, self.compression_level);
        }
        if members.is_empty() {
            return Ok(0);
        }
        let nonce = self.next_nonce();
        let offset = self.stored_end();
        let (key, level) = (&self.data_key, self.compression_level);
        let Some(length) =
            blob::encode_frame_into(key, &nonce, BlobType::Data, &plain, level, &mut self.buf)?
        else {
            // Each alone by the per-blob rule (§7): a compressible member among incompressible
            // ones keeps its compression.
            let mut n = 0;
            let level = self.compression_level;
            for (id, at, len) in members {
                n += self.add_single(BlobType::Data, id, &plain[at..at + len], level)?;
            }
            return Ok(n);
        };
        for (id, at, len) in members {
            self.blobs.push(BlobEntry {
                blob_type: BlobType::Data,
                id,
                offset,
                length: length as u64,
                raw_length: len as u64,
                member: Some(at as u64),
            });
        }
        Ok(length as u64)
    }

    /// Bytes of stored blobs and closed frames so far, plus the plaintext of the open frame's
    /// members (at most [`FRAME_TARGET`] bytes; its stored size is known once it closes). A
    /// pack closed when this reaches its target holds at least the target less 1 MiB.
    pub fn size(&self) -> u64 {
        self.stored_end() + self.frame.plain.len() as u64
    }

    /// Where the stored bytes end in the pack, taken out or held: the offset of the next stored
    /// blob or frame, bytes.
    fn stored_end(&self) -> u64 {
        self.taken + self.buf.len() as u64
    }

    /// Bytes of stored blobs and closed frames held and not yet taken out (the pack's bytes
    /// from offset [`PackBuilder::taken`] on).
    pub fn sealed_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes taken out with [`PackBuilder::take_sealed`] so far: the pack's first bytes.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Hand the stored bytes held (the pack's bytes from offset [`PackBuilder::taken`] on, final)
    /// to `write`, which returns how many of them, from the start, it has taken; those leave the
    /// builder, the rest stays for the next call or [`PackBuilder::finish`]. Returns that count.
    ///
    /// # Errors
    /// The error of `write`, after which nothing was taken.
    ///
    /// # Panics
    /// When `write` claims more bytes than it was given.
    pub fn take_sealed<E>(
        &mut self,
        write: impl FnOnce(&[u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        let n = write(&self.buf)?;
        assert!(n <= self.buf.len(), "took {n} of {} bytes", self.buf.len());
        self.buf.drain(..n);
        self.taken += n as u64;
        Ok(n)
    }

    /// Number of blobs so far, members of the open frame included.
    pub fn len(&self) -> usize {
        self.blobs.len() + self.frame.members.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Close the open frame, append the sealed header and trailer; returns the pack bytes not
    /// taken out (from offset [`PackBuilder::taken`] on: the whole pack when none were) and its
    /// header.
    ///
    /// # Errors
    /// Only when sealing fails (invalid public key).
    pub fn finish(mut self, key: &MasterKey) -> Result<(Vec<u8>, PackHeader)> {
        self.close_frame()?;
        let header = PackHeader {
            version: self.version,
            data_key: self.data_key,
            blobs: self.blobs,
        };
        let mut buf = self.buf;
        let sealed = key.seal(SealedKind::PackHeader, &encode_header(&header), None)?;
        buf.extend_from_slice(&sealed);
        buf.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        buf.extend_from_slice(PACK_MAGIC);
        Ok((buf, header))
    }
}

impl PackBuilder {
    /// Take the pack apart again: hand every blob added so far to `f` as (type, id, plaintext),
    /// in pack order, then the open frame's members; returns the pack buffer, cleared, for
    /// reuse. Lets a writer move the blobs of an unfinished pack into another pack (with its
    /// own data key) instead of writing two small packs. Stored blobs and closed frames are
    /// decrypted with this pack's data key and checked against their ids as a reader would
    /// (format §7); a frame is decoded once for all its members. Holds one decoded blob or
    /// frame at a time besides the pack.
    ///
    /// A stored blob or frame among the bytes taken out ([`PackBuilder::take_sealed`]), whole
    /// or its first part, is asked of `read` as (offset in the pack, length), both in bytes;
    /// with none taken out, `read` is never called.
    ///
    /// # Errors
    /// Those of [`blob::decode`], [`blob::decode_frame`] and [`blob::frame_member`] (none for
    /// a pack this builder made, unless memory or the taken-out bytes are corrupted), and the
    /// first error of `read` or `f`.
    pub fn drain<E: From<FormatError>>(
        self,
        id_key: &[u8; 32],
        mut read: impl FnMut(u64, u64) -> std::result::Result<Vec<u8>, E>,
        mut f: impl FnMut(BlobType, BlobId, &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<Vec<u8>, E> {
        let mut rest = &self.blobs[..];
        while let Some(e) = rest.first() {
            let outside;
            let stored = if e.offset >= self.taken {
                let at = (e.offset - self.taken) as usize;
                &self.buf[at..at + e.length as usize]
            } else {
                // Taken out, whole or its first part (the rest is at the start of `buf`).
                let end = e.offset + e.length;
                outside = read_taken(&mut read, e.offset, end.min(self.taken), &self.buf, end)?;
                &outside[..]
            };
            let Some(_) = e.member else {
                let plain = blob::decode(&self.data_key, id_key, e.blob_type, &e.id, stored)?;
                f(e.blob_type, e.id, &plain)?;
                rest = &rest[1..];
                continue;
            };
            let frame = blob::decode_frame(&self.data_key, e.blob_type, stored)?;
            let n = rest
                .iter()
                .take_while(|m| m.member.is_some() && m.offset == e.offset)
                .count();
            for m in &rest[..n] {
                let at = m.member.unwrap_or(0);
                let plain = blob::frame_member(&frame, id_key, &m.id, at, m.raw_length)?;
                f(m.blob_type, m.id, plain)?;
            }
            rest = &rest[n..];
        }
        for &(id, at, len) in &self.frame.members {
            f(BlobType::Data, id, &self.frame.plain[at..at + len])?;
        }
        let mut buf = self.buf;
        buf.clear();
        Ok(buf)
    }
}

/// The stored bytes `offset..end` of a pack whose bytes up to `taken` (at least `offset`) were
/// taken out: those from `read`, the rest from the start of `held` (the bytes from `taken`).
fn read_taken<E>(
    read: &mut impl FnMut(u64, u64) -> std::result::Result<Vec<u8>, E>,
    offset: u64,
    taken: u64,
    held: &[u8],
    end: u64,
) -> std::result::Result<Vec<u8>, E> {
    let mut v = read(offset, taken - offset)?;
    v.extend_from_slice(&held[..(end - taken) as usize]);
    Ok(v)
}

/// postcard encoding of a header (before sealing), in its `version`'s layout (version 3 when
/// an entry is a frame member, whatever `version` says: version 2 cannot hold members).
pub fn encode_header(h: &PackHeader) -> Vec<u8> {
    let version = entries_version(h.version, h.blobs.iter());
    if version == 2 {
        let v2 = PackHeaderV2 {
            version,
            data_key: h.data_key.clone(),
            blobs: h.blobs.iter().map(BlobEntryV2::from).collect(),
        };
        return postcard::to_stdvec(&v2).expect("pack header serializes");
    }
    let mut h = std::borrow::Cow::Borrowed(h);
    if h.version != version {
        h.to_mut().version = version;
    }
    postcard::to_stdvec(&*h).expect("pack header serializes")
}

/// Parse the 8-byte trailer; returns the sealed header length in bytes.
///
/// # Errors
/// [`FormatError::Malformed`] when the magic is wrong.
pub fn parse_trailer(trailer: &[u8]) -> Result<u64> {
    if trailer.len() != TRAILER_LEN as usize || &trailer[4..] != PACK_MAGIC {
        return Err(FormatError::malformed(
            "pack",
            "bad trailer (truncated or not a pack)",
        ));
    }
    Ok(u64::from(u32::from_le_bytes(
        trailer[..4].try_into().expect("4 bytes"),
    )))
}

/// Open a sealed header.
///
/// # Errors
/// [`FormatError::Authentication`], [`FormatError::Malformed`], [`FormatError::UnsupportedVersions`].
pub fn open_header(key: &MasterKey, sealed: &[u8]) -> Result<PackHeader> {
    let plain = key.open(SealedKind::PackHeader, sealed, None)?;
    decode_header(&plain)
}

/// Decode a header's postcard (version 2 or 3).
///
/// # Errors
/// [`FormatError::Malformed`], [`FormatError::UnsupportedVersions`].
pub fn decode_header(plain: &[u8]) -> Result<PackHeader> {
    let what = "pack header";
    let version = crate::error::postcard_version(plain, what)?;
    crate::check_repo_version(what, version)?;
    let malformed = |e| FormatError::malformed(what, e);
    if version == 2 {
        let h: PackHeaderV2 = postcard::from_bytes(plain).map_err(malformed)?;
        return Ok(PackHeader {
            version,
            data_key: h.data_key,
            blobs: h.blobs.into_iter().map(BlobEntry::from).collect(),
        });
    }
    postcard::from_bytes(plain).map_err(malformed)
}

/// Read the header of a whole pack held in memory, checking that the blobs fit before it.
///
/// # Errors
/// As [`open_header`], plus [`FormatError::Malformed`] for a truncated pack.
pub fn read_header(key: &MasterKey, pack: &[u8]) -> Result<PackHeader> {
    let n = pack.len() as u64;
    if n < TRAILER_LEN {
        return Err(FormatError::malformed("pack", "shorter than its trailer"));
    }
    let hlen = parse_trailer(&pack[(n - TRAILER_LEN) as usize..])?;
    let start = n
        .checked_sub(TRAILER_LEN + hlen)
        .ok_or_else(|| FormatError::malformed("pack", "header length beyond pack start"))?;
    let h = open_header(key, &pack[start as usize..(n - TRAILER_LEN) as usize])?;
    if let Some(b) = h
        .blobs
        .iter()
        .find(|b| b.offset.saturating_add(b.length) > start)
    {
        return Err(FormatError::malformed(
            "pack",
            format!("blob {} extends into the header", b.id),
        ));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn blob_nonces_are_distinct_within_a_pack_and_across_packs() {
        let key = MasterKey::generate().unwrap();
        let mut nonces = std::collections::HashSet::new();
        for version in [2, 3, 3] {
            let mut b = PackBuilder::new(3, 1 << 16).unwrap().with_version(version);
            for i in 0..50u32 {
                // Large enough that every frame holds several members (1 MiB / 40 KiB).
                let plain = i.to_le_bytes().repeat(10_000);
                let id = BlobId::of(&key.id_key, &plain);
                b.add(BlobType::Data, id, &plain).unwrap();
            }
            let (bytes, header) = b.finish(&key).unwrap();
            assert_eq!(read_header(&key, &bytes).unwrap(), header);
            let offsets: std::collections::BTreeSet<u64> =
                header.blobs.iter().map(|e| e.offset).collect();
            // Version 2: 50 blobs alone; version 3: two frames of 26 and 24 members.
            assert_eq!(offsets.len(), if version == 2 { 50 } else { 2 });
            for o in offsets {
                let nonce = &bytes[o as usize..o as usize + 24];
                assert!(nonces.insert(nonce.to_vec()), "nonce repeated");
            }
        }
        assert_eq!(nonces.len(), 54);
    }

    /// A version-3 pack of three small data blobs (one frame), a larger one alone and a tree.
    fn frame_pack(key: &MasterKey) -> (Vec<u8>, PackHeader, Vec<Vec<u8>>) {
        let mut b = PackBuilder::new(3, 1 << 16).unwrap();
        let plains = vec![
            b"short".to_vec(),
            b"text that compresses, text that compresses. ".repeat(40),
            (0..200_000u32).map(|i| (i % 251) as u8).collect(),
            vec![5u8; 300_000],
            b"tree bytes".to_vec(),
        ];
        for (i, p) in plains.iter().enumerate() {
            let t = if i == 4 {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            b.add(t, BlobId::of(&key.id_key, p), p).unwrap();
        }
        let (bytes, header) = b.finish(key).unwrap();
        (bytes, header, plains)
    }

    #[test]
    fn small_data_blobs_share_one_frame() {
        let key = MasterKey::generate().unwrap();
        let (bytes, header, plains) = frame_pack(&key);
        assert_eq!(header.version, 3);
        let e = &header.blobs;
        // Entry order: the blobs stored alone as they came, then the frame's members.
        let ids: Vec<_> = e.iter().map(|b| b.id).collect();
        let want: Vec<_> = [3, 4, 0, 1, 2]
            .iter()
            .map(|&i| BlobId::of(&key.id_key, &plains[i]))
            .collect();
        assert_eq!(ids, want);
        assert_eq!((e[0].member, e[1].member), (None, None));
        assert_eq!(
            e[2..].iter().map(|b| b.member).collect::<Vec<_>>(),
            vec![Some(0), Some(5), Some(5 + 44 * 40)]
        );
        assert!(
            e[2..]
                .iter()
                .all(|b| (b.offset, b.length) == (e[2].offset, e[2].length))
        );
        assert_eq!(e[2].offset, e[1].offset + e[1].length);
        let stored = &bytes[e[2].offset as usize..(e[2].offset + e[2].length) as usize];
        let frame = blob::decode_frame(&header.data_key, BlobType::Data, stored).unwrap();
        assert_eq!(frame, [&plains[0][..], &plains[1], &plains[2]].concat());
        for (b, p) in e[2..].iter().zip(&plains) {
            let m = blob::frame_member(&frame, &key.id_key, &b.id, b.member.unwrap(), b.raw_length);
            assert_eq!(m.unwrap(), &p[..]);
        }
        // A member's range outside the frame, or another member's id, is refused.
        let (b, len) = (&e[4], frame.len() as u64);
        let e1 = blob::frame_member(&frame, &key.id_key, &b.id, len - 10, 11).unwrap_err();
        assert_eq!(
            e1.to_string(),
            format!(
                "malformed frame: member {} at {} + 11 lies outside the frame's {len} bytes",
                b.id,
                len - 10
            )
        );
        let e2 = blob::frame_member(&frame, &key.id_key, &e[3].id, 0, 5).unwrap_err();
        assert!(matches!(e2, FormatError::BlobIdMismatch(id) if id == e[3].id));
        // Flag mismatches: a frame read as a single blob, a single blob read as a frame.
        let single = blob::decode(&header.data_key, &key.id_key, BlobType::Data, &b.id, stored);
        assert!(matches!(single, Err(FormatError::Authentication { .. })));
        let alone = &bytes[e[0].offset as usize..(e[0].offset + e[0].length) as usize];
        let as_frame = blob::decode_frame(&header.data_key, BlobType::Data, alone);
        assert!(matches!(as_frame, Err(FormatError::Authentication { .. })));
        // Every flipped byte of the stored frame fails.
        for i in 0..stored.len() {
            let mut bad = stored.to_vec();
            bad[i] ^= 0x40;
            assert!(
                blob::decode_frame(&header.data_key, BlobType::Data, &bad).is_err(),
                "{i}"
            );
        }
    }

    /// Every blob of `header` in `pack`, decoded: (type, id, plaintext) in entry order.
    fn decode_all(
        key: &MasterKey,
        pack: &[u8],
        header: &PackHeader,
    ) -> Vec<(BlobType, BlobId, Vec<u8>)> {
        header
            .blobs
            .iter()
            .map(|e| {
                let stored = &pack[e.offset as usize..(e.offset + e.length) as usize];
                let plain = match e.member {
                    None => blob::decode(&header.data_key, &key.id_key, e.blob_type, &e.id, stored),
                    Some(at) => {
                        blob::decode_frame(&header.data_key, e.blob_type, stored).and_then(|f| {
                            blob::frame_member(&f, &key.id_key, &e.id, at, e.raw_length)
                                .map(<[u8]>::to_vec)
                        })
                    }
                };
                (e.blob_type, e.id, plain.unwrap())
            })
            .collect()
    }

    #[test]
    fn drain_hands_back_every_blob_and_a_second_pack_stores_them_again() {
        let key = MasterKey::generate().unwrap();
        let mut b = PackBuilder::new(3, 1 << 16).unwrap();
        let mut plains: Vec<(BlobType, Vec<u8>)> = (0..30u32)
            .map(|i| (BlobType::Data, i.to_le_bytes().repeat(10_000)))
            .collect();
        plains.push((BlobType::Data, vec![5u8; 300_000]));
        plains.push((BlobType::Tree, b"tree bytes".to_vec()));
        for (t, p) in &plains {
            b.add(*t, BlobId::of(&key.id_key, p), p).unwrap();
        }
        // 26 members (40 000 bytes each) fill the first frame; the last 4 are in the open one.
        assert_eq!((b.blobs.len(), b.frame.members.len()), (28, 4));
        let mut got = vec![];
        let buf = b
            .drain(&key.id_key, nothing_taken, |t, id, p| {
                got.push((t, id, p.to_vec()));
                Ok::<_, FormatError>(())
            })
            .unwrap();
        assert!(buf.is_empty() && buf.capacity() > 1 << 16);
        let order = (0..26).chain([30, 31]).chain(26..30);
        let want: Vec<_> = order
            .map(|i| {
                let (t, p) = &plains[i];
                (*t, BlobId::of(&key.id_key, p), p.clone())
            })
            .collect();
        assert_eq!(got, want);
        // Added to a new pack (another data key), they round-trip byte for byte.
        let mut again = PackBuilder::with_buffer(3, buf).unwrap();
        for (t, id, p) in &got {
            again.add(*t, *id, p).unwrap();
        }
        let (bytes, header) = again.finish(&key).unwrap();
        assert_eq!(read_header(&key, &bytes).unwrap(), header);
        let mut back = decode_all(&key, &bytes, &header);
        let mut want = got;
        back.sort_by_key(|x| x.1);
        want.sort_by_key(|x| x.1);
        assert_eq!(back, want);
        assert_eq!(
            header.blobs.iter().filter(|e| e.member.is_some()).count(),
            30
        );
        // A damaged stored blob stops the drain with the reader's error.
        let mut bad = PackBuilder::new(3, 1 << 16).unwrap();
        let p = vec![9u8; 300_000];
        bad.add(BlobType::Data, BlobId::of(&key.id_key, &p), &p)
            .unwrap();
        bad.buf[100] ^= 1;
        let e = bad
            .drain(&key.id_key, nothing_taken, |_, _, _| Ok(()))
            .unwrap_err();
        assert!(matches!(e, FormatError::Authentication { .. }), "{e}");
    }

    /// `read` of [`PackBuilder::drain`] for a builder nothing was taken out of.
    fn nothing_taken(offset: u64, len: u64) -> Result<Vec<u8>> {
        panic!("nothing was taken out, yet {offset} + {len} was asked for")
    }

    /// `len` incompressible bytes, different for each `seed`.
    fn noise(seed: u32, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut h = blake3::Hasher::new();
        h.update(&seed.to_le_bytes());
        h.finalize_xof().fill(&mut out);
        out
    }

    /// A blob added: (type, id, plaintext).
    type Added = (BlobType, BlobId, Vec<u8>);

    /// Blobs of all kinds (alone, frame members, trees) into a pack whose stored bytes are
    /// taken out as it fills: 5 blobs, 8 blobs, then 2 more at a time.
    fn taken_pack(
        key: &MasterKey,
        cut: impl Fn(&[u8]) -> usize,
    ) -> (PackBuilder, Vec<u8>, Vec<Added>) {
        let mut b = PackBuilder::new(3, 1 << 16).unwrap();
        let (mut out, mut added) = (Vec::new(), Vec::new());
        for i in 0..40u32 {
            let (t, p) = match i % 5 {
                0 => (BlobType::Data, noise(i, 300_000)),
                1 => (BlobType::Tree, format!("tree {i}").into_bytes()),
                _ => (BlobType::Data, i.to_le_bytes().repeat(10_000)),
            };
            let id = BlobId::of(&key.id_key, &p);
            b.add(t, id, &p).unwrap();
            added.push((t, id, p));
            if [4, 12].contains(&i) || (i > 12 && i % 2 == 0) {
                let before = (b.taken(), b.sealed_len());
                let n = b
                    .take_sealed(|s| {
                        out.extend_from_slice(&s[..cut(s)]);
                        Ok::<_, FormatError>(cut(s))
                    })
                    .unwrap();
                assert_eq!(
                    (b.taken(), b.sealed_len()),
                    (before.0 + n as u64, before.1 - n)
                );
                assert_eq!(b.taken(), out.len() as u64);
            }
        }
        (b, out, added)
    }

    #[test]
    fn bytes_taken_out_as_the_pack_fills_and_the_rest_make_the_pack() {
        let key = MasterKey::generate().unwrap();
        // All of them each time, and all but the last 1000 (a writer of aligned blocks).
        for keep in [0, 1000] {
            let (b, mut out, added) = taken_pack(&key, |s| s.len().saturating_sub(keep));
            let (taken, size) = (b.taken(), b.size());
            assert!(taken > 2 << 20 && size >= taken, "{taken} of {size}");
            let (rest, header) = b.finish(&key).unwrap();
            out.extend_from_slice(&rest);
            assert_eq!(read_header(&key, &out).unwrap(), header);
            let mut got = decode_all(&key, &out, &header);
            let mut want = added.clone();
            got.sort_by_key(|x| x.1);
            want.sort_by_key(|x| x.1);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn drain_reads_the_blobs_taken_out_back() {
        let key = MasterKey::generate().unwrap();
        let (b, out, added) = taken_pack(&key, <[u8]>::len);
        let mut asked = 0;
        let mut got = vec![];
        let read = |at: u64, len: u64| {
            asked += 1;
            Ok::<_, FormatError>(out[at as usize..(at + len) as usize].to_vec())
        };
        b.drain(&key.id_key, read, |t, id, p| {
            got.push((t, id, p.to_vec()));
            Ok(())
        })
        .unwrap();
        assert!(asked > 5, "{asked}");
        got.sort_by_key(|x| x.1);
        let mut want = added;
        want.sort_by_key(|x| x.1);
        assert_eq!(got, want);
        // Bytes read back damaged fail as a reader would.
        let (b, out, _) = taken_pack(&key, <[u8]>::len);
        let damaged = |at: u64, len: u64| {
            let mut v = out[at as usize..(at + len) as usize].to_vec();
            v[len as usize / 2] ^= 1;
            Ok::<_, FormatError>(v)
        };
        let e = b.drain(&key.id_key, damaged, |_, _, _| Ok(())).unwrap_err();
        assert!(matches!(e, FormatError::Authentication { .. }), "{e}");
        // A blob cut by the bytes taken out (a writer of aligned blocks) is read from both.
        let (b, out, added) = taken_pack(&key, |s| s.len().saturating_sub(1000));
        let (mut cut, mut got) = (0, vec![]);
        let taken = b.taken();
        let read = |at: u64, len: u64| {
            assert!(at + len <= taken, "{at} + {len} beyond {taken}");
            cut += usize::from(at + len == taken);
            Ok::<_, FormatError>(out[at as usize..(at + len) as usize].to_vec())
        };
        b.drain(&key.id_key, read, |t, id, p| {
            got.push((t, id, p.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(cut, 1);
        assert_eq!(got.len(), added.len());
    }

    #[test]
    fn version_2_packs_have_no_frames_and_a_version_2_header() {
        let key = MasterKey::generate().unwrap();
        let mut b = PackBuilder::new(3, 1 << 16).unwrap().with_version(2);
        for i in 0..5u8 {
            let p = vec![i; 1000];
            b.add(BlobType::Data, BlobId::of(&key.id_key, &p), &p)
                .unwrap();
        }
        let (bytes, header) = b.finish(&key).unwrap();
        assert_eq!(header.version, 2);
        assert!(header.blobs.iter().all(|e| e.member.is_none()));
        assert_eq!(read_header(&key, &bytes).unwrap(), header);
        // Its postcard is version 2's: 5 fields per entry, no member byte.
        let enc = encode_header(&header);
        assert_eq!(enc[0], 2);
        let mut with_member = header.clone();
        with_member.version = 3;
        assert_eq!(encode_header(&with_member).len(), enc.len() + 5);
        // A member in a version-2 header is encoded as version 3, never dropped.
        with_member.version = 2;
        with_member.blobs[0].member = Some(0);
        let enc3 = encode_header(&with_member);
        assert_eq!(enc3[0], 3);
        assert_eq!(decode_header(&enc3).unwrap().blobs[0].member, Some(0));
    }
}
