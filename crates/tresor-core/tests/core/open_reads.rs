//! Opening a repository reads each of its objects once: the key files read to find the key are
//! the ones the trust is built from (`keyfiles::read_key_files`, `Trust::load_with_key_files`),
//! with a password and with an unlocked key file — on S3 every listing and read is a request.

use super::marker_order::{Call, Ordered};
use tresor_core::Repository;
use tresor_storage::Kind;
use tresor_testkit::repo::*;

#[test]
fn opening_lists_and_reads_every_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let (logged, storage, repo) = Ordered::repository(dir.path());
    // A second key: two key files to read.
    add_full_key(&repo, "second", "h2");
    let unlocked =
        tresor_format::unlocked::UnlockedKey::new(&repo.config().id, repo.payload().clone());
    logged.take();

    Repository::open_with(storage.clone(), "admin", None).unwrap();
    let with_password = logged.take();
    let config = Repository::read_config_with_id(storage.as_ref()).unwrap();
    logged.take();
    Repository::open_unlocked_with_config(storage.clone(), config, unlocked, None).unwrap();
    let with_file = logged.take();

    for (calls, what) in [
        (&with_password, "password"),
        (&with_file, "unlocked key file"),
    ] {
        let n = |c: Call| calls.iter().filter(|&&x| x == c).count();
        assert_eq!(n(Call::Listed(Kind::Key)), 1, "{what}: {calls:?}");
        assert_eq!(n(Call::Read(Kind::Key)), 2, "{what}: {calls:?}");
        assert_eq!(n(Call::Listed(Kind::Trust)), 1, "{what}: {calls:?}");
    }
    let listed_config = |calls: &[Call]| calls.contains(&Call::Listed(Kind::Config));
    assert!(listed_config(&with_password), "{with_password:?}");
    assert!(!listed_config(&with_file), "read before: {with_file:?}");
}
