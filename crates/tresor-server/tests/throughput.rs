//! Upload throughput of `RemoteStorage` over loopback HTTP (ignored: a measurement, not a check).
//! `cargo test --release -p tresor-server --test throughput -- --ignored --nocapture`

mod common;

use common::TestServer;
use std::time::Instant;
use tresor_storage::{Kind, Storage, name_of};

#[test]
#[ignore]
fn upload_throughput() {
    let srv = TestServer::start("");
    let s = std::sync::Arc::new(srv.storage("main", &srv.admin));
    s.create().unwrap();
    let objects: Vec<Vec<u8>> = (0..32u8)
        .map(|i| {
            let mut v = vec![i; 16 << 20];
            v[0..8].copy_from_slice(&(i as u64).to_le_bytes());
            v
        })
        .collect();
    for threads in [1usize, 2] {
        let start = Instant::now();
        std::thread::scope(|sc| {
            for t in 0..threads {
                let s = s.clone();
                let objects = &objects;
                sc.spawn(move || {
                    for o in objects.iter().skip(t).step_by(threads) {
                        s.write(Kind::Pack, &name_of(o), o).unwrap();
                    }
                });
            }
        });
        let mib = objects.len() * 16;
        let secs = start.elapsed().as_secs_f64();
        eprintln!("{threads} thread(s): {mib} MiB in {secs:.2} s = {:.0} MiB/s", mib as f64 / secs);
        for o in &objects {
            s.delete(Kind::Pack, &name_of(o)).unwrap();
        }
    }
}
