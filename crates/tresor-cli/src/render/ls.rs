//! `ls`: one entry of a snapshot per line.

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::tree::{Node, NodeKind, Timestamp};

/// The name `ls` shows for a node kind.
pub fn kind_name(k: NodeKind) -> &'static str {
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

/// The bytes in hex when they are not UTF-8 (JSON carries them exactly beside the text).
fn hex_unless_utf8(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).is_err().then(|| hex::encode(b))
}

/// One entry (JSON: `docs/cli.md`, "ls": one object per line).
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// Absolute path in the snapshot (non-UTF-8 bytes replaced).
    pub path: String,
    /// The path's bytes in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// The path's bytes (text output shows them by the display rule, docs/cli.md "Names in
    /// output").
    #[serde(skip)]
    pub raw_path: &'a [u8],
    /// File name (non-UTF-8 bytes replaced).
    pub name: String,
    /// The name's bytes in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_hex: Option<String>,
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `chardev` or `blockdev`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Owner user name, when recorded.
    pub user: &'a Option<String>,
    /// Owner group name, when recorded.
    pub group: &'a Option<String>,
    /// Size, bytes.
    pub size: u64,
    /// Modification time as JSON shows it: RFC 3339 with this machine's offset and the
    /// fraction of a second (the time rule, `tresor_core::time::rfc3339`); `None` (null) for a
    /// time beyond what RFC 3339 can show, which `mtime_unix` still holds.
    #[serde(rename = "mtime")]
    pub mtime_shown: Option<String>,
    /// Modification time since the epoch, UTC, exact (seconds and nanoseconds).
    #[serde(rename = "mtime_unix")]
    pub mtime: Timestamp,
    /// Inode number at backup.
    pub inode: u64,
    /// Hard link count at backup.
    pub links: u64,
    /// Symlinks: the target (non-UTF-8 bytes replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Symlinks: the target's bytes in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    /// `-l`: the long form of the text.
    #[serde(skip)]
    pub long: bool,
    /// `--human-readable`: sizes in the long form with binary units (`1.50 MiB`).
    #[serde(skip)]
    pub human: bool,
    /// The time zone of the long form's times.
    #[serde(skip)]
    pub zone: &'a jiff::tz::TimeZone,
}

impl<'a> Entry<'a> {
    /// The entry of node `n` at `path`.
    pub fn new(path: &'a [u8], n: &'a Node, long: bool, zone: &'a jiff::tz::TimeZone) -> Self {
        let link = n.kind == NodeKind::Symlink;
        Entry {
            path: String::from_utf8_lossy(path).into_owned(),
            path_hex: hex_unless_utf8(path),
            raw_path: path,
            name: n.name_lossy(),
            name_hex: hex_unless_utf8(&n.name),
            target_hex: link.then(|| hex_unless_utf8(&n.target)).flatten(),
            kind: kind_name(n.kind),
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            user: &n.user,
            group: &n.group,
            size: n.size,
            mtime_shown: jiff::Timestamp::new(n.mtime.secs, n.mtime.nanos as i32)
                .ok()
                .map(|t| tresor_core::time::rfc3339(t, zone)),
            mtime: n.mtime,
            inode: n.inode,
            links: n.links,
            target: link.then(|| String::from_utf8_lossy(&n.target).into_owned()),
            long,
            human: false,
            zone,
        }
    }

    /// The `-l` line: type, mode, owner, size, mtime (local), path by the display rule.
    pub fn long_line(&self) -> String {
        let t = jiff::Timestamp::new(self.mtime.secs, self.mtime.nanos as i32)
            .map(|t| tresor_core::time::human(t, self.zone))
            .unwrap_or_else(|_| self.mtime.secs.to_string());
        let size = if self.human {
            crate::output::bytes(self.size)
        } else {
            self.size.to_string()
        };
        format!(
            "{:<8} {:04o} {:>8} {:>8} {:>12} {} {}",
            self.kind,
            self.mode,
            self.user.clone().unwrap_or(self.uid.to_string()),
            self.group.clone().unwrap_or(self.gid.to_string()),
            size,
            t,
            tresor_format::tree::display_bytes(self.raw_path)
        )
    }
}

