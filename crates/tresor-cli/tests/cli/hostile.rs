//! The hostile-input suite (issue 10, items 1–4): what a put-only host, an `append`-role client
//! of `tresor serve`, or the storage itself can upload must not harm the admin's machine.
//!
//! Every attack is crafted with the kit (`tresor_testkit::craft`) from bytes and delivered through
//! each of three channels (test modules `library`, `append`, `storage`). Then, as root, the
//! admin runs `check --read-data` and `restore latest --target T`, and each test asserts:
//! * nothing outside `T` changed (the full listing of the directory around `T`, with a sentinel
//!   directory and a victim file, modes, owners, times and contents, before and after);
//! * the attack is refused or reported by name (the hostile snapshot, object or pack named by
//!   `check`; a hostile restore does not succeed);
//! * the honest host's snapshot restores byte for byte.
//!
//! Every command runs bounded (killed after a minute) and its peak memory is measured: no
//! command may use more than [`MAX_RSS_KIB`] (but a walk of `MAX_TREE_DEPTH` levels).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tresor_core::Repository;
use tresor_format::BlobId;
use tresor_format::blob::BlobType;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind};
use tresor_storage::Kind;
use tresor_testkit::craft::*;
use tresor_testkit::prelude::*;

const GOOD_PW: &str = "password of the honest host";
const EVIL_PW: &str = "password of the hostile host";
/// A command taking longer is killed and fails its test.
const LIMIT: Duration = Duration::from_secs(60);
/// Decompression bombs decompress to this much…
const BOMB: u64 = 640 << 20;
/// …and no command may use this much memory (the format's caps are 16 MiB for a chunk and
/// 256 MiB for a tree).
const MAX_RSS_KIB: i64 = 480 << 10;

/// What a bounded run of tresor gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident memory of the process, KiB.
    max_rss_kib: i64,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "exit {:?}, {} MiB\nstdout: {}\nstderr: {}",
            self.code,
            self.max_rss_kib >> 10,
            self.stdout,
            self.stderr
        )
    }
}

/// The peak resident memory of a running process, KiB (`VmHWM`; none once it has exited).
fn peak_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `cmd` to its end, killing it after [`LIMIT`]. Its peak memory is sampled every
/// millisecond from `/proc` while it runs (`wait4`'s `ru_maxrss` would include the test
/// process's own, inherited through `vfork`).
fn run(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            r.map(|mut r| r.read_to_end(&mut s));
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + LIMIT;
    let mut max_rss_kib = 0;
    let status = loop {
        if let Some(k) = peak_kib(child.id()) {
            max_rss_kib = max_rss_kib.max(k);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        max_rss_kib,
    }
}

/// Everything below a directory a hostile restore must leave alone: per path, what `lstat`
/// says and the content (file bytes hashed, symlink target).
type Listing = BTreeMap<PathBuf, String>;

fn listing(root: &Path, target: &Path) -> Listing {
    let mut out = Listing::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let content = if ft.is_file() {
            blake3::hash(&std::fs::read(&p).unwrap())
                .to_hex()
                .to_string()
        } else if ft.is_symlink() {
            std::fs::read_link(&p).unwrap().display().to_string()
        } else {
            String::new()
        };
        // The target's own times change when entries are created in it; nothing else may.
        let times = if p == target {
            String::new()
        } else {
            format!("{}.{}", m.mtime(), m.mtime_nsec())
        };
        let (mode, uid, gid, size) = (m.mode(), m.uid(), m.gid(), m.size());
        let line = format!("{mode:o} {uid}:{gid} {size} {times} {content}");
        out.insert(p.clone(), line);
        if ft.is_dir() && p != target {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

/// Fail, naming every entry that appeared, disappeared or changed, unless `after` is `before`.
fn assert_unchanged(before: &Listing, after: &Listing, r: &Run) {
    let mut diff = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => diff.push(format!("removed {}: {b}", p.display())),
            Some(a) if a != b => diff.push(format!("changed {}: {b} -> {a}", p.display())),
            Some(_) => {}
        }
    }
    for (p, a) in after.iter().filter(|(p, _)| !before.contains_key(*p)) {
        diff.push(format!("created {}: {a}", p.display()));
    }
    assert!(
        diff.is_empty(),
        "restore changed things outside T:\n{}\n{}",
        diff.join("\n"),
        r.text()
    );
}

/// A repository with an admin (full key, the default password of the test env), an honest
/// put-only host `good` with one snapshot, and a hostile put-only host `evil`.
struct Fx {
    env: Env,
    /// The directory around the restore target: a sentinel directory with a victim file, and
    /// `deep/er/t`, the target.
    world: PathBuf,
    target: PathBuf,
    /// The honest host's source and its snapshot.
    src: PathBuf,
    honest: String,
    /// The repository opened with the hostile host's key.
    evil: Repository,
    /// For the `append` channel: the server (kept alive) and its address and token.
    server: Option<tresor_server::ServerHandle>,
    /// The memory `check` and `restore` may use, KiB (`None`: not bounded by this test).
    max_rss_kib: Option<i64>,
}

impl Drop for Fx {
    /// A hostile restore may leave directories nested deeper than std's recursive removal
    /// (and the test thread's stack) can take: `rm -rf` walks them iteratively.
    fn drop(&mut self) {
        let _ = Command::new("rm")
            .arg("-rf")
            .arg(self.env.dir.path())
            .status();
    }
}

fn key_add(env: &Env, host: &str, password: &str) {
    let pw = env.password_file(&format!("{host}.pw"), &format!("{password}\n"));
    env.ok(&[
        "key",
        "add",
        "--put-only",
        "--host",
        host,
        "--new-password-file",
        pw.to_str().unwrap(),
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
    ]);
}

fn honest_source(env: &Env) -> PathBuf {
    let src = env.path("honest");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("notes.txt"), b"an honest host's notes\n").unwrap();
    std::fs::write(src.join("sub/data.bin"), pseudo_random(11, (16 << 20) + 1)).unwrap();
    std::os::unix::fs::symlink("notes.txt", src.join("link")).unwrap();
    src
}

