//! `tresor tag`: edit snapshots' tags.

use crate::args::TagArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, tag::Tagged};
use anyhow::{Result, bail};
use tresor_core::Repository;
use tresor_core::edit::tag::{TagEdit, tag};
use tresor_core::repo::trust::Verdict;
use tresor_core::snapshots::{SnapshotFilter, find};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

pub fn run(ctx: &Context, a: &TagArgs) -> Result<i32> {
    let edit = TagEdit {
        set: (!a.set.is_empty())
            .then(|| tag_list("set", &a.set, true))
            .transpose()?,
        add: tag_list("add", &a.add, false)?,
        remove: tag_list("remove", &a.remove, false)?,
    };
    let repo = ctx.open()?;
    repo.require_read("tag")?;
    let snaps = select(&repo, &a.snapshots, &(&a.filter).into())?;
    let (snaps, refused) = vouched(&repo, snaps, a.trust_privileged)?;
    let (replaced, removed) = tag(&repo, &snaps, &edit)?;
    render::emit(&Tagged::new(&replaced, &removed), ctx.mode())?;
    Ok(if refused { exit::ERROR } else { exit::OK })
}

/// The snapshots this key may re-sign: a full key's signature makes restore apply privileged
/// metadata (setuid/setgid bits, device nodes, `security.*`/`trusted.*` attributes), which it
/// withholds from snapshots of put-only (or unknown) keys. So a snapshot not written by a full
/// key is kept out with a warning, unless `trust` (`--trust-privileged`) vouches for it.
/// Returns the snapshots to go on with and whether any was kept out.
///
/// # Errors
/// Storage errors reading a snapshot's signer.
pub(super) fn vouched(
    repo: &Repository,
    snaps: Vec<(ObjectId, Snapshot)>,
    trust: bool,
) -> Result<(Vec<(ObjectId, Snapshot)>, bool)> {
    let mut out = Vec::with_capacity(snaps.len());
    let mut refused = false;
    for (id, s) in snaps {
        if trust || repo.snapshot_verdict(&id)? == Verdict::Full {
            out.push((id, s));
            continue;
        }
        refused = true;
        render::say(format!(
            "warning: snapshot {} (host {}) was not written by a full key: left as it is, since \
             signing it with this key would vouch for its privileged metadata; \
             --trust-privileged re-signs it",
            id.short(),
            tresor_format::tree::escape_name(s.hostname.as_bytes())
        ));
    }
    Ok((out, refused))
}

/// Tags from comma-separated options, each once; an empty tag is refused, except that
/// `--set ""` (`allow_none`) sets no tags.
fn tag_list(flag: &str, options: &[String], allow_none: bool) -> Result<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for option in options {
        if allow_none && option.is_empty() {
            continue;
        }
        for t in tresor_core::retention::parse_tag_list(option) {
            if t.is_empty() || t.contains('\n') {
                bail!("--{flag} {option:?}: a tag must not be empty or contain a line break");
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    Ok(tags)
}

/// The snapshots `specs` name (id prefixes or `latest`, through the filters), or, with none,
/// every snapshot the filters select (as restic's `tag` and `rewrite` do), each once, oldest
/// first.
pub(super) fn select(
    repo: &Repository,
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(ObjectId, Snapshot)>> {
    let (list, skipped) = repo.load_snapshots()?;
    if specs.is_empty() {
        return Ok(list
            .into_iter()
            .filter(|(_, s)| filter.matches(s))
            .collect());
    }
    let mut out: Vec<(ObjectId, Snapshot)> = Vec::new();
    for spec in specs {
        let found = find(&list, &skipped, spec, filter)?;
        if !out.iter().any(|(id, _)| *id == found.0) {
            out.push(found.clone());
        }
    }
    Ok(out)
}
