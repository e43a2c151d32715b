//! One index object's blob ids as a local, sorted table file: what a backup deduplicates
//! against without holding the repository's ids in memory.
//!
//! Layout of a table file (all integers little-endian; a local cache file, not a repository
//! object — its version is [`MAGIC`]'s last byte):
//!
//! ```text
//! magic    8 bytes   "TRDEDUP" 0x02
//! signer  32 bytes   signing public key of the index object's writer
//! count    8 bytes   number of ids, n
//! bits     1 byte    prefix bits b, 0..=16
//! retired  4 bytes   number of index objects this one supersedes, r (format §9)
//! retired  r × 32 bytes, their ids
//! fanout  (2^b + 1) × u32   fanout[p] = ids whose first b bits are < p; fanout[2^b] = n
//! suffix   n × u16   the 16 bits of each id after its first b bits
//! ids      n × 32 bytes, sorted ascending, no duplicates
//! ```
//!
//! In memory a table keeps its fanout (4 × 2^b bytes; b is chosen so that buckets hold 64 to
//! 128 ids, at most 16 bits: under 0.07 bytes per id) from the start, and its suffix column
//! (2 bytes per id) from its first lookup: a backup whose lookups all end in its own tables
//! never loads the others'. A lookup finds the id's bucket, binary-searches the suffixes there
//! and reads the 32-byte ids whose suffix matches from the file (`pread`, one per candidate:
//! about 128 / 2^16 false candidates per lookup). Reading the file does not map it: the page
//! cache is not counted in the process's resident set. A table whose candidates have been
//! read more than an eighth of its length times ([`HOT_SHARE`]; in practice the host's own
//! tables, whose ids an unchanged run confirms file by file) reads its whole id column into
//! memory once and answers from there: at most 32 bytes per id, paid for by at least one
//! eighth as many hits — a `pread` per file was a tenth of an unchanged run's time.
//!
//! A table that fails its checks (size, magic, fanout not ascending or not ending at n) is not
//! used; the caller rebuilds it from the index object. The file is trusted like the rest of the
//! user's cache directory (mode 0600): ids it lists are deduplicated against.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tresor_format::{BlobId, ObjectId};

/// First bytes of a table file; the last one is the layout's version.
pub const MAGIC: &[u8; 8] = b"TRDEDUP\x02";
/// Bytes before the list of superseded objects.
const HEADER: u64 = 8 + 32 + 8 + 1 + 4;
/// Most superseded objects a table lists.
const MAX_RETIRED: u32 = 1 << 20;
/// Largest prefix width, bits.
const MAX_BITS: u8 = 16;
/// A table reads its id column into memory once its candidates were read from the file more
/// than `count / HOT_SHARE` times (and at least [`HOT_MIN`] times).
pub const HOT_SHARE: u64 = 8;
/// See [`HOT_SHARE`].
pub const HOT_MIN: u64 = 64;

/// An open table: the fanout and suffixes in memory, the ids read from the file on demand.
#[derive(Debug)]
pub struct Table {
    /// The table file, opened again at the first lookup (an open table holds no descriptor
    /// until then: hundreds of open tables would grow the descriptor table, which stalls a
    /// threaded process for milliseconds).
    path: std::path::PathBuf,
    file: OnceLock<Option<File>>,
    /// Signing public key of the index object's writer.
    pub signer: [u8; 32],
    /// Index objects the object supersedes.
    pub supersedes: Vec<ObjectId>,
    count: u64,
    bits: u8,
    fanout: Vec<u32>,
    /// The suffix column, read at the first lookup (empty when that read fails).
    suffix: OnceLock<Vec<u16>>,
    suffix_at: u64,
    ids_at: u64,
    /// Lookups that read candidates from the file.
    reads: AtomicU64,
    /// The id column, once the table is hot ([`HOT_SHARE`]; empty when that read fails).
    ids: OnceLock<Vec<[u8; 32]>>,
}

/// The first 8 bytes of an id as a big-endian number (ids are uniformly random).
fn key(id: &BlobId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(b)
}

/// The bucket of an id: its first `bits` bits.
fn prefix(k: u64, bits: u8) -> usize {
    if bits == 0 {
        0
    } else {
        (k >> (64 - u32::from(bits))) as usize
    }
}

/// The 16 bits after the prefix.
fn suffix_of(k: u64, bits: u8) -> u16 {
    (k >> (48 - u32::from(bits))) as u16
}

/// Prefix width for `n` ids: buckets of 64 to 128 ids, at most [`MAX_BITS`].
fn bits_for(n: usize) -> u8 {
    let mut b = 0u8;
    while b < MAX_BITS && (n >> (b + 7)) > 0 {
        b += 1;
    }
    b
}