fn setup() -> Fx {
    let env = Env::new();
    env.init();
    key_add(&env, "good", GOOD_PW);
    key_add(&env, "evil", EVIL_PW);
    let world = env.path("world");
    let target = world.join("deep/er/t");
    std::fs::create_dir_all(world.join("sentinel/dir")).unwrap();
    std::fs::write(world.join("sentinel/victim"), b"victim").unwrap();
    std::fs::write(world.join("sentinel/dir/inner"), b"inner").unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let src = honest_source(&env);
    let mut c = env.cmd();
    c.env("TRESOR_PASSWORD", GOOD_PW)
        .args(["--no-cache", "backup", "--json", "--host", "good"])
        .arg(&src);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let honest = v["snapshot_id"].as_str().unwrap().to_string();
    let storage = Arc::new(tresor_storage::local::LocalStorage::new(env.repo.clone()));
    let evil = Repository::open(storage, EVIL_PW).unwrap();
    Fx {
        env,
        world,
        target,
        src,
        honest,
        evil,
        server: None,
        max_rss_kib: Some(MAX_RSS_KIB),
    }
}

/// A `tresor serve` for the repository (as `main`) with one `append` client; returns the
/// channel that uploads through it.
fn append_channel(fx: &mut Fx) -> Channel {
    use tresor_server::auth::{generate_token, hash_token};
    let token = generate_token("vps1").unwrap();
    let text = format!(
        "[repositories.main]\npath = \"{}\"\n[clients.vps1]\nrepository = \"main\"\n\
         role = \"append\"\ntoken_hash = \"{}\"\n",
        fx.env.repo.display(),
        hash_token(&token).unwrap()
    );
    let cfg = tresor_server::ServerConfig::parse(&text).unwrap();
    let server = tresor_server::Server::from_config(&cfg).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = server.spawn(listener, None).unwrap();
    let addr = handle.addr();
    fx.server = Some(handle);
    Channel::Append {
        addr,
        repo: "main".into(),
        token,
    }
}

#[derive(Clone, Copy)]
enum Via {
    Library,
    Append,
    Storage,
}

impl Fx {
    /// The repository opened with the admin's full key: what a leak of other writers' blob ids
    /// would give the hostile host (its own key gives none).
    fn leak(&self) -> Repository {
        Repository::open(self.evil.storage().clone(), PASSWORD).unwrap()
    }

    fn channel(&mut self, via: Via) -> Channel {
        match via {
            Via::Library => Channel::Library(self.evil.storage().clone()),
            Via::Append => append_channel(self),
            Via::Storage => Channel::Storage(self.env.repo.clone()),
        }
    }

