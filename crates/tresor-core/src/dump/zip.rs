//! The zip writer (streaming, with data descriptors, deflate): directories, regular files and
//! symlinks (as zip symlink entries: the Unix mode's file type is a symlink, the content its
//! target). Names are the raw bytes of the snapshot's names. Zip has no hard links (each path
//! of a hard-linked file is written with its content), no fifos, sockets or devices (left out
//! and counted as skipped), no owners and no extended attributes. Times: the MS-DOS time in
//! UTC (2-second steps) and an extended-timestamp field with the whole seconds.

use super::{Content, Dumped, io_error, shown, walk};
use crate::error::{CoreError, Result};
use crate::metapolicy::MetaPolicy;
use crate::repo::blobs::BlobReader;
use std::io::Write;
use tresor_format::BlobId;
use tresor_format::tree::{Node, NodeKind};
use zip::write::{FullFileOptions, StreamWriter, ZipWriter};
use zip::{CompressionMethod, DateTime};

/// Files of at least this many bytes get zip64 sizes (with room for deflate's overhead).
const LARGE: u64 = 0xF000_0000;

type Zip<'w> = ZipWriter<StreamWriter<&'w mut dyn Write>>;

/// Write the contents of `tree` to `out` as a zip archive.
///
/// # Errors
/// See [`super::dump`].
pub(super) fn write(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    policy: &MetaPolicy,
    out: &mut dyn Write,
) -> Result<Dumped> {
    let mut z: Zip<'_> = ZipWriter::new_stream(out);
    let mut d = Dumped::default();
    let walked = walk(reader, tree, &mut |path, node| {
        entry(&mut z, reader, policy, &mut d, path, node)
    });
    if let Err(e) = walked {
        // No central directory after a failure: the stream must not look complete.
        std::mem::forget(z);
        return Err(e);
    }
    z.finish().map_err(zip_error)?;
    Ok(d)
}

/// Write one node at `path`.
fn entry(
    z: &mut Zip<'_>,
    reader: &BlobReader<'_>,
    policy: &MetaPolicy,
    d: &mut Dumped,
    path: &[u8],
    node: &Node,
) -> Result<()> {
    let (mode, _, withheld) = shown(policy, node);
    let opts = FullFileOptions::default().last_modified_time(dos_time(node.mtime.secs));
    let opts = match u32::try_from(node.mtime.secs) {
        Ok(s) => opts
            .with_extended_timestamp(Some(s), None, None)
            .map_err(zip_error)?,
        Err(_) => opts,
    };
    let (kind, stored) = match node.kind {
        NodeKind::File => (0o100_000, false),
        NodeKind::Dir => (0o040_000, true),
        NodeKind::Symlink => (0o120_000, true),
        _ => {
            d.skipped += 1;
            return Ok(());
        }
    };
    d.withheld += withheld;
    let method = if stored {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    };
    let name = match node.kind {
        NodeKind::Dir => [path, b"/"].concat(),
        _ => path.to_vec(),
    };
    let opts = opts
        .compression_method(method)
        .external_attributes((kind | mode) << 16)
        .large_file(node.size >= LARGE);
    if node.kind == NodeKind::Dir {
        // The crate writes directory entries (no data descriptor) only through add_directory,
        // which takes a string: a directory whose name is not UTF-8 gets no entry of its own
        // (extracting its files creates it).
        let Ok(name) = String::from_utf8(name) else {
            d.skipped += 1;
            return Ok(());
        };
        d.dirs += 1;
        return z.add_directory(name, opts).map_err(zip_error);
    }
    z.start_file_with_options(opts.name(&name))
        .map_err(zip_error)?;
    match node.kind {
        NodeKind::File => {
            let mut c = Content::new(reader, node, path);
            d.bytes += std::io::copy(&mut c, z).map_err(|e| io_error(e, "output"))?;
            d.files += 1;
        }
        NodeKind::Symlink => {
            z.write_all(&node.target)
                .map_err(|e| io_error(e, "output"))?;
            d.others += 1;
        }
        _ => {}
    }
    Ok(())
}

/// The MS-DOS date and time (UTC) of `secs`; 1980-01-01 for times outside its range.
fn dos_time(secs: i64) -> DateTime {
    let Ok(t) = jiff::Timestamp::from_second(secs) else {
        return DateTime::default();
    };
    let c = jiff::tz::TimeZone::UTC.to_datetime(t);
    let (Ok(y), Ok(mo), Ok(da), Ok(h), Ok(mi), Ok(s)) = (
        u16::try_from(c.year()),
        u8::try_from(c.month()),
        u8::try_from(c.day()),
        u8::try_from(c.hour()),
        u8::try_from(c.minute()),
        u8::try_from(c.second()),
    ) else {
        return DateTime::default();
    };
    DateTime::from_date_and_time(y, mo, da, h, mi, s).unwrap_or_default()
}

/// A zip error as a [`CoreError`] (I/O errors keep the repository error they carry).
fn zip_error(e: zip::result::ZipError) -> CoreError {
    match e {
        zip::result::ZipError::Io(e) => io_error(e, "output"),
        other => CoreError::Invalid(format!("zip: {other}")),
    }
}