/// Write the table of `ids` written by `signer` to `out`; `ids` is sorted and deduplicated in
/// place (the caller keeps it).
///
/// # Errors
/// I/O errors of `out`.
pub fn encode_to(
    out: &mut impl Write,
    signer: &[u8; 32],
    supersedes: &[ObjectId],
    ids: &mut Vec<BlobId>,
) -> std::io::Result<()> {
    ids.sort_unstable_by_key(|a| a.0);
    ids.dedup();
    let bits = bits_for(ids.len());
    let mut fanout = vec![0u32; (1usize << bits) + 1];
    for id in ids.iter() {
        fanout[prefix(key(id), bits) + 1] += 1;
    }
    for i in 1..fanout.len() {
        fanout[i] += fanout[i - 1];
    }
    out.write_all(MAGIC)?;
    out.write_all(signer)?;
    out.write_all(&(ids.len() as u64).to_le_bytes())?;
    out.write_all(&[bits])?;
    let retired = u32::try_from(supersedes.len()).map_err(std::io::Error::other)?;
    out.write_all(&retired.to_le_bytes())?;
    for r in supersedes {
        out.write_all(&r.0)?;
    }
    for f in &fanout {
        out.write_all(&f.to_le_bytes())?;
    }
    for id in ids.iter() {
        out.write_all(&suffix_of(key(id), bits).to_le_bytes())?;
    }
    for id in ids.iter() {
        out.write_all(&id.0)?;
    }
    Ok(())
}

/// The table file's bytes for `ids` written by `signer`, superseding `supersedes`.
pub fn encode(signer: &[u8; 32], supersedes: &[ObjectId], mut ids: Vec<BlobId>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_to(&mut out, signer, supersedes, &mut ids).expect("writing to a Vec");
    out
}

/// Write a table atomically (a temporary file renamed into place), mode 0600. `ids` is sorted
/// and deduplicated in place: a caller whose write fails still has them.
///
/// # Errors
/// I/O errors.
pub fn write(
    path: &Path,
    signer: &[u8; 32],
    supersedes: &[ObjectId],
    ids: &mut Vec<BlobId>,
) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 16, f);
    encode_to(&mut w, signer, supersedes, ids)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The header of a table file: signer, count, prefix bits, superseded objects. `None` when
/// it is not one.
fn header(file: &mut File) -> Option<([u8; 32], u64, u8, u32)> {
    let mut h = [0u8; HEADER as usize];
    file.read_exact(&mut h).ok()?;
    if &h[..8] != MAGIC || h[48] > MAX_BITS {
        return None;
    }
    let signer: [u8; 32] = h[8..40].try_into().ok()?;
    let count = u64::from_le_bytes(h[40..48].try_into().ok()?);
    let retired = u32::from_le_bytes(h[49..53].try_into().ok()?);
    (retired <= MAX_RETIRED).then_some((signer, count, h[48], retired))
}

impl Table {
    /// Open and check a table file: its size must match its header, its fanout ascend and end
    /// at its count. `None` when absent, short, or failing a check.
    pub fn open(path: &Path) -> Option<Table> {
        let mut file = File::open(path).ok()?;
        let (signer, count, bits, retired) = header(&mut file)?;
        let slots = (1u64 << bits) + 1;
        let fanout_at = HEADER + u64::from(retired) * 32;
        let suffix_at = fanout_at + slots * 4;
        let ids_at = suffix_at + count.checked_mul(2)?;
        let size = ids_at.checked_add(count.checked_mul(32)?)?;
        if file.metadata().ok()?.len() != size || count > u64::from(u32::MAX) {
            return None;
        }
        let mut raw = vec![0u8; retired as usize * 32];
        file.read_exact(&mut raw).ok()?;
        let supersedes = raw
            .chunks_exact(32)
            .map(|c| ObjectId(c.try_into().expect("32 bytes")))
            .collect();
        let mut raw = vec![0u8; slots as usize * 4];
        file.read_exact(&mut raw).ok()?;
        let fanout: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let ascending = fanout.first() == Some(&0) && fanout.windows(2).all(|w| w[0] <= w[1]);
        if !ascending || u64::from(*fanout.last()?) != count {
            return None;
        }
        Some(Table {
            path: path.to_path_buf(),
            file: OnceLock::new(),
            signer,
            supersedes,
            count,
            bits,
            fanout,
            suffix: OnceLock::new(),
            suffix_at,
            ids_at,
            reads: AtomicU64::new(0),
            ids: OnceLock::new(),
        })
    }