    fn crafter(&self) -> Crafter<'_> {
        Crafter::new(&self.evil)
    }

    /// The admin runs tresor (full key, as root) on the local repository.
    fn admin(&self, args: &[&str]) -> Run {
        let mut c = self.env.cmd();
        c.arg("--no-cache").args(args);
        run(c)
    }

    fn check(&self) -> Run {
        let r = self.admin(&["check", "--read-data", "--json"]);
        self.assert_memory("check", &r);
        r
    }

    /// `restore latest --target T`, with the outside of `T` compared before and after.
    fn restore_latest(&self) -> Run {
        let before = listing(&self.world, &self.target);
        let t = self.target.to_str().unwrap();
        let r = self.admin(&["restore", "latest", "--target", t]);
        let after = listing(&self.world, &self.target);
        assert_unchanged(&before, &after, &r);
        self.assert_memory("restore", &r);
        r
    }

    fn assert_memory(&self, what: &str, r: &Run) {
        if let Some(max) = self.max_rss_kib {
            assert!(r.max_rss_kib < max, "{what}'s memory: {}", r.text());
        }
    }

    /// The honest snapshot restored into `dir` equals the source: every entry, field by field,
    /// contents byte for byte.
    fn assert_honest_in(&self, dir: &Path) {
        let restored = dir.join(self.src.strip_prefix("/").unwrap());
        assert_same(&scan(&self.src, true), &scan(&restored, true));
    }

    /// The honest snapshot, restored by id to a fresh directory, is byte for byte the source.
    fn assert_honest_restores(&self) {
        let dir = self.env.path("honest-restore");
        let r = self.admin(&["restore", &self.honest, "--target", dir.to_str().unwrap()]);
        assert_eq!(r.code, Some(0), "honest restore: {}", r.text());
        self.assert_honest_in(&dir);
    }
}

/// `check`'s errors and warnings (JSON), one string.
fn reported(r: &Run) -> String {
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("check --json: {e}: {}", r.text()));
    format!("{} {}", v["errors"], v["warnings"])
}

/// Trees (and data blobs) to pack for a crafted snapshot.
#[derive(Default)]
struct Trees {
    blobs: Vec<Blob>,
}

impl Trees {
    fn tree(&mut self, key: &tresor_format::crypto::MasterKey, nodes: &[Node]) -> BlobId {
        let b = Blob::raw(key, BlobType::Tree, &tree_bytes(nodes));
        let id = b.id;
        self.blobs.push(b);
        id
    }

    fn data(&mut self, key: &tresor_format::crypto::MasterKey, bytes: &[u8]) -> Node {
        let b = Blob::raw(key, BlobType::Data, bytes);
        let node = file(b"", vec![b.id], bytes.len() as u64, 0o644);
        self.blobs.push(b);
        node
    }

    /// A file node `name` holding `bytes`, with `mode`.
    fn file(&mut self, key: &tresor_format::crypto::MasterKey, name: &[u8], bytes: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            ..self.data(key, bytes)
        }
    }
}

/// Items 1–2: deliver a snapshot of crafted trees, then: `restore latest` (which picks it: it
/// is dated an hour from now) changes nothing outside T and does not succeed, `check` calls it damage
/// naming the snapshot, and the honest snapshot restores.
fn expect_tree_refused(fx: &mut Fx, via: Via, trees: Trees, root: BlobId) {
    let objects = fx.crafter().snapshot_of(&trees.blobs, root, "evil");
    // What check may name: the snapshot, or the damaged tree (any of the crafted blobs).
    let mut names = vec![objects[2].name[..8].to_string()];
    names.extend(trees.blobs.iter().map(|b| b.id.short()));
    fx.channel(via).put_all(&objects);
    let r = fx.restore_latest();
    assert!(
        matches!(r.code, Some(1 | 5)),
        "a hostile restore does not succeed: {}",
        r.text()
    );
    let c = fx.check();
    assert_eq!(c.code, Some(5), "check reports damage: {}", c.text());
    let text = reported(&c);
    assert!(
        names.iter().any(|n| text.contains(n)),
        "check names snapshot {} or a tree of it: {}",
        names[0],
        c.text()
    );
    fx.assert_honest_restores();
}

/// The relative path from T to the victim file outside it.
const VICTIM: &[u8] = b"../../../sentinel/victim";

