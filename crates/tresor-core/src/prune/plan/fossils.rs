//! Step 3, continued: the fossils of the live prune states, and their `deleting` lists.

use crate::error::{CoreError, Damage, Result};
use crate::prune::tables::{Source, Tables};
use crate::repo::Repository;
use crate::repo::index::Lister;
use crate::repo::records::{Records, read_fossils};
use tresor_format::ObjectId;
use tresor_format::record::Generation;

/// The pending generations of the live states, oldest first.
pub(super) struct Generations {
    /// Each generation as (state, generation) positions in [`Records::states`].
    pub list: Vec<(usize, usize)>,
    /// The packs each one holds (positions in the tables; the newest generation of a pack
    /// holds it).
    pub packs: Vec<Vec<u32>>,
}

impl Generations {
    /// Generation `g` as its state records it.
    pub fn get<'a>(&self, recs: &'a Records, g: usize) -> &'a Generation {
        let (si, gi) = self.list[g];
        &recs.states[si].1.generations[gi]
    }
}

/// Read the fossils of every pending generation of the live states (a pack in several: the
/// newest holds it) into the tables, with the packs of their `blind` lists, and mark the packs
/// of the `deleting` lists.
///
/// # Errors
/// Storage errors; [`Damage::PruneRecord`] for a fossil record that does not load.
pub(super) fn read(repo: &Repository, recs: &Records, t: &mut Tables) -> Result<Generations> {
    let mut list: Vec<(usize, usize)> = Vec::new();
    for (si, (_, st)) in recs.states.iter().enumerate() {
        for gi in 0..st.generations.len() {
            list.push((si, gi));
        }
    }
    list.sort_by_key(|&(si, gi)| recs.states[si].1.generations[gi].run);
    let mut gens = Generations {
        packs: vec![Vec::new(); list.len()],
        list,
    };
    for g in 0..gens.list.len() {
        let generation = gens.get(recs, g);
        for f in &generation.fossils {
            add_fossils(repo, f, g, t, &mut gens.packs[g])?;
        }
        for b in &generation.blind {
            let (pos, _) = t.pos(*b);
            t.packs[pos as usize].generation = Some(g as u32);
            gens.packs[g].push(pos);
        }
    }
    for (_, st) in &recs.states {
        for d in &st.deleting {
            let (pos, _) = t.pos(*d);
            t.packs[pos as usize].deleting = true;
        }
    }
    Ok(gens)
}

/// The packs of fossil record `f`, held by generation `g`, into the tables (entries only for a
/// pack new to them) and into `held`.
fn add_fossils(
    repo: &Repository,
    f: &ObjectId,
    g: usize,
    t: &mut Tables,
    held: &mut Vec<u32>,
) -> Result<()> {
    let set =
        read_fossils(repo, f).map_err(|e| CoreError::damage(Damage::PruneRecord, e.to_string()))?;
    for fp in &set.packs {
        let (pos, new) = t.pos(fp.pack.id);
        if new {
            let lister = match fp.verified {
                true => Lister::Full,
                false => Lister::Unverified,
            };
            t.add_entries(pos, Source::Fossil(*f), lister, &fp.pack);
        }
        let rec = &mut t.packs[pos as usize];
        rec.generation = Some(g as u32);
        rec.trusted |= fp.verified;
        held.push(pos);
    }
    Ok(())
}
