//! `repair index`: rebuild the index from the packs in storage.
//!
//! It reads every pack's header (two range reads: trailer, then sealed header), and writes new
//! index objects listing every pack whose header opens; the last of them supersedes every index
//! object that was there (accepted or damaged; objects of unknown or revoked keys are left
//! alone, readers ignore them anyway). Then it deletes the superseded objects and every prune
//! record except forget records (all packs are indexed again, so condemned packs are simply
//! live again; the next prune condemns them anew).
//!
//! Trust (format §13): writers deduplicate against index objects of full keys, so re-listing a
//! pack under a full key must not launder blobs a put-only key uploaded under false ids. Packs
//! a full key's index object listed are taken as their headers say; every other pack is read
//! whole and each blob decoded and checked against its id, and only blobs that verify are
//! listed. With `read_data` (restic's `repair index --read-all-packs`) every pack is read
//! whole that way, which finds bit flips in packs a full key wrote.
//!
//! Salvage (restic's `repair packs`): a pack whose bytes do not hash to its name is damaged.
//! Its blobs that still decode and match their ids are copied into new packs, and the damaged
//! pack is left unindexed: readers never use it again, `check` names it, and the next `prune`
//! deletes it. Blobs that do not verify are left out of the index; a later backup of the same
//! files uploads them again, and `repair snapshots` writes snapshots without the files that
//! cannot be healed. A pack whose header does not open is salvaged the same way from what the
//! index objects of full keys listed in it (without `read_data`: that listing is kept as it is).

use super::delete;
use crate::Progress;
use crate::error::{CoreError, Result};
use crate::repo::index::{IdMap, IdSet};
use crate::repo::index_writer::IndexWriter;
use crate::repo::limits;
use crate::repo::packer::Packer;
use crate::repo::packs::{WholePack, read_pack_header};
use crate::repo::records::load_records;
use crate::repo::trust::Verdict;
use crate::repo::{Defect, Repository};
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::pack;
use tresor_storage::{ErrorKind, Kind};

/// Options of [`repair_index_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RepairIndexOptions {
    /// Write and delete nothing; report what would be done.
    pub dry_run: bool,
    /// Read every pack whole and verify each blob, not only packs no full key vouched for.
    pub read_data: bool,
    /// Compression and encryption threads for salvaged blobs (0 counts as 1).
    pub workers: usize,
}

/// What `repair index` did (or would do, in a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairIndexReport {
    /// Nothing was written or deleted.
    pub dry_run: bool,
    /// Packs listed by the new index.
    pub packs: usize,
    /// Blobs listed by the new index.
    pub blobs: u64,
    /// Packs read whole and verified blob by blob.
    pub packs_verified: usize,
    /// Blobs left out because they did not verify: `blob id in pack id: error`.
    pub blobs_dropped: Vec<String>,
    /// Damaged packs (bytes that do not hash to the name, or a header that does not open)
    /// whose intact blobs were copied into new packs; they are left unindexed for `prune`.
    pub packs_salvaged: Vec<ObjectId>,
    /// Blobs copied out of damaged packs (counted, not copied, in a dry run).
    pub blobs_salvaged: u64,
    /// Packs whose header could not be read: `pack id: error` (what a full key's index object
    /// listed in them is kept, or salvaged with `read_data`).
    pub unreadable: Vec<String>,
    /// Index objects that could not be opened (replaced): `index id: error`.
    pub damaged_index: Vec<String>,
    /// Packs an index object listed that are not in storage.
    pub missing_packs: Vec<ObjectId>,
    /// New index objects (those of salvaged blobs included).
    pub index_written: Vec<ObjectId>,
    /// Index objects superseded by the new ones.
    pub index_superseded: usize,
    /// Index objects deleted.
    pub index_deleted: usize,
    /// Prune records deleted.
    pub records_deleted: usize,
    /// Objects the storage refused to delete.
    pub undeletable: Vec<String>,
}

