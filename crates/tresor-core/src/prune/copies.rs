//! Which stored copies of one used blob prune keeps (format §16, "Copies"): a pure function of
//! the copies, who listed them, what is known about them, and who uses the blob.
//!
//! One blob id may be stored in several packs: two put-only hosts wrote the same content (they
//! do not deduplicate against each other), a repack or consolidation re-listed it under a full
//! key, a backup was interrupted — or a put-only host uploaded garbage under another host's blob
//! id, listed by an index object named to sort first. Prune must never keep the forger's copy
//! in place of the true one. The rules:
//!
//! 1. **Candidates** are the copies still in storage that have not failed verification.
//! 2. **Trust order**: copies listed by a full key (or verified intact) first; then copies
//!    listed by a signer of a snapshot that uses the blob (a *user*); then the others (other
//!    put-only keys, unverified fossils and unindexed packs). Within a class, a copy in an
//!    indexed pack comes before one in a condemned or unindexed pack (keeping it resurrects
//!    nothing), then table order.
//! 3. **Kept**: for every put-only user, its own first copy in an indexed pack — put-only hosts
//!    deduplicate only against their own index objects, so a copy they cannot see would make
//!    them upload the blob again; and, unless every user has such a copy of its own, the first
//!    candidate in trust order.
//! 4. **Verified first**: when no kept copy is trusted (listed by a full key, or verified) and
//!    another candidate would go with its pack (*doomed*: its pack is condemned, repacked, or
//!    stays condemned), the first kept copy in trust order must be read and checked against its
//!    id before anything is condemned. The caller does that and asks again: a copy that fails
//!    is no candidate any more, so the next one is kept in its place. Hence no pack is
//!    condemned while a used blob of it would survive only in copies nobody verified.
//!
//! The kept copies never depend on `doomed` (only the verification request does), so a caller
//! can choose first, decide which packs go, then ask which copies to verify.

use crate::repo::index::Lister;

/// Where a copy's pack stands before this run decides anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// Listed by a live index object.
    Indexed,
    /// Still in storage but not indexed: condemned (in a fossil), deleting, or unindexed.
    /// Keeping a copy here resurrects its pack.
    Dormant,
    /// Not in storage.
    Gone,
}

/// What reading the copy showed, if it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not read.
    Unchecked,
    /// Read, decrypted, and its plaintext hashes to the blob id at the listed length.
    Intact,
    /// Read and failed (authentication, decoding, another id or length): forged or damaged.
    Bad,
}

/// One stored copy of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    /// Who listed it: a full key (or a verified fossil), a put-only key, or nobody verified.
    pub lister: Lister,
    /// Where its pack stands.
    pub place: Place,
    /// What reading it showed.
    pub check: Check,
    /// Whether it goes unless kept for this blob: its pack is condemned or repacked in this
    /// run, or is condemned already and not resurrected. Only the verification request looks
    /// at it.
    pub doomed: bool,
}

/// The signers of the snapshots that use a blob (snapshots readers accept, of a signer that
/// may speak for the snapshot's host).
#[derive(Debug, Clone, Copy, Default)]
pub struct Users<'a> {
    /// The users known by name.
    pub signers: &'a [[u8; 32]],
    /// Whether there are users beyond `signers` (treated as users without a copy of their own).
    pub more: bool,
}

/// What to do with the copies of one blob (positions in the slice given to [`choose`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Choice {
    /// Copies to keep, in trust order; empty when no copy is a candidate (the blob is stored
    /// nowhere intact).
    pub keep: Vec<usize>,
    /// A kept copy that must be read and verified before any other copy of the blob may be
    /// condemned.
    pub verify: Option<usize>,
}

/// The trust class of a copy: 0 trusted (full key's listing, or verified), 1 listed by a user,
/// 2 anything else.
fn class(c: &Copy, users: &Users) -> u8 {
    match (c.check, c.lister) {
        (Check::Intact, _) | (_, Lister::Full) => 0,
        (_, Lister::PutOnly(s)) if users.signers.contains(&s) => 1,
        _ => 2,
    }
}

fn trusted(c: &Copy) -> bool {
    c.check == Check::Intact || c.lister == Lister::Full
}

fn candidate(c: &Copy) -> bool {
    c.place != Place::Gone && c.check != Check::Bad
}

