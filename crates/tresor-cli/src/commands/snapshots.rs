use crate::args::SnapshotsArgs;
use crate::context::Context;
use crate::exit;
use crate::render::snapshots::{PutOnlyList, PutOnlyRow, SnapshotList, SnapshotRow};
use crate::render::{self, Diagnostics, Level};
use anyhow::Result;
use tresor_core::CoreError;
use tresor_core::repo::snapshots::{future_after, is_future};
use tresor_core::repo::{Defect, Skipped};
use tresor_core::snapshots::{SnapshotFilter, signer_info};

pub fn run(ctx: &Context, a: &SnapshotsArgs) -> Result<i32> {
    if a.check_overdue {
        return super::overdue::run(ctx, a);
    }
    if a.metrics.metrics_textfile.is_some() || a.metrics.pushgateway.is_some() {
        anyhow::bail!("snapshots: --metrics-textfile and --pushgateway need --check-overdue");
    }
    let repo = ctx.open()?;
    if !repo.key().can_read() {
        let f = &a.filter;
        if !(f.hosts.is_empty() && f.paths.is_empty() && f.tags.is_empty()) {
            return Err(tresor_core::CoreError::PutOnly(
                "filtering snapshots by host, path or tag (they are encrypted)",
            )
            .into());
        }
        return put_only(ctx, &repo);
    }
    let (list, bad) = repo.load_snapshots()?;
    let filter = SnapshotFilter::from(&a.filter);
    let after = future_after();
    let rows = list
        .iter()
        .filter(|(_, s)| filter.matches(s))
        .map(|(id, s)| SnapshotRow::new(*id, s, signer_info(&repo, id), is_future(s, after)))
        .collect();
    let listed = SnapshotList {
        rows,
        skipped: bad.iter().map(skipped_line).collect(),
        zone: tresor_core::time::local_zone(),
    };
    render::emit(&listed, ctx.mode())?;
    // Snapshots this machine saw before that are gone without a forget record: the storage
    // hides them (or they were deleted by hand); the listing is incomplete.
    let hidden = repo.hidden_snapshots()?;
    let warnings = hidden.iter().map(|h| (Level::Warning, h.to_string()));
    render::emit(&Diagnostics(warnings.collect()), ctx.mode())?;
    let hidden_code = if hidden.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    };
    // Snapshot objects that do not load are left out with a warning (`check` judges them):
    // garbage anyone could upload must not fail the listing. Only a snapshot the storage could
    // not read makes the list incomplete for real (one deleted meanwhile was forgotten).
    Ok(bad
        .iter()
        .filter(|s| s.defect == Defect::Unreadable)
        .map(|s| match &s.error {
            CoreError::Storage(e) if e.kind == tresor_storage::ErrorKind::NotFound => exit::OK,
            e if e.is_damage() => exit::DAMAGED,
            _ => exit::ERROR,
        })
        .max()
        .unwrap_or(exit::OK)
        .max(hidden_code))
}

/// The warning for a snapshot object that was left out.
pub(super) fn skipped_line(s: &Skipped) -> String {
    let what = match s.defect {
        Defect::Garbage => {
            " (garbage: no key wrote it; left out, and an admin's `tresor prune` deletes it)"
        }
        Defect::Damaged => " (damaged: left out; `tresor forget` removes it)",
        Defect::Ignored | Defect::Unreadable => "",
    };
    let m = match &s.error {
        CoreError::Damaged(m)
        | CoreError::Untrusted(m)
        | CoreError::KnownDamage { message: m, .. } => m.clone(),
        e => e.to_string(),
    };
    format!("{m}{what}")
}

/// What a put-only key may see: snapshot ids, sizes and which key signed them — never contents.
fn put_only(ctx: &Context, repo: &tresor_core::Repository) -> Result<i32> {
    let me = repo.signer().public();
    let mut rows = Vec::new();
    let kind = tresor_storage::Kind::Snapshot;
    for (name, size) in repo.storage().list(kind)? {
        let limit = tresor_core::repo::limits::SNAPSHOT;
        let signer = tresor_core::repo::limits::read_bounded(
            &**repo.storage(),
            kind,
            &name,
            Some(size),
            limit,
        )
        .ok()
        .and_then(|b| tresor_format::snapshot::Snapshot::signer_of(&b).ok());
        let key = signer.and_then(|s| repo.trust().key(&s).map(|k| k.id.short()));
        // Whether readers accept it (an unknown or revoked signer's snapshot is ignored).
        let accepted = match (signer, name.parse()) {
            (Some(s), Ok(id)) => repo.trust().accepts(&s, &id),
            _ => false,
        };
        rows.push(PutOnlyRow {
            id: name,
            size,
            own: signer == Some(me),
            key,
            ignored: !accepted,
        });
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    render::emit(&PutOnlyList(rows), ctx.mode())?;
    Ok(exit::OK)
}