fn name_dotdot(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let pwned = t.file(&key, b"pwned", b"written outside the target");
    let s = t.tree(&key, &[pwned]);
    let mut up = t.tree(&key, &[dir(b"sentinel", s, 0o755)]);
    for _ in 0..3 {
        up = t.tree(&key, &[dir(b"..", up, 0o755)]);
    }
    expect_tree_refused(&mut fx, via, t, up);
}

fn name_dotdot_slash(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let a = t.file(&key, b"../../../sentinel/pwned", b"into the sentinel");
    let b = t.file(&key, b"../../x", b"beside the target's parent");
    let root = t.tree(&key, &[a, b]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn name_slash_through_symlink(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let link = symlink(b"a", b"../../../sentinel");
    let f = t.file(&key, b"a/pwned", b"through the link");
    let root = t.tree(&key, &[link, f]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn name_absolute(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let abs = fx.world.join("sentinel/abs-pwned");
    let f = t.file(&key, abs.as_os_str().as_encoded_bytes(), b"absolute");
    let root = t.tree(&key, &[f]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn name_dot(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let f = t.file(&key, b"dotted", b"in the dot");
    let sub = t.tree(&key, &[f]);
    let root = t.tree(&key, &[dir(b".", sub, 0o777)]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn name_empty(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let empty = t.file(&key, b"", b"no name");
    let ok = t.file(&key, b"ok", b"a name");
    let root = t.tree(&key, &[empty, ok]);
    expect_tree_refused(&mut fx, via, t, root);
}

/// A directory `d` (setuid, setgid, world-writable, with files), then a symlink `d` to the
/// victim: a late chmod by name would make the victim 06777.
fn dup_dir_then_symlink(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let f1 = t.file(&key, b"f1", &pseudo_random(1, 256 << 10));
    let f2 = t.file(&key, b"f2", &pseudo_random(2, 256 << 10));
    let d = t.tree(&key, &[f1, f2]);
    let root = t.tree(&key, &[dir(b"d", d, 0o6777), symlink(b"d", VICTIM)]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn dup_fifo_then_symlink(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let fifo = Node {
        mode: 0o6777,
        ..node(b"p", NodeKind::Fifo)
    };
    let root = t.tree(&key, &[fifo, symlink(b"p", VICTIM)]);
    expect_tree_refused(&mut fx, via, t, root);
}

fn unsorted_names(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let b = t.file(&key, b"b", b"second");
    let a = t.file(&key, b"a", b"first");
    let root = t.tree(&key, &[b, a]);
    expect_tree_refused(&mut fx, via, t, root);
}

/// Unsorted, so that the duplicate is not next to its twin: `d` (06777), `e`, symlink `d`.
fn unsorted_dup_dir_symlink(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let f1 = t.file(&key, b"f1", &pseudo_random(3, 256 << 10));
    let d = t.tree(&key, &[f1]);
    let e = t.file(&key, b"e", b"between");
    let root = t.tree(&key, &[dir(b"d", d, 0o6777), e, symlink(b"d", VICTIM)]);
    expect_tree_refused(&mut fx, via, t, root);
}

/// A file whose content is a blob no index lists (the harness's control: refused today).
fn missing_blob(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let f = file(b"f", vec![BlobId([7; 32])], 10, 0o644);
    let root = t.tree(&key, &[f]);
    expect_tree_refused(&mut fx, via, t, root);
}

/// Directories nested one level deeper than `MAX_TREE_DEPTH`.
fn deep_tree(via: Via) {
    let mut fx = setup();
    // Walking MAX_TREE_DEPTH levels is allowed, and takes its stack.
    fx.max_rss_kib = None;
    let key = fx.evil.key().clone();
    let mut t = Trees::default();
    let mut id = t.tree(&key, &[]);
    for _ in 0..=MAX_TREE_DEPTH {
        id = t.tree(&key, &[dir(b"d", id, 0o755)]);
    }
    expect_tree_refused(&mut fx, via, t, id);
}

/// A root tree that decompresses to [`BOMB`] bytes (a valid encoding: an empty tree followed
/// by zeros), far beyond `MAX_TREE_SIZE`; its id is its true keyed hash.
fn huge_tree(via: Via) {
    let mut fx = setup();
    let key = fx.evil.key().clone();
    let prefix = [tresor_format::tree::TREE_VERSION, 0];
    let bomb = Blob {
        blob_type: BlobType::Tree,
        id: id_of_zeros(&key, &prefix, BOMB),
        flag: 1,
        body: zeros_frame(&prefix, BOMB, None),
        raw_length: BOMB + 2,
    };
    let root = bomb.id;
    let t = Trees { blobs: vec![bomb] };
    expect_tree_refused(&mut fx, via, t, root);
}

/// Item 3: garbage (or foreign) objects never stop work on honest data: `check` names the
/// object, `restore latest` restores the honest snapshot, and an admin's `prune` succeeds and
/// (unless `kept`: a foreign signer an admin may still accept) removes it.
fn expect_garbage_ignored(fx: &mut Fx, via: Via, objects: &[Object], kept: bool) {
    fx.channel(via).put_all(objects);
    let named = &objects.last().unwrap().name;
    let c = fx.check();
    assert!(matches!(c.code, Some(0 | 5)), "{}", c.text());
    assert!(
        reported(&c).contains(&named[..8]),
        "check names {named}: {}",
        c.text()
    );
    let r = fx.restore_latest();
    assert_eq!(r.code, Some(0), "restore latest: {}", r.text());
    fx.assert_honest_in(&fx.target.clone());
    let p = fx.admin(&["prune"]);
    assert_eq!(p.code, Some(0), "prune: {}", p.text());
    let o = objects.last().unwrap();
    let path = fx.env.repo.join(o.kind.dir()).join(&o.name);
    assert_eq!(path.exists(), kept, "after prune: {}", p.text());
    fx.assert_honest_restores();
}

fn six_byte_index(via: Via) {
    let mut fx = setup();
    let g = garbage(Kind::Index, b"\x01\x02\x03\x04\x05\x06");
    expect_garbage_ignored(&mut fx, via, &[g], false);
}

fn garbage_snapshot(via: Via) {
    let mut fx = setup();
    let g = garbage(Kind::Snapshot, &pseudo_random(5, 300));
    expect_garbage_ignored(&mut fx, via, &[g], false);
}

fn signed_garbage_index(via: Via) {
    let mut fx = setup();
    let g = fx
        .crafter()
        .signed_garbage(Kind::Index, b"not an index envelope");
    expect_garbage_ignored(&mut fx, via, &[g], false);
}

fn signed_garbage_snapshot(via: Via) {
    let mut fx = setup();
    let g = fx
        .crafter()
        .signed_garbage(Kind::Snapshot, b"not a sealed snapshot");
    expect_garbage_ignored(&mut fx, via, &[g], false);
}

/// An index object signed by a key the repository does not know, listing a pack of garbage
/// stored under the honest host's blob ids.
fn foreign_index(via: Via) {
    let mut fx = setup();
    let (ids, _) = fx
        .crafter()
        .others_blobs(fx.evil.storage().as_ref(), fx.leak().key());
    let key = fx.evil.key().clone();
    let foreign = tresor_format::sign::Signer::generate().unwrap();
    let forged: Vec<Blob> = ids
        .iter()
        .map(|(t, id)| Blob {
            blob_type: *t,
            id: *id,
            flag: 0,
            body: b"forged".to_vec(),
            raw_length: 6,
        })
        .collect();
    let (pack, entry) = fx.crafter().pack(&forged);
    let f = tresor_format::index::IndexFile {
        version: tresor_format::FORMAT_VERSION,
        supersedes: vec![],
        packs: vec![entry],
    };
    let index = Object::new(Kind::Index, f.to_object(&key, &foreign).unwrap());
    expect_garbage_ignored(&mut fx, via, &[pack, index], true);
}

/// Item 4: copies of the honest host's blobs of the types `types`, stored by the hostile one
/// (`flag`, `body`, `raw_length`), listed by an index object whose name sorts first.
/// `restore latest` restores the honest snapshot byte for byte within bounded memory, and
/// `check` names the forged pack.
fn expect_forged_ignored(
    fx: &mut Fx,
    via: Via,
    types: &[BlobType],
    (flag, body, raw_length): (u8, &[u8], u64),
) {
    let crafter = fx.crafter();
    let leak = fx.leak();
    let (mut ids, others) = crafter.others_blobs(fx.evil.storage().as_ref(), leak.key());
    ids.retain(|(t, _)| types.contains(t));
    assert!(ids.len() >= 4, "{ids:?}");
    let objects = crafter.forged_copies(&ids, flag, body, raw_length, &others);
    fx.channel(via).put_all(&objects);
    let c = fx.check();
    assert!(
        reported(&c).contains(&objects[0].name[..8]),
        "check names the forged pack: {}",
        c.text()
    );
    assert_eq!(c.code, Some(0), "intact copies exist: {}", c.text());
    let r = fx.restore_latest();
    assert_eq!(r.code, Some(0), "restore latest: {}", r.text());
    fx.assert_honest_in(&fx.target.clone());
    fx.assert_honest_restores();
}

/// Data blobs that decompress to [`BOMB`] bytes, without a declared size (trees: `huge_tree`).
fn bomb_copy_without_size(via: Via) {
    let mut fx = setup();
    let frame = zeros_frame(&[], BOMB, None);
    expect_forged_ignored(&mut fx, via, &[BlobType::Data], (1, &frame, 4096));
}

/// Data blobs that decompress to [`BOMB`] bytes and declare 1 TiB.
fn bomb_copy_declaring_huge_size(via: Via) {
    let mut fx = setup();
    let frame = zeros_frame(&[], BOMB, Some(1 << 40));
    expect_forged_ignored(&mut fx, via, &[BlobType::Data], (1, &frame, 4096));
}

/// Copies of every blob with a wrong `raw_length` (1 byte): lengths must come from the copy
/// that verified.
fn shadow_raw_length(via: Via) {
    let mut fx = setup();
    let body = pseudo_random(9, 1000);
    let all = [BlobType::Data, BlobType::Tree];
    expect_forged_ignored(&mut fx, via, &all, (0, &body, 1));
}

macro_rules! through {
    ($via:ident, $($attack:ident),* $(,)?) => {
        $(
            #[test]
            fn $attack() {
                super::$attack(super::Via::$via)
            }
        )*
    };
}

macro_rules! attacks {
    ($($attack:ident),* $(,)?) => {
        /// Objects written with the hostile put-only key through the library.
        mod library { through!(Library, $($attack),*); }
        /// Objects uploaded by an `append`-role client of `tresor serve` (each answered 201).
        mod append { through!(Append, $($attack),*); }
        /// Objects written into the repository directory by its storage.
        mod storage { through!(Storage, $($attack),*); }
    };
}

attacks!(
    name_dotdot,
    name_dotdot_slash,
    name_slash_through_symlink,
    name_absolute,
    name_dot,
    name_empty,
    dup_dir_then_symlink,
    dup_fifo_then_symlink,
    unsorted_names,
    unsorted_dup_dir_symlink,
    missing_blob,
    deep_tree,
    huge_tree,
    six_byte_index,
    garbage_snapshot,
    signed_garbage_index,
    signed_garbage_snapshot,
    foreign_index,
    bomb_copy_without_size,
    bomb_copy_declaring_huge_size,
    shadow_raw_length,
);

/// The kit's hand-made zstd frames decode (through tresor's own blob decoder) to what they
/// claim, with and without a declared size, and its stored blobs to their plaintext.
#[test]
fn kit_frames_and_blobs_decode() {
    let key = tresor_format::crypto::MasterKey::generate().unwrap();
    let data_key = tresor_format::crypto::DataKey::generate().unwrap();
    let prefix = pseudo_random(1, 200_000);
    for declared in [None, Some(200_000 + 300_000)] {
        let b = Blob {
            blob_type: BlobType::Data,
            id: id_of_zeros(&key, &prefix, 300_000),
            flag: 1,
            body: zeros_frame(&prefix, 300_000, declared),
            raw_length: 500_000,
        };
        let plain = tresor_format::blob::decode(
            &data_key,
            &key.id_key,
            BlobType::Data,
            &b.id,
            &b.stored(&data_key),
        )
        .unwrap();
        assert_eq!(plain.len(), 500_000);
        assert_eq!(&plain[..200_000], &prefix[..]);
        assert!(plain[200_000..].iter().all(|b| *b == 0));
    }
    let nodes = [symlink(b"z", b"t"), node(b"a", NodeKind::Fifo)];
    let raw = Blob::raw(&key, BlobType::Tree, &tree_bytes(&nodes));
    let plain = tresor_format::blob::decode(
        &data_key,
        &key.id_key,
        BlobType::Tree,
        &raw.id,
        &raw.stored(&data_key),
    )
    .unwrap();
    assert_eq!(plain, tree_bytes(&nodes));
    assert_eq!(plain[0], tresor_format::tree::TREE_VERSION);
    assert_eq!(plain[1], 2, "two nodes, in the order given");
}
