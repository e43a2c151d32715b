use crate::args::CatArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, cat::Object, cat::tree_view};
use anyhow::{Context as _, Result, bail};
use tresor_core::repo::blobs::BlobReader;
use tresor_format::blob::BlobType;
use tresor_format::index::IndexFile;
use tresor_format::tree::Tree;
use tresor_format::{BlobId, ObjectId, pack};
use tresor_storage::Kind;

fn object_id(id: Option<&String>) -> Result<ObjectId> {
    let id = id.context("an object id is required")?;
    id.parse()
        .with_context(|| format!("{id:?} is not a full 64-digit id"))
}

pub fn run(ctx: &Context, a: &CatArgs) -> Result<i32> {
    let storage = ctx.storage()?;
    if a.kind == "config" {
        let c = ctx.read_config(storage.as_ref())?;
        render::emit(&Object::Config(&c), ctx.mode())?;
        return Ok(exit::OK);
    }
    if a.kind == "key" {
        let id = object_id(a.id.as_ref())?;
        let b = storage.read(Kind::Key, &id.to_hex())?;
        let kf = tresor_format::keyfile::KeyFile::from_bytes(&b)?;
        render::emit(&Object::Key(&kf), ctx.mode())?;
        return Ok(exit::OK);
    }
    let repo = ctx.open()?;
    repo.require_read("cat")?;
    match a.kind.as_str() {
        "snapshot" => {
            let (list, skipped) = repo.load_snapshots()?;
            let spec = a.id.as_deref().context("a snapshot id is required")?;
            let (_, s) = tresor_core::snapshots::find(&list, &skipped, spec, &Default::default())?;
            render::emit(&Object::Snapshot(s), ctx.mode())?;
        }
        "index" => {
            let id = object_id(a.id.as_ref())?;
            let (_, f) = IndexFile::open(repo.key(), &repo.read_object(Kind::Index, &id)?)?;
            let packs = f.packs.iter().map(Into::into).collect();
            render::emit(&Object::Index(packs), ctx.mode())?;
        }
        "pack" => {
            let id = object_id(a.id.as_ref())?;
            let bytes = repo.read_object(Kind::Pack, &id)?;
            let header = pack::read_header(repo.key(), &bytes)?;
            render::emit(&Object::Pack(&header.blobs), ctx.mode())?;
        }
        "tree" | "blob" => {
            let id: BlobId = a.id.as_deref().context("a blob id is required")?.parse()?;
            let index = repo.load_index()?;
            let reader = BlobReader::new(&repo, &index);
            if a.kind == "tree" {
                let tree = Tree::decode(&reader.load(&id, BlobType::Tree)?)?;
                render::emit(&Object::Tree(tree_view(&tree)?), ctx.mode())?;
            } else {
                // The plaintext as it is: not an outcome to render.
                use std::io::Write;
                std::io::stdout().write_all(&reader.load(&id, BlobType::Data)?)?;
            }
        }
        k => {
            bail!("unknown object kind {k:?}: use config, key, snapshot, index, pack, tree or blob")
        }
    }
    Ok(exit::OK)
}
