//! Crafting kit for hostile-input tests (feature `core`; issue 10): trees, blobs, packs, index objects,
//! snapshots and garbage made straight from bytes — postcard for trees, the layouts of format
//! §7–§11 for blobs and packs — so that no check of a tresor writer is in the way: names may be
//! anything, nodes unsorted or duplicated, blob ids and lengths false, zstd frames bombs.
//!
//! Objects are signed and sealed with the key material of an opened [`Repository`] (a put-only
//! key is enough: sealing needs only the public key) and delivered through a [`Channel`]: the
//! library's storage, a `tresor serve` `append` client over loopback HTTP, or files written
//! into the repository directory as its storage would.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tresor_core::Repository;
use tresor_format::blob::BlobType;
use tresor_format::crypto::{DataKey, MasterKey, SealedKind};
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::pack::{BlobEntry, PACK_MAGIC, PackHeader};
use tresor_format::sign::Signer;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind, Timestamp};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Kind, Storage, layout};

/// A snapshot of root tree `tree` for one backup path `path` of `host` (also its user) at
/// `time` (RFC 3339), with nothing else: no tags, parent, summary or markers; uid and gid 0.
pub fn snapshot_record(tree: BlobId, path: &str, host: &str, time: &str) -> Snapshot {
    Snapshot {
        version: tresor_format::FORMAT_VERSION,
        time: time.into(),
        tree,
        paths: vec![path.into()],
        hostname: host.into(),
        username: host.into(),
        uid: 0,
        gid: 0,
        tags: vec![],
        excludes: vec![],
        parent: None,
        summary: None,
        program_version: "tresor test".into(),
        markers: vec![],
        original: None,
    }
}

/// One object to deliver: its kind, name (the BLAKE3 of `bytes`, unless forged) and bytes.
#[derive(Clone)]
pub struct Object {
    /// What it is stored as.
    pub kind: Kind,
    /// 64 hex digits.
    pub name: String,
    /// The stored bytes.
    pub bytes: Vec<u8>,
}

impl Object {
    /// An object of `kind` named by the hash of `bytes`, as every honest storage names it.
    pub fn new(kind: Kind, bytes: Vec<u8>) -> Self {
        let name = ObjectId::of(&bytes).to_hex();
        Object { kind, name, bytes }
    }

    /// Its id.
    pub fn id(&self) -> ObjectId {
        ObjectId(hex::decode(&self.name).unwrap().try_into().unwrap())
    }
}

/// A garbage object of any kind: `bytes` as they are, named by their hash.
pub fn garbage(kind: Kind, bytes: &[u8]) -> Object {
    Object::new(kind, bytes.to_vec())
}

/// A node of `kind` named `name` (any bytes), owned by root, mode 0644 (0755 for directories),
/// times 2026-01-01, nothing else set.
pub fn node(name: &[u8], kind: NodeKind) -> Node {
    let t = Timestamp {
        secs: 1_767_225_600,
        nanos: 0,
    };
    Node {
        mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
        mtime: t,
        atime: t,
        ctime: t,
        links: 1,
        ..Node::bare(name, kind)
    }
}

/// A directory node listing the tree `subtree`, with `mode`.
pub fn dir(name: &[u8], subtree: BlobId, mode: u32) -> Node {
    Node {
        subtree: Some(subtree),
        mode,
        ..node(name, NodeKind::Dir)
    }
}

/// A symlink node pointing at `target`.
pub fn symlink(name: &[u8], target: &[u8]) -> Node {
    Node {
        target: target.to_vec(),
        size: target.len() as u64,
        mode: 0o777,
        ..node(name, NodeKind::Symlink)
    }
}

/// A file node whose content is the blobs `content` (`size` bytes in all), with `mode`.
pub fn file(name: &[u8], content: Vec<BlobId>, size: u64, mode: u32) -> Node {
    Node {
        content,
        size,
        mode,
        ..node(name, NodeKind::File)
    }
}

