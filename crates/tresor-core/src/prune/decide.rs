//! What happens to every pack (format §16, "One prune run", steps 3 and 4): a pure function of
//! what the plan found out about the packs, tested here on small tables.

use super::options::PruneOptions;
use super::report::PackAction;
use tresor_format::ObjectId;

/// What [`decide`] knows of one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackFacts {
    /// Pack id (orders partly used packs with the same unused fraction).
    pub id: ObjectId,
    /// Stored size; `None` when the pack is not in storage.
    pub size: Option<u64>,
    /// Listed by a live (not superseded) index object.
    pub live: bool,
    /// Stored bytes of the blobs its listing places in it.
    pub bytes: u64,
    /// Kept copies of used blobs in it ([`super::copies::choose`]).
    pub used_blobs: u32,
    /// Their stored bytes.
    pub used_bytes: u64,
    /// The pending generation holding it, if any: whether that generation is approved.
    pub generation: Option<bool>,
    /// In the `deleting` list of a live state.
    pub deleting: bool,
    /// No index lists it, no record holds it, and an earlier run saw it so already.
    pub seen_unindexed: bool,
    /// No backup can be running and no present index object lists it, superseded ones
    /// included (format §16, step 3): when `seen_unindexed` too, it is deleted at once.
    pub free: bool,
    /// Whether it lies in a cold storage class, and how long (asked only for indexed packs not
    /// wholly used, and only with [`PruneOptions::cold_probe`]).
    pub cold: Cold,
}

/// Whether a pack lies in a cold storage class (format §16.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cold {
    /// Readable as it is (or not asked).
    #[default]
    Hot,
    /// Cold, stored for less than its class's minimum storage duration (or for an unknown time).
    Young,
    /// Cold, stored for at least its class's minimum storage duration.
    Aged,
}

/// The unused space of indexed packs, and what the repack copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Space {
    /// Unused bytes in indexed packs before this run.
    pub unused_bytes: u64,
    /// Unused bytes tolerated (`max_unused` of the used bytes).
    pub max_unused_bytes: u64,
    /// Unused bytes left in kept packs.
    pub unused_after: u64,
    /// Blobs copied by the repack.
    pub repack_blobs: u64,
    /// Their bytes.
    pub repack_bytes: u64,
}

/// Decide per pack, given the stored bytes of the used blobs (one copy each):
///
/// * a pack that is not indexed (condemned, deleting or unindexed) and holds a kept copy is
///   **resurrected**;
/// * an indexed pack missing from storage is **dropped** from the index, one without used blobs
///   is **condemned**, a partly used one is **repacked** — most unused first, until the unused
///   bytes left in partly used packs are within `opts.max_unused`, leaving out packs that would
///   take the repack beyond `opts.max_repack_size` — or else **kept**; a cold pack
///   ([`Cold`]) is never repacked, and without used blobs it is **kept** while
///   [`Cold::Young`] unless `opts.cold_early_delete`;
/// * a pack of an approved generation, or in a `deleting` list and in no generation, is
///   **deleted**; one of a generation that is not approved **waits**;
/// * a pack no index lists and no record holds is **condemned** when an earlier run saw it so
///   already — **deleted** at once when no backup can be running and no index object lists it
///   at all (`free`) —, else remembered (**unindexed**);
/// * any other pack (not in storage, not indexed) is left as it is (**keep**).
pub fn decide(
    packs: &[PackFacts],
    used_bytes: u64,
    opts: &PruneOptions,
) -> (Vec<PackAction>, Space) {
    let mut space = Space {
        max_unused_bytes: opts.max_unused.limit(used_bytes),
        ..Space::default()
    };
    let mut candidates = Vec::new();
    let mut actions: Vec<PackAction> = packs
        .iter()
        .enumerate()
        .map(|(pos, p)| match p.live {
            false => dormant(p),
            true => {
                space.unused_bytes += unused(p);
                let a = indexed(p, opts);
                if a == PackAction::Keep && p.used_bytes < p.bytes && p.cold == Cold::Hot {
                    candidates.push(pos);
                }
                a
            }
        })
        .collect();
    repack(packs, candidates, opts, &mut actions, &mut space);
    (actions, space)
}

/// Stored bytes of a pack's blobs that are not kept copies of used blobs.
fn unused(p: &PackFacts) -> u64 {
    p.bytes - p.used_bytes.min(p.bytes)
}

/// An indexed pack, before the repack is chosen. A cold pack without used blobs stays until
/// its class's minimum storage duration has passed, unless `opts.cold_early_delete`.
fn indexed(p: &PackFacts, opts: &PruneOptions) -> PackAction {
    if p.size.is_none() {
        PackAction::Drop
    } else if p.used_blobs == 0 && p.cold == Cold::Young && !opts.cold_early_delete {
        PackAction::Keep
    } else if p.used_blobs == 0 {
        PackAction::Condemn
    } else {
        PackAction::Keep
    }
}