impl RepairIndexReport {
    /// Whether data is lost: blobs left out, packs unreadable or missing. What a backup of the
    /// same files can upload again or `repair snapshots` can work around; not a failure of
    /// the repair itself.
    pub fn damage_remains(&self) -> bool {
        !self.unreadable.is_empty()
            || !self.blobs_dropped.is_empty()
            || !self.missing_packs.is_empty()
    }
}

/// Rebuild the index from the packs, header by header (see the module documentation).
///
/// # Errors
/// As [`repair_index_with`].
pub fn repair_index(
    repo: &Repository,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<RepairIndexReport> {
    let opts = RepairIndexOptions {
        dry_run,
        ..RepairIndexOptions::default()
    };
    repair_index_with(repo, &opts, progress)
}

/// Rebuild the index from the packs (see the module documentation).
///
/// # Errors
/// [`CoreError::PutOnly`], [`CoreError::Invalid`] without a full key, storage errors. Damaged
/// packs and index objects are reported, not raised.
pub fn repair_index_with(
    repo: &Repository,
    opts: &RepairIndexOptions,
    progress: &dyn Progress,
) -> Result<RepairIndexReport> {
    repo.require_read("repair index")?;
    repo.require_full_signer()?;
    let mut r = RepairIndexReport {
        dry_run: opts.dry_run,
        ..RepairIndexReport::default()
    };
    let old = survey_index(repo, &mut r)?;
    let mut packs = repo.storage().list(Kind::Pack)?;
    packs.sort();
    let sizes: IdMap<ObjectId, u64> = packs
        .iter()
        .filter_map(|(n, s)| n.parse().ok().map(|id| (id, *s)))
        .collect();
    let mut run = Run {
        repo,
        opts,
        old: &old,
        writer: IndexWriter::new(repo, opts.dry_run),
        salvager: (!opts.dry_run).then(|| salvage_packer(repo, opts.workers)),
        r,
        progress,
    };
    let mut headless = IdSet::default();
    for (name, size) in &packs {
        if let Ok(id) = name.parse::<ObjectId>() {
            run.pack(&id, *size, &mut headless)?;
        }
    }
    if !headless.is_empty() {
        run.relist_headless(headless, &sizes)?;
    }
    let Run {
        mut writer,
        salvager,
        mut r,
        ..
    } = run;
    if let Some(p) = salvager {
        r.index_written.extend(p.finish()?.index_objects);
    }
    r.missing_packs = old
        .listed
        .iter()
        .filter(|id| !sizes.contains_key(*id))
        .copied()
        .collect();
    r.missing_packs.sort();
    r.index_superseded = old.supersede.len();
    writer.finish(old.supersede.clone())?;
    r.index_written.extend(writer.written.iter().copied());
    if !opts.dry_run {
        delete_superseded(repo, &old.supersede, &mut r)?;
    }
    Ok(r)
}

/// What the index objects there were say: which to replace, which packs a full key vouched for.
#[derive(Default)]
struct OldIndex {
    /// Index objects the new ones supersede.
    supersede: Vec<ObjectId>,
    /// Accepted index objects of full keys.
    full_objects: Vec<ObjectId>,
    /// Packs an accepted index object of a full key lists.
    trusted: IdSet<ObjectId>,
    /// Packs any accepted index object lists.
    listed: IdSet<ObjectId>,
}

fn survey_index(repo: &Repository, r: &mut RepairIndexReport) -> Result<OldIndex> {
    let mut old = OldIndex::default();
    let mut names = repo.storage().list(Kind::Index)?;
    names.sort();
    for (name, size) in names {
        let id: ObjectId = name.parse()?;
        let opened = match repo.fetch(Kind::Index, &id, Some(size)) {
            Ok(b) => IndexFile::open(repo.key(), &b).map_err(CoreError::from),
            Err((_, CoreError::Storage(e))) if e.kind == ErrorKind::NotFound => continue,
            // A failure to read says nothing about the object: never replace it for that.
            Err((Defect::Unreadable, e)) => return Err(e),
            Err((_, e)) => Err(e),
        };
        match opened {
            Ok((signer, f)) => {
                let v = repo.trust().verdict(&signer, &id);
                if !matches!(v, Verdict::Full | Verdict::PutOnly) {
                    continue;
                }
                old.supersede.push(id);
                old.listed.extend(f.packs.iter().map(|p| p.id));
                if v == Verdict::Full {
                    old.trusted.extend(f.packs.iter().map(|p| p.id));
                    old.full_objects.push(id);
                }
            }
            Err(e) => {
                r.damaged_index.push(format!("index {id}: {e}"));
                old.supersede.push(id);
            }
        }
    }
    Ok(old)
}

/// A packer for blobs salvaged out of damaged packs, signed by the repairing key.
fn salvage_packer(repo: &Repository, workers: usize) -> Packer {
    let cfg = repo.config();
    Packer::with_version(
        repo.storage().clone(),
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        cfg.version,
        workers.max(1),
        false,
    )
}

/// One `repair index` run over the packs.
struct Run<'a> {
    repo: &'a Repository,
    opts: &'a RepairIndexOptions,
    old: &'a OldIndex,
    writer: IndexWriter<'a>,
    /// None in a dry run.
    salvager: Option<Packer>,
    r: RepairIndexReport,
    progress: &'a dyn Progress,
}

