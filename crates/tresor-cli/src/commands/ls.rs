use crate::args::LsArgs;
use crate::context::Context;
use crate::exit;
use anyhow::Result;
use tresor_core::blobs::BlobReader;
use tresor_core::ls::{find_node, normalize, walk};
use tresor_core::snapshots::find;
use tresor_format::tree::{Node, NodeKind};

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
        NodeKind::CharDevice => "chardev",
        NodeKind::BlockDevice => "blockdev",
    }
}

fn json_node(path: &str, n: &Node) -> serde_json::Value {
    let mut v = serde_json::json!({
        "path": path, "name": n.name_lossy(), "type": kind_name(n.kind), "mode": n.mode, "uid": n.uid, "gid": n.gid,
        "user": n.user, "group": n.group, "size": n.size, "mtime": n.mtime, "inode": n.inode, "links": n.links,
    });
    if std::str::from_utf8(&n.name).is_err() {
        v["name_hex"] = serde_json::Value::String(hex::encode(&n.name));
    }
    if n.kind == NodeKind::Symlink {
        v["target"] = serde_json::Value::String(String::from_utf8_lossy(&n.target).into_owned());
    }
    v
}

fn long_line(path: &str, n: &Node) -> String {
    let t = jiff::Timestamp::new(n.mtime.secs, n.mtime.nanos as i32)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| n.mtime.secs.to_string());
    format!(
        "{:<8} {:04o} {:>8} {:>8} {:>12} {} {}",
        kind_name(n.kind),
        n.mode,
        n.user.clone().unwrap_or(n.uid.to_string()),
        n.group.clone().unwrap_or(n.gid.to_string()),
        n.size,
        t,
        path
    )
}

pub fn run(ctx: &Context, a: &LsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    repo.require_read("ls")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, &a.snapshot, &(&a.filter).into())?;
    let index = repo.load_index()?;
    // The snapshot's own copies of blobs are preferred after full keys'.
    let reader = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(id).ok());
    let prefix = normalize(a.path.as_deref().unwrap_or("/"));
    let start = find_node(&reader, &snap.tree, &prefix)?;
    let json = ctx.json;
    let long = a.long;
    let mut print = |path: &str, n: &Node| {
        if json {
            println!("{}", json_node(path, n));
        } else if long {
            println!("{}", long_line(path, n));
        } else {
            println!("{path}");
        }
    };
    if !json && !ctx.quiet {
        eprintln!(
            "snapshot {} of {:?} at {}",
            id.short(),
            snap.paths,
            snap.time
        );
    }
    match start {
        None => walk(&reader, &snap.tree, "/", &mut print)?,
        Some(n) => {
            print(&prefix, &n);
            if let (NodeKind::Dir, Some(t)) = (n.kind, n.subtree) {
                walk(&reader, &t, &prefix, &mut print)?;
            }
        }
    }
    Ok(exit::OK)
}
