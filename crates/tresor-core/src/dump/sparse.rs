//! Sparse files in tar: the PAX format 1.0 of GNU tar (`GNU.sparse.major=1`,
//! `GNU.sparse.minor=0`, `GNU.sparse.name`, `GNU.sparse.realsize`; the entry's data is the map
//! — the number of regions, then each region's offset and length, decimal, one per line, padded
//! with NULs to 512 bytes — followed by the regions' bytes).
//!
//! The holes are the file's all-zero blobs: a blob is all zeros when its id is the keyed hash of
//! as many zeros as the index says it holds (the keyed hash binds the content, so such a blob
//! is not even loaded). The other blobs are loaded and verified, each of the index's length
//! (a blob of another length is damage: the map was made from the lengths).

use super::Content;
use crate::error::Result;
use crate::repo::blobs::BlobReader;
use std::collections::HashMap;
use tresor_format::BlobId;
use tresor_format::tree::Node;

/// A sparse file's tar data: the map block, and the blobs of its data regions.
pub(super) struct Sparse {
    /// The map, padded to 512 bytes.
    pub map: Vec<u8>,
    /// The non-zero blobs in order, each with its length.
    pub data: Vec<(BlobId, Option<u64>)>,
    /// Bytes of the data regions.
    pub data_len: u64,
}

impl Sparse {
    /// The entry's data size: map and regions.
    pub fn size(&self) -> u64 {
        self.map.len() as u64 + self.data_len
    }

    /// The entry's data as a reader.
    pub fn reader<'a>(&'a self, r: &'a BlobReader<'a>, path: &[u8]) -> impl std::io::Read + 'a {
        std::io::Read::chain(
            &self.map[..],
            Content::blobs(r, self.data.clone(), self.data_len, path),
        )
    }
}

/// The sparse map of `node` when it has all-zero blobs; `None` when it has none or a blob's
/// length is not indexed or above the largest chunk (then it is written whole).
pub(super) fn map(reader: &BlobReader<'_>, node: &Node) -> Result<Option<Sparse>> {
    let key = reader.repo().key();
    let max_chunk = u64::from(reader.repo().config().chunker.max_size);
    let mut zero_ids: HashMap<u64, BlobId> = HashMap::new();
    let mut regions: Vec<(u64, u64)> = Vec::new();
    let mut data = Vec::new();
    let (mut off, mut holes) = (0u64, false);
    for id in &node.content {
        let Some(loc) = reader.location(id) else {
            return Ok(None);
        };
        let len = u64::from(loc.raw_length);
        if len > max_chunk {
            return Ok(None);
        }
        let zero = *zero_ids
            .entry(len)
            .or_insert_with(|| key.blob_id(&vec![0u8; len as usize]));
        if zero == *id {
            holes = true;
        } else {
            match regions.last_mut() {
                Some((o, l)) if *o + *l == off => *l += len,
                _ => regions.push((off, len)),
            }
            data.push((*id, Some(len)));
        }
        off += len;
    }
    if !holes || off != node.size {
        return Ok(None);
    }
    if regions.last().is_none_or(|(o, l)| o + l != off) {
        regions.push((off, 0)); // the size, when the file ends in a hole
    }
    let data_len = regions.iter().map(|(_, l)| l).sum();
    Ok(Some(Sparse {
        map: map_block(&regions),
        data,
        data_len,
    }))
}

/// The map text, padded with NULs to a multiple of 512 bytes.
fn map_block(regions: &[(u64, u64)]) -> Vec<u8> {
    let mut m = format!("{}\n", regions.len());
    for (o, l) in regions {
        m.push_str(&format!("{o}\n{l}\n"));
    }
    let mut m = m.into_bytes();
    m.resize(m.len().next_multiple_of(512), 0);
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_text() {
        let m = super::map_block(&[(0, 5), (4096, 10), (9000, 0)]);
        assert_eq!(m.len(), 512);
        assert!(m.starts_with(b"3\n0\n5\n4096\n10\n9000\n0\n\0"));
        assert!(m[22..].iter().all(|b| *b == 0));
    }
}
