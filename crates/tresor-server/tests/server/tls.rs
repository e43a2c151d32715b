//! `tresor+https://`: the conformance suite over TLS with a private CA, and certificate checks.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::Path;
use tresor_server::auth::{generate_token, hash_token};
use tresor_server::server::tls_config;
use tresor_server::{AccessLog, RemoteOptions, RemoteStorage, Server, ServerConfig};
use tresor_storage::{Storage, conformance};

/// A CA and a server certificate for localhost and 127.0.0.1, as PEM files in `dir`.
fn certificates(dir: &Path, name: &str) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-cert.pem")), leaf.pem()).unwrap();
    std::fs::write(
        dir.join(format!("{name}-key.pem")),
        leaf_key.serialize_pem(),
    )
    .unwrap();
}

#[test]
fn remote_storage_conforms_over_https() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "good");
    certificates(dir.path(), "rogue");
    let token = generate_token("admin").unwrap();
    let config = ServerConfig::parse(&format!(
        "[repositories.main]\npath = \"{}\"\n[clients.admin]\nrepository = \"main\"\nrole = \"admin\"\ntoken_hash = \"{}\"\n",
        dir.path().join("main").display(),
        hash_token(&token).unwrap()
    ))
    .unwrap();
    let server = Server::from_config(&config).unwrap();
    server.set_access_log(AccessLog::Off);
    let tls = tls_config(
        &dir.path().join("good-cert.pem"),
        &dir.path().join("good-key.pem"),
    )
    .unwrap();
    let handle = server
        .spawn(
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            Some(tls),
        )
        .unwrap();
    let port = handle.addr().port();
    let open = |host: &str, ca: &str| {
        let mut o = RemoteOptions::default();
        o.token = Some(token.clone());
        o.tls_ca = Some(dir.path().join(ca));
        o.retries = 0;
        RemoteStorage::open(&format!("tresor+https://{host}:{port}/main"), &o).unwrap()
    };
    for host in ["127.0.0.1", "localhost"] {
        let s = open(host, "good-ca.pem");
        s.create().unwrap();
    }
    let s = open("127.0.0.1", "good-ca.pem");
    conformance::run_all(&s);
    // A certificate from another CA is refused; so is plain HTTP to the TLS port.
    let e = open("127.0.0.1", "rogue-ca.pem").create().unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    let mut o = RemoteOptions::default();
    o.token = Some(token.clone());
    o.retries = 0;
    let plain = RemoteStorage::open(&format!("tresor+http://127.0.0.1:{port}/main"), &o).unwrap();
    assert!(plain.create().is_err());
    // Without --tls-ca the system roots do not know the private CA.
    let system = RemoteStorage::open(&format!("tresor+https://127.0.0.1:{port}/main"), &o).unwrap();
    assert!(system.create().is_err());
}

#[test]
fn http2_is_offered_by_alpn() {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "good");
    let token = generate_token("reader").unwrap();
    let config = ServerConfig::parse(&format!(
        "[repositories.main]\npath = \"{}\"\n[clients.reader]\nrepository = \"main\"\nrole = \"read\"\ntoken_hash = \"{}\"\n",
        dir.path().join("main").display(),
        hash_token(&token).unwrap()
    ))
    .unwrap();
    let server = Server::from_config(&config).unwrap();
    server.set_access_log(AccessLog::Off);
    let tls = tls_config(
        &dir.path().join("good-cert.pem"),
        &dir.path().join("good-key.pem"),
    )
    .unwrap();
    let handle = server
        .spawn(
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            Some(tls),
        )
        .unwrap();
    let addr = handle.addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(dir.path().join("good-ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for (token, status) in [(token.as_str(), 200), ("reader.wrong", 401)] {
            let req = http::Request::get("https://localhost/main/")
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            assert_eq!(resp.status().as_u16(), status);
        }
    });
}