    /// The table file, opened at the first call (`None` when it cannot be opened any more).
    fn file(&self) -> Option<&File> {
        self.file
            .get_or_init(|| File::open(&self.path).ok())
            .as_ref()
    }

    /// The column of `N`-byte values at `at` of the file, one per id (empty when it cannot be
    /// read).
    fn column<const N: usize>(&self, at: u64) -> Vec<[u8; N]> {
        let mut raw = vec![0u8; self.count as usize * N];
        let read = self.file().map(|f| f.read_exact_at(&mut raw, at));
        if !matches!(read, Some(Ok(()))) {
            return Vec::new();
        }
        raw.chunks_exact(N)
            .map(|c| c.try_into().expect("N bytes"))
            .collect()
    }

    /// The suffix column, read from the file at the first call.
    fn suffix(&self) -> &[u16] {
        self.suffix.get_or_init(|| {
            let raw = self.column::<2>(self.suffix_at);
            raw.into_iter().map(u16::from_le_bytes).collect()
        })
    }

    /// Number of ids.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the table lists no id.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the table holds in memory (fanout, and suffixes and ids once loaded).
    pub fn memory(&self) -> usize {
        self.fanout.len() * 4
            + self.suffix.get().map_or(0, |s| s.len() * 2)
            + self.ids.get().map_or(0, |s| s.len() * 32)
    }

    /// Whether the id column is held in memory.
    pub fn is_hot(&self) -> bool {
        self.ids.get().is_some_and(|v| !v.is_empty())
    }

    /// The id column once this table is hot: read from the file at the lookup that makes it so.
    fn hot_ids(&self) -> Option<&[[u8; 32]]> {
        if let Some(ids) = self.ids.get() {
            return (!ids.is_empty()).then_some(ids.as_slice());
        }
        let reads = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        if reads <= HOT_MIN.max(self.count / HOT_SHARE) {
            return None;
        }
        let ids = self.ids.get_or_init(|| self.column::<32>(self.ids_at));
        (!ids.is_empty()).then_some(ids.as_slice())
    }

