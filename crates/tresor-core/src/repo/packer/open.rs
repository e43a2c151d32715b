//! An open pack of a worker: a [`PackBuilder`] whose stored bytes go to a spool file
//! ([`super::spool`]) once [`SPILL_AT`] bytes are held, when the packer spools.

use super::spool::{SPILL_AT, Spool, Spooled};
use crate::error::Result;
use std::path::Path;
use std::sync::Arc;
use tresor_format::BlobId;
use tresor_format::ObjectId;
use tresor_format::blob::BlobType;
use tresor_format::crypto::MasterKey;
use tresor_format::pack::{PackBuilder, PackHeader};

/// A finished pack's bytes, for the uploader.
#[derive(Debug)]
pub(super) enum Finished {
    /// The whole pack in memory (it never held [`SPILL_AT`] bytes, or the packer does not
    /// spool).
    Bytes(Vec<u8>),
    /// The whole pack in a spool file.
    File(Spooled),
}

impl Finished {
    /// The pack's length in bytes.
    pub(super) fn len(&self) -> u64 {
        match self {
            Finished::Bytes(b) => b.len() as u64,
            Finished::File(f) => f.len,
        }
    }
}

/// A pack being filled, its first bytes perhaps in a spool file.
pub(super) struct OpenPack {
    b: PackBuilder,
    /// Where its spool file goes; `None`: the pack stays in memory.
    dir: Option<Arc<Path>>,
    spool: Option<Spool>,
}

impl OpenPack {
    /// Pack `b`, spooled in `dir` once it holds [`SPILL_AT`] bytes (never with `None`).
    pub(super) fn new(b: PackBuilder, dir: Option<Arc<Path>>) -> Self {
        OpenPack {
            b,
            dir,
            spool: None,
        }
    }

    /// Add a blob ([`PackBuilder::add`]); then, when [`SPILL_AT`] stored bytes are held and the
    /// packer spools, append them to the spool file (created on first use).
    ///
    /// # Errors
    /// Those of [`PackBuilder::add`], and of creating or writing the spool file
    /// ([`crate::CoreError::Storage`]).
    pub(super) fn add(&mut self, t: BlobType, id: BlobId, plain: &[u8]) -> Result<()> {
        self.b.add(t, id, plain)?;
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        if self.b.sealed_len() < SPILL_AT {
            return Ok(());
        }
        let spool = match &mut self.spool {
            Some(s) => s,
            none => none.insert(Spool::create(dir)?),
        };
        self.b.take_sealed(|bytes| spool.append(bytes))?;
        Ok(())
    }

    /// [`PackBuilder::size`], bytes.
    pub(super) fn size(&self) -> u64 {
        self.b.size()
    }

    /// [`PackBuilder::len`], blobs.
    pub(super) fn len(&self) -> usize {
        self.b.len()
    }

    /// Stored bytes held in memory, not yet in the spool file.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.b.sealed_len()
    }

    /// [`PackBuilder::is_empty`].
    pub(super) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    /// Finish the pack ([`PackBuilder::finish`]): its bytes, name and header, and a buffer to
    /// reuse for the next pack when the bytes are in a spool file.
    ///
    /// # Errors
    /// Those of [`PackBuilder::finish`] and of writing the spool file.
    pub(super) fn finish(
        self,
        key: &MasterKey,
    ) -> Result<(Finished, ObjectId, PackHeader, Option<Vec<u8>>)> {
        let (bytes, header) = self.b.finish(key)?;
        let Some(spool) = self.spool else {
            let id = ObjectId::of(&bytes);
            return Ok((Finished::Bytes(bytes), id, header, None));
        };
        let (file, hash) = spool.finish(&bytes)?;
        let id = ObjectId(*hash.as_bytes());
        Ok((Finished::File(file), id, header, Some(bytes)))
    }

    /// Take the pack apart ([`PackBuilder::drain`]), blobs in the spool file read back from it;
    /// the spool file is removed. Returns the pack buffer, cleared.
    ///
    /// # Errors
    /// Those of [`PackBuilder::drain`], reading the spool file, and the first error of `f`.
    pub(super) fn drain(
        self,
        id_key: &[u8; 32],
        f: impl FnMut(BlobType, BlobId, &[u8]) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let spool = self.spool;
        let read = |offset, len| match &spool {
            Some(s) => s.read_at(offset, len),
            None => Err(crate::CoreError::Damaged(format!(
                "pack bytes {offset} + {len} were taken out without a spool file"
            ))),
        };
        self.b.drain(id_key, read, f)
    }
}