/// A pack no live index object lists.
fn dormant(p: &PackFacts) -> PackAction {
    if p.size.is_none() {
        return PackAction::Keep;
    }
    if p.used_blobs > 0 {
        return PackAction::Resurrect;
    }
    match (p.generation, p.deleting) {
        (Some(true), _) | (None, true) => PackAction::Delete,
        (Some(false), _) => PackAction::Wait,
        (None, false) if p.seen_unindexed && p.free => PackAction::Delete,
        (None, false) if p.seen_unindexed => PackAction::Condemn,
        (None, false) => PackAction::Unindexed,
    }
}

/// Repack partly used packs (`candidates`, positions), most unused first, until the unused bytes
/// left are within the limit; packs that would take the repack beyond `max_repack_size` are
/// left out.
fn repack(
    packs: &[PackFacts],
    mut candidates: Vec<usize>,
    opts: &PruneOptions,
    actions: &mut [PackAction],
    space: &mut Space,
) {
    space.unused_after = candidates.iter().map(|&c| unused(&packs[c])).sum();
    candidates.sort_by(|&a, &b| {
        let (pa, pb) = (&packs[a], &packs[b]);
        // Unused fraction, largest first: ua/ta > ub/tb ⇔ ua·tb > ub·ta.
        let ka = u128::from(unused(pa)) * u128::from(pb.bytes);
        let kb = u128::from(unused(pb)) * u128::from(pa.bytes);
        kb.cmp(&ka).then(pa.id.cmp(&pb.id))
    });
    let mut repack_size = 0u64;
    for c in candidates {
        let p = &packs[c];
        if space.unused_after <= space.max_unused_bytes {
            break;
        }
        let size = p.size.unwrap_or(p.bytes);
        if opts
            .max_repack_size
            .is_some_and(|m| repack_size.saturating_add(size) > m)
        {
            continue;
        }
        actions[c] = PackAction::Repack;
        repack_size += size;
        space.repack_blobs += u64::from(p.used_blobs);
        space.repack_bytes += p.used_bytes;
        space.unused_after -= unused(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::options::MaxUnused;
    use PackAction::*;

    /// An indexed pack of `bytes` stored bytes, `used` of them in `blobs` used blobs.
    fn indexed(n: u8, bytes: u64, blobs: u32, used: u64) -> PackFacts {
        PackFacts {
            id: ObjectId([n; 32]),
            size: Some(bytes + 100),
            live: true,
            bytes,
            used_blobs: blobs,
            used_bytes: used,
            ..PackFacts::default()
        }
    }

    /// A pack no index lists, of 1000 bytes.
    fn dormant(n: u8) -> PackFacts {
        PackFacts {
            live: false,
            ..indexed(n, 1000, 0, 0)
        }
    }

    fn opts(max_unused: MaxUnused, max_repack_size: Option<u64>) -> PruneOptions {
        PruneOptions {
            max_unused,
            max_repack_size,
            ..PruneOptions::default()
        }
    }

    fn run(packs: &[PackFacts], used: u64, o: &PruneOptions) -> (Vec<PackAction>, Space) {
        decide(packs, used, o)
    }

    #[test]
    fn indexed_packs_are_kept_condemned_dropped_or_repacked() {
        let gone = PackFacts {
            size: None,
            ..indexed(4, 300, 0, 0)
        };
        let packs = [
            indexed(1, 1000, 3, 1000), // fully used
            indexed(2, 1000, 0, 0),    // unused
            indexed(3, 1000, 1, 100),  // 90 % unused
            gone,
        ];
        let (a, s) = run(&packs, 1100, &opts(MaxUnused::Percent(5.0), None));
        assert_eq!(a, [Keep, Condemn, Repack, Drop]);
        assert_eq!(
            s,
            Space {
                unused_bytes: 900 + 1000 + 300,
                max_unused_bytes: 55,
                unused_after: 0,
                repack_blobs: 1,
                repack_bytes: 100,
            }
        );
        // Unlimited unused space: nothing is repacked, unused packs still go.
        let (a, s) = run(&packs, 1100, &opts(MaxUnused::Unlimited, None));
        assert_eq!(a, [Keep, Condemn, Keep, Drop]);
        assert_eq!((s.unused_after, s.repack_blobs), (900, 0));
    }

    /// Cold packs are never repacked; a wholly unused one goes only when aged, or young with
    /// `cold_early_delete`; its unused space is not counted against the hot packs'.
    #[test]
    fn cold_packs_are_not_repacked_and_go_only_when_aged_or_asked() {
        let cold = |p: PackFacts, c: Cold| PackFacts { cold: c, ..p };
        let packs = [
            cold(indexed(1, 1000, 1, 100), Cold::Young), // partly used
            cold(indexed(2, 1000, 1, 100), Cold::Aged),  // partly used
            cold(indexed(3, 1000, 0, 0), Cold::Young),   // unused, young
            cold(indexed(4, 1000, 0, 0), Cold::Aged),    // unused, aged
            indexed(5, 1000, 1, 500),                    // hot, partly used
        ];
        let o = opts(MaxUnused::Percent(0.0), None);
        let (a, s) = run(&packs, 700, &o);
        assert_eq!(a, [Keep, Keep, Keep, Condemn, Repack]);
        assert_eq!(
            (s.unused_after, s.repack_blobs, s.repack_bytes),
            (0, 1, 500)
        );
        let early = PruneOptions {
            cold_early_delete: true,
            ..o
        };
        let (a, _) = run(&packs, 700, &early);
        assert_eq!(a, [Keep, Keep, Condemn, Condemn, Repack]);
    }

    #[test]
    fn the_most_unused_packs_are_repacked_first_within_the_limits() {
        let packs = [
            indexed(1, 1000, 1, 800), // 20 % unused
            indexed(2, 1000, 1, 400), // 60 % unused
            indexed(3, 2000, 1, 800), // 60 % unused, larger id
            indexed(4, 1000, 1, 500), // 50 % unused
        ];
        // 300 bytes tolerated: 200 + 600 + 1200 + 500 = 2500 unused; repack 2 (600), 3 (1200),
        // 4 (500) → 200 left.
        let (a, s) = run(&packs, 2500, &opts(MaxUnused::Bytes(300), None));
        assert_eq!(a, [Keep, Repack, Repack, Repack]);
        assert_eq!(
            (
                s.unused_bytes,
                s.unused_after,
                s.repack_blobs,
                s.repack_bytes
            ),
            (2500, 200, 3, 1700)
        );
        // 700 tolerated: 2 and 3 suffice (2500 − 600 − 1200 = 700).
        let (a, _) = run(&packs, 2500, &opts(MaxUnused::Bytes(700), None));
        assert_eq!(a, [Keep, Repack, Repack, Keep]);
        // At most 2300 stored bytes repacked: after pack 2 (1100 stored), pack 3 (2100) would
        // go beyond and is left out; pack 4 (1100) fits, pack 1 then does not.
        let (a, s) = run(&packs, 2500, &opts(MaxUnused::Bytes(0), Some(2300)));
        assert_eq!(a, [Keep, Repack, Keep, Repack]);
        assert_eq!(
            (s.unused_after, s.repack_blobs, s.repack_bytes),
            (2500 - 600 - 500, 2, 900)
        );
    }

    #[test]
    fn packs_out_of_the_index_are_resurrected_deleted_kept_waiting_or_remembered() {
        let with = |mut p: PackFacts, f: &dyn Fn(&mut PackFacts)| {
            f(&mut p);
            p
        };
        let packs = [
            with(dormant(1), &|p| p.generation = Some(true)),
            with(dormant(2), &|p| p.generation = Some(false)),
            with(dormant(3), &|p| {
                p.generation = Some(true);
                (p.used_blobs, p.used_bytes) = (1, 50);
            }),
            with(dormant(4), &|p| p.deleting = true),
            with(dormant(5), &|p| {
                p.deleting = true;
                p.generation = Some(false);
            }),
            with(dormant(6), &|p| p.seen_unindexed = true),
            dormant(7),
            with(dormant(8), &|p| (p.used_blobs, p.used_bytes) = (2, 10)),
            with(dormant(9), &|p| {
                p.size = None;
                p.generation = Some(true);
            }),
            // No backup can be running (format §16, step 3): seen before → deleted at once;
            // seen for the first time, or needed, as without the rule.
            with(dormant(10), &|p| (p.seen_unindexed, p.free) = (true, true)),
            with(dormant(11), &|p| p.free = true),
            with(dormant(12), &|p| {
                (p.seen_unindexed, p.free) = (true, true);
                (p.used_blobs, p.used_bytes) = (1, 10);
            }),
        ];
        let (a, s) = run(&packs, 70, &opts(MaxUnused::Percent(0.0), None));
        assert_eq!(
            a,
            [
                Delete, Wait, Resurrect, Delete, Wait, Condemn, Unindexed, Resurrect, Keep, Delete,
                Unindexed, Resurrect
            ]
        );
        // Packs out of the index count for no unused space and are never repacked.
        assert_eq!(s, Space::default());
    }
}
