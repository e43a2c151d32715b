//! Step 2: the prune records.

use crate::error::{CoreError, Damage, Result};
use crate::repo::Repository;
use crate::repo::records::{Records, load_records};

/// Every prune record. Records of other signers than full keys are ignored with a warning;
/// a damaged one stops the plan (prune would lose track of condemned packs).
///
/// # Errors
/// Storage errors; [`Damage::PruneRecord`] for a record that does not load.
pub(super) fn read(repo: &Repository, warnings: &mut Vec<String>) -> Result<Records> {
    let recs = load_records(repo)?;
    for s in &recs.skipped {
        match &s.error {
            CoreError::Untrusted(m) => warnings.push(m.clone()),
            e => {
                let m = format!("prune record {}: {e}", s.id);
                return Err(CoreError::damage(Damage::PruneRecord, m));
            }
        }
    }
    Ok(recs)
}
