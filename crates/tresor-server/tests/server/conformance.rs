//! `RemoteStorage` against a live server passes the storage conformance suite.

use tresor_storage::{ErrorKind, Kind, Storage, conformance, name_of};
use tresor_testkit::prelude::TestServer;

#[test]
fn remote_storage_conforms_over_http() {
    let srv = TestServer::start("");
    let s = srv.storage("main", &srv.admin);
    s.create().unwrap();
    conformance::run_all(&s);
    let log = srv.access_log();
    assert!(log.contains("client=admin role=admin"), "{log}");
    assert!(!log.contains(&srv.admin), "the token is never logged");
}

#[test]
fn roles_over_the_client() {
    let srv = TestServer::start("");
    let admin = srv.storage("main", &srv.admin);
    let append = srv.storage("main", &srv.append);
    let read = srv.storage("main", &srv.read);
    let data = b"an index object".to_vec();
    let name = name_of(&data);
    append.write(Kind::Index, &name, &data).unwrap();
    append.write(Kind::Index, &name, &data).unwrap();
    assert_eq!(append.read(Kind::Index, &name).unwrap(), data);
    let pack = b"a pack".to_vec();
    let pname = name_of(&pack);
    append.write(Kind::Pack, &pname, &pack).unwrap();
    assert_eq!(
        append.read(Kind::Pack, &pname).unwrap_err().kind,
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        append.delete(Kind::Pack, &pname).unwrap_err().kind,
        ErrorKind::PermissionDenied
    );
    let key = b"a key".to_vec();
    assert_eq!(
        append
            .write(Kind::Key, &name_of(&key), &key)
            .unwrap_err()
            .kind,
        ErrorKind::PermissionDenied
    );
    assert_eq!(read.read(Kind::Pack, &pname).unwrap(), pack);
    assert_eq!(read.read_range(Kind::Pack, &pname, 2, 4).unwrap(), b"pack");
    assert_eq!(
        read.write(Kind::Pack, &name_of(b"x"), b"x")
            .unwrap_err()
            .kind,
        ErrorKind::PermissionDenied
    );
    admin.delete(Kind::Pack, &pname).unwrap();
    // Another repository does not exist for these clients.
    let other = srv.storage("other", &srv.admin);
    assert_eq!(other.create().unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(
        other.list(Kind::Index).unwrap_err().kind,
        ErrorKind::NotFound
    );
    let bad = srv.storage("main", "admin.not-the-token");
    assert_eq!(bad.create().unwrap_err().kind, ErrorKind::PermissionDenied);
    assert_eq!(
        admin.info().unwrap()["role"],
        serde_json::Value::from("admin")
    );
}
