//! `find`: the matches of each snapshot, grouped (restic's layout and JSON shape).

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::tree::{Node, NodeKind, Timestamp};

/// One matching entry (JSON: `docs/cli.md`, "find", `[].matches[]`).
#[derive(Debug, Serialize)]
pub struct Match {
    /// Absolute path in the snapshot (bytes that are not UTF-8 replaced).
    pub path: String,
    /// The path's bytes in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// `ls -l` style: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx` ….
    pub permissions: String,
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `chardev` or `blockdev`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Times, RFC 3339 with this machine's offset (null beyond RFC 3339's range).
    pub mtime: Option<String>,
    /// Access time.
    pub atime: Option<String>,
    /// Status change time.
    pub ctime: Option<String>,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Owner user name, when recorded.
    pub user: Option<String>,
    /// Owner group name, when recorded.
    pub group: Option<String>,
    /// Device of the file system at backup.
    pub device_id: u64,
    /// Size, bytes.
    pub size: u64,
    /// Hard link count at backup.
    pub links: u64,
    /// Inode number at backup.
    pub inode: u64,
    /// The text line (`ls -l`'s).
    #[serde(skip)]
    pub line: String,
}

impl Match {
    /// The match of node `n` at `path`; times shown in `zone`.
    pub fn new(path: &[u8], n: &Node, zone: &jiff::tz::TimeZone) -> Self {
        let time = |t: Timestamp| {
            jiff::Timestamp::new(t.secs, t.nanos as i32)
                .ok()
                .map(|t| tresor_core::time::rfc3339(t, zone))
        };
        Match {
            path: String::from_utf8_lossy(path).into_owned(),
            path_hex: std::str::from_utf8(path)
                .is_err()
                .then(|| hex::encode(path)),
            permissions: permissions(n.kind, n.mode),
            kind: super::ls::kind_name(n.kind),
            mode: n.mode,
            mtime: time(n.mtime),
            atime: time(n.atime),
            ctime: time(n.ctime),
            uid: n.uid,
            gid: n.gid,
            user: n.user.clone(),
            group: n.group.clone(),
            device_id: n.device,
            size: n.size,
            links: n.links,
            inode: n.inode,
            line: super::ls::Entry::new(path, n, true, zone).long_line(),
        }
    }
}

/// `ls -l`'s ten characters for a kind and permission bits (set-id and sticky bits as `s`/`S`,
/// `t`/`T`).
pub fn permissions(kind: NodeKind, mode: u32) -> String {
    let mut s = String::from(match kind {
        NodeKind::File => '-',
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 's',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
    });
    let special = [(0o4000, 's'), (0o2000, 's'), (0o1000, 't')];
    for (i, (bit, mark)) in special.iter().enumerate() {
        let shift = 6 - 3 * i;
        let b = (mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(match (b & 1 != 0, mode & bit != 0) {
            (true, true) => *mark,
            (false, true) => mark.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// The matches in one snapshot (JSON: one element of the array `find` prints).
#[derive(Debug, Serialize)]
pub struct Group {
    /// Number of matches.
    pub hits: u64,
    /// The snapshot's id.
    pub snapshot: String,
    /// The matches, in walk order.
    pub matches: Vec<Match>,
    /// The snapshot's time for the heading, local.
    #[serde(skip)]
    pub time: String,
    /// Whether a group was printed before this one (a blank line separates them).
    #[serde(skip)]
    pub after_another: bool,
}

impl Group {
    /// The group of snapshot `id` taken at `time` (local, as people read it).
    pub fn new(id: &ObjectId, time: String, matches: Vec<Match>) -> Self {
        Group {
            hits: matches.len() as u64,
            snapshot: id.to_hex(),
            matches,
            time,
            after_another: false,
        }
    }
}

impl Outcome for Group {
    fn text(&self, t: &mut Text) {
        if self.after_another {
            t.info("");
        }
        t.info(format!(
            "Found matching entries in snapshot {} from {}",
            &self.snapshot[..8],
            self.time
        ));
        for m in &self.matches {
            t.out(m.line.clone());
        }
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

/// Every group (JSON only: one array, restic's shape).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Found(pub Vec<Group>);

impl Outcome for Found {
    fn text(&self, _: &mut Text) {}

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    fn node() -> Node {
        let t = Timestamp {
            secs: 1_577_934_245,
            nanos: 5,
        };
        Node {
            mode: 0o4755,
            uid: 1000,
            gid: 100,
            user: Some("me".into()),
            mtime: t,
            atime: t,
            size: 6,
            device: 2049,
            inode: 77,
            links: 2,
            ..Node::bare(b"a\xff", NodeKind::File)
        }
    }

    #[test]
    fn permission_strings() {
        assert_eq!(permissions(NodeKind::File, 0o644), "-rw-r--r--");
        assert_eq!(permissions(NodeKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(permissions(NodeKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(permissions(NodeKind::File, 0o6644), "-rwSr-Sr--");
        assert_eq!(permissions(NodeKind::CharDevice, 0o4711), "crws--x--x");
    }

    #[test]
    fn group_text_and_json() {
        let utc = jiff::tz::TimeZone::UTC;
        let m = Match::new(b"/d/a\xff\n", &node(), &utc);
        let mut g = Group::new(&ObjectId([0xab; 32]), "2024-01-01 00:00:00".into(), vec![m]);
        g.after_another = true;
        let text = |quiet| render(&g, Mode { json: false, quiet }).unwrap();
        assert_eq!(
            text(false).stream(Stream::Out),
            "\nFound matching entries in snapshot abababab from 2024-01-01 00:00:00\n\
             file     4755       me      100            6 2020-01-02 03:04:05 /d/a\\xff\\n\n"
        );
        assert_eq!(
            text(true).stream(Stream::Out),
            "file     4755       me      100            6 2020-01-02 03:04:05 /d/a\\xff\\n\n"
        );
        let found = Found(vec![g]);
        let json = |f: &Found| {
            render(
                f,
                Mode {
                    json: true,
                    quiet: false,
                },
            )
            .unwrap()
        };
        assert_eq!(
            json(&found).stream(Stream::Out),
            format!(
                "[{{\"hits\":1,\"snapshot\":\"{}\",\"matches\":[{{\"path\":\"/d/a\u{fffd}\\n\",\
                 \"path_hex\":\"2f642f61ff0a\",\"permissions\":\"-rwsr-xr-x\",\"type\":\"file\",\
                 \"mode\":2541,\"mtime\":\"2020-01-02T03:04:05.000000005+00:00\",\
                 \"atime\":\"2020-01-02T03:04:05.000000005+00:00\",\
                 \"ctime\":\"1970-01-01T00:00:00+00:00\",\"uid\":1000,\"gid\":100,\"user\":\"me\",\
                 \"group\":null,\"device_id\":2049,\"size\":6,\"links\":2,\"inode\":77}}]}}]\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(json(&Found(vec![])).stream(Stream::Out), "[]\n");
        assert_eq!(
            render(
                &found,
                Mode {
                    json: false,
                    quiet: false
                }
            )
            .unwrap()
            .stream(Stream::Out),
            ""
        );
    }
}