/// A tree blob's plaintext: the version byte, then postcard of `nodes` exactly as given (any
/// order, duplicates, any names) — `Tree` is a struct of one field, encoded as that field.
pub fn tree_bytes(nodes: &[Node]) -> Vec<u8> {
    let mut out = vec![tresor_format::tree::TREE_VERSION];
    out.extend(postcard::to_stdvec(nodes).unwrap());
    out
}

/// A blob as it goes into a pack, bypassing `blob::encode`: `flag` 0 (raw) or 1 (zstd) and the
/// body as given; `id` and `raw_length` (what index and header say) need not match it.
#[derive(Clone)]
pub struct Blob {
    /// Data or tree.
    pub blob_type: BlobType,
    /// The id it is stored under.
    pub id: BlobId,
    /// Body flag (format §7).
    pub flag: u8,
    /// The body: plaintext or a zstd frame.
    pub body: Vec<u8>,
    /// The plaintext length the header and index claim.
    pub raw_length: u64,
}

impl Blob {
    /// An honest raw blob of `plain`, named by its keyed hash.
    pub fn raw(key: &MasterKey, blob_type: BlobType, plain: &[u8]) -> Blob {
        Blob {
            blob_type,
            id: key.blob_id(plain),
            flag: 0,
            body: plain.to_vec(),
            raw_length: plain.len() as u64,
        }
    }

    /// The stored bytes under `data_key` (format §7): nonce, then the padded inner part
    /// (flag, body length, body) encrypted with the type byte and id as associated data.
    pub fn stored(&self, data_key: &DataKey) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        getrandom_fill(&mut nonce);
        let mut inner = vec![self.flag];
        inner.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        inner.extend_from_slice(&self.body);
        inner.resize(inner.len().div_ceil(64) * 64, 0);
        let mut aad = vec![self.blob_type.byte()];
        aad.extend_from_slice(&self.id.0);
        let tag = data_key.encrypt_in_place(&nonce, &aad, &mut inner);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&inner);
        out.extend_from_slice(&tag);
        out
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    f.read_exact(buf).unwrap();
}

/// A zstd frame (RFC 8878) that decompresses to `prefix` followed by `zeros` zero bytes, built
/// by hand from raw and RLE blocks, so that a frame for gigabytes costs 4 bytes per 128 KiB.
/// `declared`: the frame content size it declares (`None`: no size at all), true or not.
pub fn zeros_frame(prefix: &[u8], zeros: u64, declared: Option<u64>) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    match declared {
        // Descriptor: no content size, not single-segment; window 2^(10+7) = 128 KiB.
        None => f.extend_from_slice(&[0x00, 0x38]),
        // Descriptor: an 8-byte content size.
        Some(n) => {
            f.extend_from_slice(&[0xC0, 0x38]);
            f.extend_from_slice(&n.to_le_bytes());
        }
    }
    // (block type, size, content): 0 raw, 1 RLE.
    let mut blocks: Vec<(u32, u64, &[u8])> = Vec::new();
    for c in prefix.chunks(BLOCK as usize) {
        blocks.push((0, c.len() as u64, c));
    }
    let mut left = zeros;
    while left > 0 {
        let n = left.min(BLOCK);
        blocks.push((1, n, &[0u8]));
        left -= n;
    }
    if blocks.is_empty() {
        blocks.push((0, 0, &[]));
    }
    let last = blocks.len() - 1;
    for (i, (t, size, content)) in blocks.into_iter().enumerate() {
        let header = ((size as u32) << 3) | (t << 1) | u32::from(i == last);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.extend_from_slice(content);
    }
    f
}

/// The blob id of `prefix` followed by `zeros` zero bytes, hashed as a stream.
pub fn id_of_zeros(key: &MasterKey, prefix: &[u8], zeros: u64) -> BlobId {
    let mut h = blake3::Hasher::new_keyed(&key.id_key);
    h.update(prefix);
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    BlobId(*h.finalize().as_bytes())
}