/// Choose the copies of one used blob to keep, and the copy to verify first (see the module
/// documentation for the rules).
pub fn choose(copies: &[Copy], users: &Users) -> Choice {
    let key = |k: usize| (class(&copies[k], users), copies[k].place, k);
    let mut order: Vec<usize> = (0..copies.len())
        .filter(|&k| candidate(&copies[k]))
        .collect();
    order.sort_by_key(|&k| key(k));
    let mut keep: Vec<usize> = Vec::new();
    let mut all_own = !users.more && !users.signers.is_empty();
    for user in users.signers {
        let own = order.iter().copied().find(|&k| {
            copies[k].lister == Lister::PutOnly(*user) && copies[k].place == Place::Indexed
        });
        match own {
            Some(k) if !keep.contains(&k) => keep.push(k),
            Some(_) => {}
            None => all_own = false,
        }
    }
    if !all_own && let Some(&best) = order.first() {
        keep.push(best);
    }
    keep.sort_by_key(|&k| key(k));
    keep.dedup();
    let others_doomed = order.iter().any(|k| !keep.contains(k) && copies[*k].doomed);
    let verify = match keep.iter().any(|&k| trusted(&copies[k])) {
        false if others_doomed => keep.first().copied(),
        _ => None,
    };
    Choice { keep, verify }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [0xa; 32];
    const B: [u8; 32] = [0xb; 32];
    const EVIL: [u8; 32] = [0xe; 32];

    fn copy(lister: Lister, place: Place) -> Copy {
        Copy {
            lister,
            place,
            check: Check::Unchecked,
            doomed: false,
        }
    }
    fn doomed(mut c: Copy) -> Copy {
        c.doomed = true;
        c
    }
    fn checked(mut c: Copy, check: Check) -> Copy {
        c.check = check;
        c
    }
    fn users(signers: &[[u8; 32]]) -> Users<'_> {
        Users {
            signers,
            more: false,
        }
    }
    fn choice(keep: &[usize], verify: Option<usize>) -> Choice {
        Choice {
            keep: keep.to_vec(),
            verify,
        }
    }
    use Lister::{Full, PutOnly, Unverified};
    use Place::{Dormant, Gone, Indexed};

    #[test]
    fn one_copy_is_kept_without_reading_it() {
        for lister in [Full, PutOnly(A), PutOnly(EVIL), Unverified] {
            for place in [Indexed, Dormant] {
                let c = [copy(lister, place)];
                assert_eq!(choose(&c, &users(&[A])), choice(&[0], None));
                assert_eq!(choose(&c, &users(&[])), choice(&[0], None));
            }
        }
    }

    #[test]
    fn nothing_to_keep() {
        assert_eq!(choose(&[], &users(&[A])), choice(&[], None));
        let c = [
            copy(Full, Gone),
            checked(copy(PutOnly(A), Indexed), Check::Bad),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[], None));
    }

    #[test]
    fn a_full_keys_copy_comes_first_and_needs_no_reading() {
        // Used by a full key's snapshot (no put-only user): the full copy alone, wherever the
        // others sort and whatever happens to them.
        let c = [
            doomed(copy(PutOnly(EVIL), Indexed)),
            doomed(copy(Unverified, Dormant)),
            copy(Full, Indexed),
            doomed(copy(Full, Indexed)),
        ];
        assert_eq!(choose(&c, &users(&[])), choice(&[2], None));
        // A full copy in a condemned pack beats any put-only copy of a non-user (and so
        // resurrects its pack).
        let c = [doomed(copy(PutOnly(EVIL), Indexed)), copy(Full, Dormant)];
        assert_eq!(choose(&c, &users(&[])), choice(&[1], None));
    }

    #[test]
    fn the_users_copy_comes_before_other_put_only_copies() {
        // The forger's copy sorts first (its index object's name was ground to sort first).
        let c = [copy(PutOnly(EVIL), Indexed), copy(PutOnly(A), Indexed)];
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], None));
        // When the forger's pack is condemned, the user's copy is read first.
        let c = [
            doomed(copy(PutOnly(EVIL), Indexed)),
            copy(PutOnly(A), Indexed),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], Some(1)));
        // Verified: nothing more to read.
        let c = [
            doomed(copy(PutOnly(EVIL), Indexed)),
            checked(copy(PutOnly(A), Indexed), Check::Intact),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], None));
    }

    #[test]
    fn a_forgers_copy_that_fails_is_replaced_by_the_next() {
        // The user's own copy is gone (deleted by the storage); the forger is not a user: its
        // copy sorts first among the rest and is read before the unverified fossil may go.
        let c = [
            copy(PutOnly(EVIL), Indexed),
            doomed(copy(Unverified, Dormant)),
            copy(PutOnly(A), Gone),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[0], Some(0)));
        let c = [
            checked(copy(PutOnly(EVIL), Indexed), Check::Bad),
            doomed(copy(Unverified, Dormant)),
            copy(PutOnly(A), Gone),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], None));
    }

    #[test]
    fn a_forger_that_is_a_user_keeps_only_its_own_copy() {
        // The forger wrote a snapshot of its own host using the victim's blob ids: both are
        // users, each keeps its own copy, the victim's is never condemned.
        let c = [copy(PutOnly(EVIL), Indexed), copy(PutOnly(A), Indexed)];
        assert_eq!(choose(&c, &users(&[A, EVIL])), choice(&[0, 1], None));
        // A third, unverified copy that goes: one kept copy is read first (trust order: the
        // forger's sorts first; if it fails, the victim's is read next).
        let c = [
            copy(PutOnly(EVIL), Indexed),
            copy(PutOnly(A), Indexed),
            doomed(copy(Unverified, Dormant)),
        ];
        assert_eq!(choose(&c, &users(&[A, EVIL])), choice(&[0, 1], Some(0)));
        let c = [
            checked(copy(PutOnly(EVIL), Indexed), Check::Bad),
            copy(PutOnly(A), Indexed),
            doomed(copy(Unverified, Dormant)),
        ];
        assert_eq!(choose(&c, &users(&[A, EVIL])), choice(&[1], Some(1)));
    }

    #[test]
    fn only_forged_copies() {
        // Nothing else would go: kept as they are (restore and check report them).
        let c = [copy(PutOnly(EVIL), Indexed), copy(Unverified, Dormant)];
        assert_eq!(choose(&c, &users(&[A])), choice(&[0], None));
        // Every copy failed: stored nowhere intact (prune refuses to run).
        let c = [
            checked(copy(PutOnly(EVIL), Indexed), Check::Bad),
            doomed(checked(copy(Unverified, Dormant), Check::Bad)),
        ];
        assert_eq!(choose(&c, &users(&[A])), choice(&[], None));
    }

    #[test]
    fn two_honest_put_only_hosts_sharing_content_keep_their_own_copies() {
        let c = [copy(PutOnly(A), Indexed), copy(PutOnly(B), Indexed)];
        assert_eq!(choose(&c, &users(&[A, B])), choice(&[0, 1], None));
        assert_eq!(choose(&c, &users(&[B, A])), choice(&[0, 1], None));
        // Only B uses it any more: A's copy may go once B's is verified.
        let c = [doomed(copy(PutOnly(A), Indexed)), copy(PutOnly(B), Indexed)];
        assert_eq!(choose(&c, &users(&[B])), choice(&[1], Some(1)));
        // A full key's re-listing (repack, consolidation) is kept only for users without a
        // copy of their own; a put-only user's own copy is read before it goes.
        let c = [
            doomed(copy(Full, Indexed)),
            copy(PutOnly(A), Indexed),
            copy(PutOnly(B), Indexed),
        ];
        assert_eq!(choose(&c, &users(&[A, B])), choice(&[1, 2], Some(1)));
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], Some(1)));
        let full_user = users(&[]);
        assert_eq!(choose(&c, &full_user), choice(&[0], None));
        let c = [copy(Full, Indexed), copy(PutOnly(A), Indexed)];
        assert_eq!(choose(&c, &users(&[A, B])), choice(&[0, 1], None));
    }

    #[test]
    fn indexed_copies_come_before_dormant_ones_of_the_same_class() {
        let c = [copy(Full, Dormant), copy(Full, Indexed)];
        assert_eq!(choose(&c, &users(&[])), choice(&[1], None));
        let c = [copy(PutOnly(A), Dormant), copy(PutOnly(A), Indexed)];
        assert_eq!(choose(&c, &users(&[A])), choice(&[1], None));
        // A dormant copy is never a user's own: the best candidate is kept instead.
        let c = [copy(PutOnly(A), Dormant), doomed(copy(PutOnly(B), Indexed))];
        assert_eq!(choose(&c, &users(&[A])), choice(&[0], Some(0)));
    }

    #[test]
    fn unnamed_users_get_the_best_copy_too() {
        let c = [copy(Full, Indexed), copy(PutOnly(A), Indexed)];
        let u = Users {
            signers: &[A],
            more: true,
        };
        assert_eq!(choose(&c, &u), choice(&[0, 1], None));
    }

    #[test]
    fn keep_does_not_depend_on_doomed() {
        let listers = [Full, PutOnly(A), PutOnly(B), PutOnly(EVIL), Unverified];
        let places = [Indexed, Dormant, Gone];
        let checks = [Check::Unchecked, Check::Intact, Check::Bad];
        let mut n = 0u32;
        // Every table of three copies (bounded: 45³ tables × 4 user sets).
        let all: Vec<Copy> = listers
            .iter()
            .flat_map(|&l| places.iter().map(move |&p| (l, p)))
            .flat_map(|(l, p)| checks.iter().map(move |&c| checked(copy(l, p), c)))
            .collect();
        for a in &all {
            for b in &all {
                for c in &all {
                    let t = [*a, *b, *c];
                    for u in [&[][..], &[A][..], &[A, B][..], &[EVIL, B][..]] {
                        let plain = choose(&t, &users(u));
                        let all_doomed = t.map(doomed);
                        let with = choose(&all_doomed, &users(u));
                        assert_eq!(plain.keep, with.keep, "{t:?} {u:?}");
                        assert_eq!(plain.verify, None, "{t:?}: nothing goes, nothing to read");
                        // Never a failed or missing copy; one verification at a time, of a
                        // kept copy; none when a trusted copy is kept.
                        assert!(with.keep.iter().all(|&k| candidate(&t[k])));
                        if let Some(v) = with.verify {
                            assert_eq!(with.keep.first(), Some(&v));
                            assert!(!with.keep.iter().any(|&k| trusted(&t[k])));
                        }
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 45 * 45 * 45 * 4);
    }
}
