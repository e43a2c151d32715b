//! Upload throughput of `RemoteStorage` over loopback HTTP (ignored: a measurement, not a check).
//! `cargo test --release -p tresor-server --test server throughput -- --ignored --nocapture`

use std::time::Instant;
use tresor_storage::{Kind, Storage, name_of};
use tresor_testkit::prelude::TestServer;

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
    let local = tresor_storage::local::LocalStorage::new(srv.repo_path("other"));
    let start = Instant::now();
    for o in &objects {
        local.write(Kind::Pack, &name_of(o), o).unwrap();
    }
    eprintln!(
        "local directory: {:.0} MiB/s",
        (objects.len() * 16) as f64 / start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    for o in &objects {
        let _ = name_of(o);
    }
    eprintln!(
        "BLAKE3 alone: {:.0} MiB/s",
        (objects.len() * 16) as f64 / start.elapsed().as_secs_f64()
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (threads, burners) in [(1usize, 0usize), (2, 0), (1, 2), (2, 2)] {
        let spinning: Vec<_> = (0..burners)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
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
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for b in spinning {
            b.join().unwrap();
        }
        stop.store(false, std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{threads} uploading thread(s), {burners} busy thread(s): {mib} MiB in {secs:.2} s = {:.0} MiB/s",
            mib as f64 / secs
        );
        for o in &objects {
            s.delete(Kind::Pack, &name_of(o)).unwrap();
        }
    }
}
