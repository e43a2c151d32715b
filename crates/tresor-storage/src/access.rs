//! Who may do what: the one permission table of tresor's access control, role × object kind ×
//! operation ([`PERMISSIONS`]). `tresor serve` asks [`allowed`] before every request;
//! `tresor s3-policy` turns the same rows into IAM grants ([`kinds`]). `docs/protocol.md` §3
//! shows the table.

use crate::Kind;
use std::fmt;

/// A role: what one set of credentials may do in a repository (a `tresor serve` client's token,
/// or the S3 credentials an IAM policy from `tresor s3-policy` is attached to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A backup host: create objects and read what a backup with a put-only key needs.
    Append,
    /// Restore and check: list and read everything, change nothing.
    Read,
    /// Maintenance (init, keys, forget, prune): everything, deletion included.
    Admin,
}

impl Role {
    /// `append`, `read` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Append => "append",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    /// Parse `append`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "append" => Some(Role::Append),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation on objects of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `GET /{repo}/{kind}/`: names and sizes.
    List,
    /// `GET` or `HEAD /{repo}/{kind}/{name}`, ranges included.
    Read,
    /// `PUT /{repo}/{kind}/{name}`: create (never replace).
    Write,
    /// `DELETE /{repo}/{kind}/{name}`.
    Delete,
}

impl Op {
    /// `list`, `read`, `write` or `delete` (as in the access log).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Op::List => 1,
            Op::Read => 2,
            Op::Write => 4,
            Op::Delete => 8,
        }
    }
}

/// A set of [`Op`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// Whether the set holds `op`.
    pub fn contains(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }
}

const NONE: Ops = Ops(0);
const W: Ops = Ops(4);
const LR: Ops = Ops(1 | 2);
const LRW: Ops = Ops(1 | 2 | 4);
const ALL: Ops = Ops(1 | 2 | 4 | 8);

/// The permission table: one row per role and object kind (every pair exactly once), giving the
/// operations allowed. `L` list, `R` read, `W` write (create), `D` delete. `tresor serve`
/// checks it before every request; `tresor s3-policy` grants what it allows (the S3 policy of a
/// backup host with a *full* key adds the reads and lists of `read`, which that backup needs).
///
/// `append` is exactly what a backup with a put-only key does (measured from the access log of
/// `tresor backup`): it lists and reads the config, the key files, the revocations, the trust
/// records (a put-only key verifies them: they authenticate the config and say which keys are
/// trusted) and the index objects (their dedup lists), and creates packs, index objects,
/// snapshots and backup start markers. It cannot list or read packs, snapshots or markers,
/// cannot create keys, revocations, trust records, configs or prune records, and deletes
/// nothing. Overwrites are refused for every role: storage writes are create-only.
pub const PERMISSIONS: [(Role, Kind, Ops); 30] = [
    (Role::Append, Kind::Config, LR),
    (Role::Append, Kind::Key, LR),
    (Role::Append, Kind::Revocation, LR),
    (Role::Append, Kind::Index, LRW),
    (Role::Append, Kind::Snapshot, W),
    (Role::Append, Kind::Pack, W),
    (Role::Append, Kind::PruneRecord, NONE),
    (Role::Append, Kind::Marker, W),
    (Role::Append, Kind::Trust, LR),
    (Role::Read, Kind::Config, LR),
    (Role::Read, Kind::Key, LR),
    (Role::Read, Kind::Revocation, LR),
    (Role::Read, Kind::Index, LR),
    (Role::Read, Kind::Snapshot, LR),
    (Role::Read, Kind::Pack, LR),
    (Role::Read, Kind::PruneRecord, LR),
    (Role::Read, Kind::Marker, LR),
    (Role::Read, Kind::Trust, LR),
    (Role::Admin, Kind::Config, ALL),
    (Role::Admin, Kind::Key, ALL),
    (Role::Admin, Kind::Revocation, ALL),
    (Role::Admin, Kind::Index, ALL),
    (Role::Admin, Kind::Snapshot, ALL),
    (Role::Admin, Kind::Pack, ALL),
    (Role::Admin, Kind::PruneRecord, ALL),
    (Role::Admin, Kind::Marker, ALL),
    (Role::Admin, Kind::Trust, ALL),
    (Role::Append, Kind::Drill, NONE),
    (Role::Read, Kind::Drill, LR),
    (Role::Admin, Kind::Drill, ALL),
];

/// Whether `role` may do `op` on objects of `kind`, by [`PERMISSIONS`].
pub fn allowed(role: Role, kind: Kind, op: Op) -> bool {
    PERMISSIONS
        .iter()
        .any(|&(r, k, ops)| r == role && k == kind && ops.contains(op))
}

/// The kinds `role` may do `op` on, in [`Kind::ALL`] order.
pub fn kinds(role: Role, op: Op) -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|&k| allowed(role, k, op))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_pair_once() {
        for role in [Role::Append, Role::Read, Role::Admin] {
            for kind in Kind::ALL {
                let n = PERMISSIONS
                    .iter()
                    .filter(|(r, k, _)| *r == role && *k == kind)
                    .count();
                assert_eq!(n, 1, "{role} {kind}");
            }
        }
    }

    #[test]
    fn append_cannot_read_packs_or_delete() {
        for kind in Kind::ALL {
            assert!(!allowed(Role::Append, kind, Op::Delete));
            assert!(!allowed(Role::Read, kind, Op::Delete));
            assert!(!allowed(Role::Read, kind, Op::Write));
            assert!(allowed(Role::Admin, kind, Op::Delete));
        }
        assert!(!allowed(Role::Append, Kind::Pack, Op::Read));
        assert!(!allowed(Role::Append, Kind::Snapshot, Op::Read));
        assert!(!allowed(Role::Append, Kind::Key, Op::Write));
        assert!(allowed(Role::Append, Kind::Pack, Op::Write));
        assert!(allowed(Role::Append, Kind::Index, Op::Read));
        assert!(allowed(Role::Append, Kind::Trust, Op::Read));
        assert!(allowed(Role::Append, Kind::Trust, Op::List));
        assert!(!allowed(Role::Append, Kind::Trust, Op::Write));
        assert!(allowed(Role::Admin, Kind::Trust, Op::Write));
        // Drill records (format §18): a put-only host can neither write nor see them.
        for op in [Op::List, Op::Read, Op::Write, Op::Delete] {
            assert!(!allowed(Role::Append, Kind::Drill, op), "{op:?}");
        }
        assert!(allowed(Role::Read, Kind::Drill, Op::Read));
        assert!(allowed(Role::Admin, Kind::Drill, Op::Write));
    }

    #[test]
    fn kinds_of_the_append_role() {
        use Kind::*;
        assert_eq!(
            kinds(Role::Append, Op::List),
            [Config, Key, Index, Revocation, Trust]
        );
        assert_eq!(
            kinds(Role::Append, Op::Read),
            [Config, Key, Index, Revocation, Trust]
        );
        assert_eq!(
            kinds(Role::Append, Op::Write),
            [Snapshot, Index, Pack, Marker]
        );
        assert_eq!(kinds(Role::Append, Op::Delete), []);
        assert_eq!(kinds(Role::Read, Op::Read), Kind::ALL);
        assert_eq!(Role::parse("append"), Some(Role::Append));
        assert_eq!(Role::parse("root"), None);
    }
}