impl Outcome for Entry<'_> {
    fn text(&self, t: &mut Text) {
        if self.long {
            t.out(self.long_line());
        } else {
            t.out(tresor_format::tree::display_bytes(self.raw_path));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// The line before the listing (standard error, text only): which snapshot is listed, its
/// paths (escaped, space-separated) and its time (local).
#[derive(Debug)]
pub struct Heading<'a> {
    /// The snapshot.
    pub id: ObjectId,
    /// Its paths.
    pub paths: &'a [String],
    /// Its time.
    pub time: jiff::Timestamp,
    /// The time zone of the time shown.
    pub zone: &'a jiff::tz::TimeZone,
}

impl Outcome for Heading<'_> {
    fn text(&self, t: &mut Text) {
        if !t.quiet() {
            let paths: Vec<String> = self
                .paths
                .iter()
                .map(|p| super::escape_controls(p))
                .collect();
            t.err(format!(
                "snapshot {} of {} at {}",
                self.id.short(),
                paths.join(" "),
                tresor_core::time::human(self.time, self.zone)
            ));
        }
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    fn node(name: &[u8], kind: NodeKind) -> Node {
        let t = Timestamp {
            secs: 1_577_934_245,
            nanos: 5,
        };
        Node {
            mode: 0o644,
            uid: 1000,
            gid: 100,
            user: Some("me".into()),
            mtime: t,
            atime: t,
            ctime: t,
            size: 6,
            device: 1,
            inode: 77,
            links: 1,
            target: b"a.txt".to_vec(),
            ..Node::bare(name, kind)
        }
    }

    #[test]
    fn lines() {
        let utc = jiff::tz::TimeZone::UTC;
        let n = node(b"a\xff", NodeKind::Symlink);
        let short = Entry::new(b"/x/a\xff", &n, false, &utc);
        let t = render(
            &short,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(t.stream(Stream::Out), "/x/a\\xff\n");
        let long = Entry::new(b"/x/l", &n, true, &utc);
        let t = render(
            &long,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            "symlink  0644       me      100            6 2020-01-02 03:04:05 /x/l\n"
        );
        let mut big = node(b"b", NodeKind::File);
        big.size = 3 << 19;
        let mut human = Entry::new(b"/b", &big, true, &utc);
        human.human = true;
        let t = render(
            &human,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            "file     0644       me      100     1.50 MiB 2020-01-02 03:04:05 /b\n"
        );
        let j = render(
            &short,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"path\":\"/x/a\u{fffd}\",\"path_hex\":\"2f782f61ff\",\"name\":\"a\u{fffd}\",\"name_hex\":\"61ff\",\"type\":\"symlink\",\
             \"mode\":420,\"uid\":1000,\"gid\":100,\"user\":\"me\",\"group\":null,\"size\":6,\
             \"mtime\":\"2020-01-02T03:04:05.000000005+00:00\",\
             \"mtime_unix\":{\"secs\":1577934245,\"nanos\":5},\"inode\":77,\"links\":1,\"target\":\"a.txt\"}\n"
        );
        let file = node(b"f", NodeKind::File);
        let j = render(
            &Entry::new(b"/f", &file, false, &utc),
            Mode {
                json: true,
                quiet: false,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&j.unwrap().stream(Stream::Out)).unwrap();
        assert!(v.get("name_hex").is_none() && v.get("target").is_none());
    }

    #[test]
    fn heading() {
        let paths = vec!["/src".to_string(), "/a b\n".to_string()];
        let zone = jiff::tz::TimeZone::posix("IST-5:30").unwrap();
        let h = Heading {
            id: ObjectId([0xcd; 32]),
            paths: &paths,
            time: "2026-01-02T09:34:05.123456789Z".parse().unwrap(),
            zone: &zone,
        };
        let t = render(
            &h,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Err),
            "snapshot cdcdcdcd of /src /a b\\n at 2026-01-02 15:04:05\n"
        );
        assert_eq!(
            render(
                &h,
                Mode {
                    json: false,
                    quiet: true
                }
            )
            .unwrap()
            .stream(Stream::Err),
            ""
        );
        assert_eq!(
            render(
                &h,
                Mode {
                    json: true,
                    quiet: false
                }
            )
            .unwrap()
            .stream(Stream::Err),
            ""
        );
    }
}