impl Run<'_> {
    /// Index one pack: by its header, or read whole and verified, or salvaged. Packs whose
    /// header does not open and that a full key listed go to `headless`.
    fn pack(&mut self, id: &ObjectId, size: u64, headless: &mut IdSet<ObjectId>) -> Result<()> {
        self.progress.file_done(0);
        let header = match read_pack_header(self.repo, id, size) {
            Ok(h) => h,
            Err(e) if !e.is_damage() => return Err(e),
            Err(e) => {
                self.r.unreadable.push(e.to_string());
                if self.old.trusted.contains(id) {
                    headless.insert(*id);
                }
                return Ok(());
            }
        };
        let ip = IndexPack {
            id: *id,
            data_key: header.data_key,
            blobs: header.blobs,
        };
        if self.opts.read_data || !self.old.trusted.contains(id) {
            self.verify_whole(ip, size)
        } else {
            self.index(ip)
        }
    }

    fn index(&mut self, ip: IndexPack) -> Result<()> {
        if !ip.blobs.is_empty() {
            self.r.packs += 1;
            self.r.blobs += ip.blobs.len() as u64;
            self.writer.push(ip)?;
        }
        Ok(())
    }

    /// Read a pack whole; list the blobs of `ip` that verify, or salvage them when the pack's
    /// bytes do not match its name.
    fn verify_whole(&mut self, mut ip: IndexPack, size: u64) -> Result<()> {
        let Some(bytes) = self.read_whole(&ip.id, size)? else {
            return Ok(());
        };
        if ObjectId::of(&bytes) != ip.id {
            return self.salvage_from(&bytes, ip);
        }
        self.verified_blobs(&bytes, &mut ip, false);
        self.index(ip)
    }

    /// The pack's bytes (counted as verified), or None (reported) when it is over its limit.
    fn read_whole(&mut self, id: &ObjectId, size: u64) -> Result<Option<Vec<u8>>> {
        let limit = limits::max_object_size(Kind::Pack, self.repo.config());
        let storage = self.repo.storage();
        match limits::read_bounded(
            storage.as_ref(),
            Kind::Pack,
            &id.to_hex(),
            Some(size),
            limit,
        ) {
            Ok(b) => {
                self.r.packs_verified += 1;
                self.progress.bytes_read(b.len() as u64);
                Ok(Some(b))
            }
            Err(e @ CoreError::Storage(_)) => Err(e),
            Err(e) => {
                self.r.unreadable.push(format!("pack {id}: {e}"));
                Ok(None)
            }
        }
    }

    /// Keep in `ip` the blobs that decode and match their ids; with `keep`, returns their
    /// plaintexts in the same order. The others are reported as dropped.
    fn verified_blobs(&mut self, bytes: &[u8], ip: &mut IndexPack, keep: bool) -> Vec<Vec<u8>> {
        let key = self.repo.key();
        let mut plain = Vec::new();
        let dropped = &mut self.r.blobs_dropped;
        let mut whole = WholePack::new(bytes, &ip.data_key, &key.id_key);
        ip.blobs.retain(|b| match whole.blob(b) {
            Ok(p) => {
                if keep {
                    plain.push(p);
                }
                true
            }
            Err(e) => {
                dropped.push(format!("blob {} in pack {}: {e}", b.id, ip.id));
                false
            }
        });
        plain
    }

    /// Copy the blobs of a damaged pack that verify into new packs; the pack stays unindexed.
    fn salvage_from(&mut self, bytes: &[u8], mut ip: IndexPack) -> Result<()> {
        let plain = self.verified_blobs(bytes, &mut ip, true);
        self.salvage(&ip, plain)
    }

    fn salvage(&mut self, ip: &IndexPack, plain: Vec<Vec<u8>>) -> Result<()> {
        self.r.packs_salvaged.push(ip.id);
        self.r.blobs_salvaged += ip.blobs.len() as u64;
        if let Some(p) = &self.salvager {
            for (b, data) in ip.blobs.iter().zip(plain) {
                p.add(b.blob_type, b.id, data)?;
            }
        }
        Ok(())
    }

    /// Packs a full key listed whose header does not open: salvage what the listings place
    /// in them (with `read_data`), or keep the listings' blobs that lie within the bytes.
    fn relist_headless(
        &mut self,
        mut headless: IdSet<ObjectId>,
        sizes: &IdMap<ObjectId, u64>,
    ) -> Result<()> {
        for oid in &self.old.full_objects {
            let bytes = self.repo.read_object(Kind::Index, oid)?;
            let (_, f) = IndexFile::open(self.repo.key(), &bytes)?;
            for mut p in f.packs {
                if !headless.remove(&p.id) {
                    continue;
                }
                let size = sizes.get(&p.id).copied().unwrap_or(0);
                if self.opts.read_data {
                    self.salvage_headless(p, size)?;
                    continue;
                }
                p.blobs.retain(|b| {
                    b.offset
                        .saturating_add(b.length)
                        .saturating_add(pack::TRAILER_LEN)
                        <= size
                });
                self.index(p)?;
            }
        }
        Ok(())
    }

    fn salvage_headless(&mut self, p: IndexPack, size: u64) -> Result<()> {
        match self.read_whole(&p.id, size)? {
            Some(bytes) => self.salvage_from(&bytes, p),
            None => Ok(()),
        }
    }
}

/// Delete the superseded index objects, then every prune record but forget records (every
/// pack is indexed again; forget records say which snapshots were deleted on purpose, §16).
fn delete_superseded(
    repo: &Repository,
    supersede: &[ObjectId],
    r: &mut RepairIndexReport,
) -> Result<()> {
    for id in supersede {
        if delete(repo, Kind::Index, id, &mut r.undeletable)? {
            r.index_deleted += 1;
        }
    }
    let records = match repo.storage().list(Kind::PruneRecord) {
        Ok(l) => l,
        Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let keep: IdSet<ObjectId> = load_records(repo)?
        .forgotten
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for (name, _) in records {
        let id: ObjectId = name.parse()?;
        if !keep.contains(&id) && delete(repo, Kind::PruneRecord, &id, &mut r.undeletable)? {
            r.records_deleted += 1;
        }
    }
    Ok(())
}
