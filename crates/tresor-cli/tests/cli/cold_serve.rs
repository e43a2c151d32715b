//! `tresor serve` in front of a cold tier: the client's hint that a pack holds trees
//! (`Tresor-Hot: 1`, `docs/protocol.md` §2) reaches the server's S3 storage, so tree packs stay
//! in the metadata class and `ls` through the server needs no thaw.

use super::{Cold, cold_packs};
use std::process::Command;

/// `tresor serve --stdio` on the bucket with `role`, data packs to DEEP_ARCHIVE (given to the
/// server only), as a `--server-command`.
fn stdio_command(c: &Cold, role: &str) -> String {
    format!(
        "exec '{}' --s3-storage-class-data DEEP_ARCHIVE serve --stdio --repo '{}' --role {role}",
        env!("CARGO_BIN_EXE_tresor"),
        c.url
    )
}

/// `tresor` through `serve --stdio` with `role`; the client itself has no storage class.
fn through_server(c: &Cold, role: &str) -> Command {
    let mut cmd = c.cmd();
    cmd.env_remove("TRESOR_S3_STORAGE_CLASS_DATA")
        .env("TRESOR_REPOSITORY", "ssh://backup@example.invalid/srv/repo")
        .env("TRESOR_SERVER_COMMAND", stdio_command(c, role));
    cmd
}

fn ok(mut cmd: Command, args: &[&str]) -> String {
    let o = cmd.args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A backup through `serve` on moto: its data packs are DEEP_ARCHIVE (moto refuses to read
/// one), its tree packs and every other object STANDARD (`cold_packs` checks both), and `ls`
/// through the server lists the files without a thaw.
#[test]
fn serve_keeps_tree_packs_hot_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    c.run(
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
        0,
    );
    let src = c.env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a"), b"alpha").unwrap();
    std::fs::write(src.join("d/big"), tresor_testkit::repo::data(8, 400_000)).unwrap();
    ok(
        through_server(&c, "admin"),
        &["backup", src.to_str().unwrap()],
    );
    // Data packs DEEP_ARCHIVE (unreadable), at least one pack (trees) and all else STANDARD.
    cold_packs(&c.m, &c.bucket);

    let listed = ok(through_server(&c, "read"), &["ls", "latest"]);
    let inner = src.join("d/big");
    assert!(listed.contains(inner.to_str().unwrap()), "{listed}");
    assert!(listed.contains(src.join("a").to_str().unwrap()), "{listed}");
}
