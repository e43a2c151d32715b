//! Which packs `check --read-data(-subset)` reads.

use super::*;
use std::collections::BTreeSet;

fn ids(n: usize) -> Vec<ObjectId> {
    (0..n as u64)
        .map(|i| ObjectId::of(&i.to_le_bytes()))
        .collect()
}

#[test]
fn every_choice_reads_a_pack_when_there_is_one() {
    assert_eq!(
        select_packs(&[], ReadData::Percent(50.0)).0,
        Vec::<usize>::new()
    );
    assert_eq!(
        select_packs(&[], ReadData::Subset(1, 3)).0,
        Vec::<usize>::new()
    );
    assert_eq!(select_packs(&ids(3), ReadData::None).0, Vec::<usize>::new());
    for p in [0.0, 0.1, 1.0, 33.0] {
        let (chosen, how) = select_packs(&ids(3), ReadData::Percent(p));
        assert_eq!(chosen.len(), 1, "{p}%");
        assert_eq!(how, format!("{p}% at random"));
    }
    assert_eq!(select_packs(&ids(3), ReadData::Percent(34.0)).0.len(), 2);
    assert_eq!(select_packs(&ids(3), ReadData::Percent(100.0)).0, [0, 1, 2]);
    assert_eq!(select_packs(&ids(3), ReadData::All).0, [0, 1, 2]);
    // One pack, many parts: the parts without it read it anyway.
    for part in 1..=8 {
        let (chosen, how) = select_packs(&ids(1), ReadData::Subset(part, 8));
        assert_eq!(chosen, [0], "part {part}");
        assert!(
            how.starts_with(&format!("part {part}/8 by pack id")),
            "{how}"
        );
    }
}

#[test]
fn percentages_choose_at_random_and_parts_partition() {
    let all = ids(40);
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let (chosen, _) = select_packs(&all, ReadData::Percent(5.0));
        assert_eq!(chosen.len(), 2);
        assert!(chosen[0] < chosen[1] && chosen[1] < 40, "{chosen:?}");
        seen.insert(chosen);
    }
    // 780 possible pairs: fifty runs that always chose the same would not be random.
    assert!(seen.len() > 10, "{seen:?}");
    let mut union = Vec::new();
    for part in 1..=4 {
        let (chosen, how) = select_packs(&all, ReadData::Subset(part, 4));
        assert_eq!(how, format!("part {part}/4 by pack id"));
        assert_eq!(chosen, select_packs(&all, ReadData::Subset(part, 4)).0);
        union.extend(chosen);
    }
    union.sort_unstable();
    assert_eq!(union, (0..40).collect::<Vec<_>>());
}

#[test]
fn a_random_choice_takes_preferred_packs_first() {
    let all = ids(20);
    let prefer: IdSet<ObjectId> = [all[3], all[17]].into_iter().collect();
    for _ in 0..20 {
        let (chosen, how) = select_preferring(&all, ReadData::Percent(10.0), &prefer);
        assert_eq!(chosen, [3, 17]);
        assert_eq!(how, "10% at random");
    }
    let (chosen, _) = select_preferring(&all, ReadData::Percent(20.0), &prefer);
    assert_eq!(chosen.len(), 4);
    assert!(chosen.contains(&3) && chosen.contains(&17), "{chosen:?}");
    let (chosen, _) = select_preferring(&all, ReadData::Percent(5.0), &prefer);
    assert!(chosen == [3] || chosen == [17], "{chosen:?}");
    // A fixed part ignores the preference.
    let part = select_packs(&all, ReadData::Subset(1, 4)).0;
    assert_eq!(
        select_preferring(&all, ReadData::Subset(1, 4), &prefer).0,
        part
    );
}
