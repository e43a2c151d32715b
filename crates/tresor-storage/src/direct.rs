//! Writing with `O_DIRECT` (bypassing the page cache): the alignment it needs and an aligned
//! bounce buffer. Used by the local directory storage for packs and by restore for large files:
//! on virtual machines copying into fresh page-cache pages costs more CPU than the rest of
//! writing.

/// Alignment of `O_DIRECT` buffers, file offsets and lengths, in bytes: the page size, a
/// multiple of every logical block size in use.
pub const ALIGN: usize = 4096;
/// Size of a [`Bounce`] buffer, in bytes.
pub const CHUNK: usize = 4 << 20;

/// An aligned buffer of [`CHUNK`] bytes to copy data into before an `O_DIRECT` write; allocated
/// on first use and kept.
#[derive(Debug, Default)]
pub struct Bounce(Vec<u8>);

impl Bounce {
    /// The aligned [`CHUNK`] bytes (content unspecified).
    pub fn buf(&mut self) -> &mut [u8] {
        if self.0.len() < CHUNK + ALIGN {
            self.0 = vec![0u8; CHUNK + ALIGN];
        }
        let start = self.0.as_ptr().align_offset(ALIGN);
        &mut self.0[start..start + CHUNK]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_buffer_is_aligned_and_of_chunk_size() {
        let mut b = super::Bounce::default();
        let buf = b.buf();
        assert_eq!(buf.len(), super::CHUNK);
        assert_eq!(buf.as_ptr() as usize % super::ALIGN, 0);
    }
}