/// Signs and seals objects with the key material and signing key of an opened repository.
pub struct Crafter<'a> {
    key: &'a MasterKey,
    signer: &'a Signer,
}

impl<'a> Crafter<'a> {
    /// A crafter writing as the key that opened `repo` (full or put-only).
    pub fn new(repo: &'a Repository) -> Self {
        Crafter {
            key: repo.key(),
            signer: repo.signer(),
        }
    }

    /// The key material.
    pub fn key(&self) -> &MasterKey {
        self.key
    }

    /// A pack holding `blobs` in order, with a fresh data key and a sealed header listing them
    /// as given; returns the pack object and its index entry.
    pub fn pack(&self, blobs: &[Blob]) -> (Object, IndexPack) {
        let data_key = DataKey::generate().unwrap();
        let mut bytes = Vec::new();
        let mut entries = Vec::new();
        for b in blobs {
            let stored = b.stored(&data_key);
            entries.push(BlobEntry {
                blob_type: b.blob_type,
                id: b.id,
                offset: bytes.len() as u64,
                length: stored.len() as u64,
                raw_length: b.raw_length,
                member: None,
            });
            bytes.extend_from_slice(&stored);
        }
        let header = PackHeader {
            version: tresor_format::FORMAT_VERSION,
            data_key: data_key.clone(),
            blobs: entries.clone(),
        };
        let plain = tresor_format::pack::encode_header(&header);
        let sealed = self.key.seal(SealedKind::PackHeader, &plain, None).unwrap();
        bytes.extend_from_slice(&sealed);
        bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(PACK_MAGIC);
        let pack = Object::new(Kind::Pack, bytes);
        let entry = IndexPack {
            id: pack.id(),
            data_key,
            blobs: entries,
        };
        (pack, entry)
    }

    /// An index object listing `packs`, signed by this key; `salt` (a made-up id in
    /// `supersedes`, which put-only keys' index objects cannot use) varies its name.
    pub fn index(&self, packs: Vec<IndexPack>, salt: Option<[u8; 32]>) -> Object {
        let f = IndexFile {
            version: tresor_format::FORMAT_VERSION,
            supersedes: salt.map(ObjectId).into_iter().collect(),
            packs,
        };
        Object::new(Kind::Index, f.to_object(self.key, self.signer).unwrap())
    }

    /// An index object listing `packs` whose name sorts before every name in `others` (readers
    /// prefer locations from index objects that sort first among those of put-only keys).
    pub fn index_sorting_first(&self, packs: Vec<IndexPack>, others: &[String]) -> Object {
        let bound = others.iter().min().cloned().unwrap_or_else(|| "g".into());
        for i in 0u64..1_000_000 {
            let mut salt = [0u8; 32];
            salt[..8].copy_from_slice(&i.to_le_bytes());
            let o = self.index(packs.clone(), Some(salt));
            if o.name < bound {
                return o;
            }
        }
        panic!("no index object name sorts before {bound}");
    }

    /// A snapshot of the root tree `tree` for `host`, dated an hour from now (so it is
    /// `latest`, yet not dated in the future, which readers never take as `latest`).
    pub fn snapshot(&self, tree: BlobId, host: &str) -> Object {
        let soon = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap();
        let s = snapshot_record(tree, "/", host, &soon.to_string());
        Object::new(Kind::Snapshot, s.seal(self.key, self.signer).unwrap())
    }

    /// Everything a snapshot of crafted trees needs, in write order: one pack holding `blobs`
    /// (trees, and data blobs they name), the index object listing it, and a snapshot of
    /// `root` for `host`.
    pub fn snapshot_of(&self, blobs: &[Blob], root: BlobId, host: &str) -> Vec<Object> {
        let (pack, entry) = self.pack(blobs);
        let index = self.index(vec![entry], None);
        vec![pack, index, self.snapshot(root, host)]
    }