    /// Whether the table lists `id`. A read error answers `false` (the blob is written again).
    pub fn contains(&self, id: &BlobId) -> bool {
        let k = key(id);
        let p = prefix(k, self.bits);
        let (lo, hi) = (self.fanout[p] as usize, self.fanout[p + 1] as usize);
        let suffix = self.suffix();
        let Some(bucket) = suffix.get(lo..hi) else {
            return false;
        };
        let s = suffix_of(k, self.bits);
        let start = bucket.partition_point(|&x| x < s);
        let candidates = bucket[start..].iter().take_while(|&&x| x == s).count();
        let range = lo + start..lo + start + candidates;
        if candidates == 0 {
            return false;
        }
        if let Some(ids) = self.hot_ids() {
            return ids.get(range).is_some_and(|c| c.contains(&id.0));
        }
        let Some(file) = self.file() else {
            return false;
        };
        let mut buf = [0u8; 32];
        range
            .map(|i| self.ids_at + i as u64 * 32)
            .any(|at| file.read_exact_at(&mut buf, at).is_ok() && buf == id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(seed: u64, n: usize) -> Vec<BlobId> {
        (0..n as u64)
            .map(|i| {
                let h = blake3::hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat());
                BlobId(*h.as_bytes())
            })
            .collect()
    }

    #[test]
    fn every_listed_id_is_found_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, 7, 8, 9, 1000, 70_000] {
            let path = dir.path().join(format!("t{n}"));
            let mut listed = ids(1, n);
            // Duplicates are stored once.
            listed.extend(listed.clone().into_iter().take(3));
            write(&path, &[7u8; 32], &[ObjectId([n as u8; 32])], &mut listed).unwrap();
            let t = Table::open(&path).unwrap();
            assert_eq!(t.len(), n as u64);
            assert!(
                t.memory() <= 8 + n / 16,
                "n = {n}: only the fanout before a lookup"
            );
            assert_eq!(t.signer, [7u8; 32]);
            assert_eq!(t.supersedes, vec![ObjectId([n as u8; 32])]);
            assert!(ids(1, n).iter().all(|id| t.contains(id)), "n = {n}");
            assert!(!ids(2, 2000).iter().any(|id| t.contains(id)), "n = {n}");
            // Every id looked up: hot from HOT_MIN reads on, then 34 bytes per id in memory,
            // plus a fanout of at most 4 bytes per 64 ids.
            assert_eq!(t.is_hot(), n as u64 > HOT_MIN, "n = {n}");
            let column = if t.is_hot() { 32 } else { 0 };
            assert!(
                t.memory() <= 8 + n * (2 + column) + n / 16,
                "n = {n}: {}",
                t.memory()
            );
        }
    }

    #[test]
    fn a_table_holds_its_ids_in_memory_only_once_an_eighth_of_them_were_hits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let n = 8_000;
        write(&path, &[7u8; 32], &[], &mut ids(1, n)).unwrap();
        let t = Table::open(&path).unwrap();
        // Half as many hits as it takes, and misses: almost all without a candidate to read
        // (about 128 / 2^16 of them read one), so they do not make it hot.
        let hits = n / HOT_SHARE as usize / 2;
        assert!(ids(1, hits).iter().all(|id| t.contains(id)));
        assert!(!ids(2, 50_000).iter().any(|id| t.contains(id)));
        assert!(!t.is_hot());
        assert!(t.memory() <= 8 + n * 2 + n / 16, "{}", t.memory());
        // The next hit reads the column; every answer stays the same.
        assert!(ids(1, n).iter().all(|id| t.contains(id)));
        assert!(t.is_hot());
        assert!(t.memory() >= n * 34, "{}", t.memory());
        assert!(!ids(2, 50_000).iter().any(|id| t.contains(id)));
        // Ids that share a bucket and a suffix with listed ones are told apart from memory too.
        let mut near = ids(1, 100);
        for id in &mut near {
            id.0[31] ^= 1;
        }
        assert!(!near.iter().any(|id| t.contains(id)));
    }

    #[test]
    fn an_open_table_holds_no_descriptor_until_its_first_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let paths: Vec<_> = (0..64u64)
            .map(|i| {
                let p = dir.path().join(format!("t{i}"));
                write(&p, &[0; 32], &[], &mut ids(i, 10)).unwrap();
                p
            })
            .collect();
        let before = fds();
        let tables: Vec<Table> = paths.iter().map(|p| Table::open(p).unwrap()).collect();
        // Other tests' threads open files meanwhile: far fewer than 64 more.
        assert!(
            fds() < before + 16,
            "{} descriptors before, {} after",
            before,
            fds()
        );
        assert!(tables[5].contains(&ids(5, 10)[3]));
        assert!(!tables[6].contains(&ids(5, 10)[3]));
    }

    #[test]
    fn ids_sharing_their_first_bytes_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        // Same first 8 bytes (same bucket and suffix), different tails.
        let mk = |tail: u8| {
            let mut b = [0xAB; 32];
            b[31] = tail;
            BlobId(b)
        };
        write(&path, &[0; 32], &[], &mut vec![mk(1), mk(3), mk(5)]).unwrap();
        let t = Table::open(&path).unwrap();
        assert!(t.contains(&mk(1)) && t.contains(&mk(3)) && t.contains(&mk(5)));
        assert!(!t.contains(&mk(2)) && !t.contains(&mk(4)) && !t.contains(&mk(6)));
    }

    #[test]
    fn damaged_files_are_refused_and_no_input_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let good = encode(
            &[1; 32],
            &[ObjectId([4; 32]), ObjectId([5; 32])],
            ids(3, 100),
        );
        let fanout_at = HEADER as usize + 64;
        let probe = ids(3, 1)[0];
        // Cut short, one byte too many, wrong magic, a fanout that does not ascend or end at n.
        let mut cases = vec![good[..good.len() - 1].to_vec(), [&good[..], &[0]].concat()];
        let mut magic = good.clone();
        magic[7] = 1;
        cases.push(magic);
        let mut fan = good.clone();
        fan[fanout_at + 4..fanout_at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(fan);
        // More superseded objects than the file holds, or than any table may list.
        for retired in [3u32, MAX_RETIRED + 1, u32::MAX] {
            let mut r = good.clone();
            r[49..53].copy_from_slice(&retired.to_le_bytes());
            cases.push(r);
        }
        let mut bits = good.clone();
        bits[48] = 17;
        cases.push(bits);
        for c in &cases {
            std::fs::write(&path, c).unwrap();
            assert!(Table::open(&path).is_none());
        }
        // Any byte flipped: open refuses or lookups answer without panicking.
        for i in (0..good.len()).step_by(7) {
            let mut b = good.clone();
            b[i] ^= 0x5A;
            std::fs::write(&path, &b).unwrap();
            if let Some(t) = Table::open(&path) {
                let _ = t.contains(&probe);
            }
        }
        std::fs::write(&path, &good).unwrap();
        assert!(Table::open(&path).unwrap().contains(&probe));
    }
}