    /// A pack of copies of the blobs `ids` (each with `body`, `flag` and `raw_length`) and an
    /// index object listing them that sorts before `others`: forged copies of other hosts'
    /// blobs, preferred by a reader that takes the first location.
    pub fn forged_copies(
        &self,
        ids: &[(BlobType, BlobId)],
        flag: u8,
        body: &[u8],
        raw_length: u64,
        others: &[String],
    ) -> Vec<Object> {
        let blobs: Vec<Blob> = ids
            .iter()
            .map(|(t, id)| Blob {
                blob_type: *t,
                id: *id,
                flag,
                body: body.to_vec(),
                raw_length,
            })
            .collect();
        let (pack, entry) = self.pack(&blobs);
        vec![pack, self.index_sorting_first(vec![entry], others)]
    }

    /// The blobs listed by the index objects in `storage` not signed by this key, with those
    /// objects' names, as read with the full key material `leak`. A put-only key learns no
    /// other writer's blob ids (dedup lists are sealed for their writer, format §9): the tests
    /// hand them over, as a leak of any kind would.
    pub fn others_blobs(
        &self,
        storage: &dyn Storage,
        leak: &MasterKey,
    ) -> (Vec<(BlobType, BlobId)>, Vec<String>) {
        let mut blobs = Vec::new();
        let mut names = Vec::new();
        for (name, _) in storage.list(Kind::Index).unwrap() {
            let bytes = storage.read(Kind::Index, &name).unwrap();
            let Ok((signer, env)) = IndexFile::envelope(&bytes) else {
                continue;
            };
            if signer == self.signer.public() {
                continue;
            }
            assert!(IndexFile::dedup_list(self.signer, &env).is_err());
            let f = IndexFile::open_sealed(leak, &env.sealed, &signer).unwrap();
            let listed = f.packs.iter().flat_map(|p| &p.blobs);
            blobs.extend(listed.map(|b| (b.blob_type, b.id)));
            names.push(name);
        }
        (blobs, names)
    }

    /// A signed envelope of `kind` around `body` as it is (not sealed, not decodable).
    pub fn signed_garbage(&self, kind: Kind, body: &[u8]) -> Object {
        let k = match kind {
            Kind::Snapshot => tresor_format::sign::SignedKind::Snapshot,
            _ => tresor_format::sign::SignedKind::Index,
        };
        Object::new(kind, self.signer.envelope(k, body))
    }
}

/// How hostile objects reach the repository.
pub enum Channel {
    /// Through the library's storage, as a put-only host's tresor would write them.
    Library(Arc<dyn Storage>),
    /// `PUT` requests of an `append`-role client of `tresor serve` at `addr`, repository `repo`;
    /// every one must be answered 201.
    Append {
        /// The server's address.
        addr: std::net::SocketAddr,
        /// Repository name.
        repo: String,
        /// The append client's token.
        token: String,
    },
    /// Files written into the local repository directory, as the storage itself could.
    Storage(PathBuf),
}

impl Channel {
    /// Deliver `o`.
    pub fn put(&self, o: &Object) {
        match self {
            Channel::Library(s) => s.write(o.kind, &o.name, &o.bytes).unwrap(),
            Channel::Append { addr, repo, token } => {
                let path = format!("/{repo}/{}/{}", o.kind.dir(), o.name);
                let status = http_put(*addr, &path, token, &o.bytes);
                assert_eq!(status, 201, "PUT {path} through the append role");
            }
            Channel::Storage(root) => {
                let path = root.join(layout::object_key(o.kind, &o.name));
                std::fs::create_dir_all(path.parent().expect("a folder")).unwrap();
                std::fs::write(path, &o.bytes).unwrap();
            }
        }
    }

    /// Deliver every object, in order.
    pub fn put_all(&self, objects: &[Object]) {
        for o in objects {
            self.put(o);
        }
    }
}

/// One HTTP/1.1 `PUT` with a bearer token on a new loopback connection; returns the status.
fn http_put(addr: std::net::SocketAddr, path: &str, token: &str, body: &[u8]) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
