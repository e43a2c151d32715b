//! `tresor cost` on moto: classes come from the listing (ListObjectsV2's `StorageClass`), not
//! from the configuration: data packs DEEP_ARCHIVE, tree packs and metadata STANDARD, and one
//! tree pack rewritten in GLACIER by hand shows in a row of its own.

use super::{Cold, boto, cold_packs};
use serde_json::Value;
use std::collections::BTreeMap;

/// (class → (objects, bytes)) of the `kinds` rows of `kind`.
fn rows(v: &Value, kind: &str) -> BTreeMap<String, (u64, u64)> {
    (v["kinds"].as_array().unwrap().iter())
        .filter(|r| r["kind"] == kind)
        .map(|r| {
            let n = (r["objects"].as_u64().unwrap(), r["bytes"].as_u64().unwrap());
            (r["class"].as_str().unwrap().to_string(), n)
        })
        .collect()
}

#[test]
fn cost_prices_the_listed_classes_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/big"), tresor_testkit::repo::data(9, 300_000)).unwrap();
    c.init_and_backup(&src);
    let cold: Vec<String> = cold_packs(&c.m, &c.bucket);
    // Every object: key → (size, class).
    let listing = boto(&c.m, &["sizes", &c.bucket, "repo"]);
    let objects: BTreeMap<String, (u64, String)> = (listing.lines())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), (f[1].parse().unwrap(), f[2].to_string()))
        })
        .collect();
    let tree_pack = (objects.iter())
        .find(|(k, (_, class))| k.starts_with("data/") && class == "STANDARD")
        .map(|(k, _)| k.clone())
        .unwrap();
    boto(
        &c.m,
        &[
            "reclass",
            &c.bucket,
            &format!("repo/{tree_pack}"),
            "GLACIER",
        ],
    );

    // Configured as all STANDARD: the listing wins.
    let (out, _) = c.run(&["cost", "--json", "--class-data", "STANDARD"], 0);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    super::super::json_contract::check("cost", &v);
    assert_eq!(v["class_source"], "listing", "{v}");
    let sum = |keys: &mut dyn Iterator<Item = &String>| -> (u64, u64) {
        keys.fold((0, 0), |(n, b), k| (n + 1, b + objects[k].0))
    };
    let data = sum(&mut cold.iter());
    assert_eq!(
        rows(&v, "data packs"),
        BTreeMap::from([("DEEP_ARCHIVE".to_string(), data)]),
        "{v}"
    );
    let hot_trees = (objects.iter())
        .filter(|(k, (_, cl))| k.starts_with("data/") && cl == "STANDARD" && **k != tree_pack);
    let mut want = BTreeMap::from([("GLACIER".to_string(), (1, objects[&tree_pack].0))]);
    let hot = sum(&mut hot_trees.map(|(k, _)| k));
    if hot.0 > 0 {
        want.insert("STANDARD".to_string(), hot);
    }
    assert_eq!(rows(&v, "tree packs"), want, "{v}");
    let index = sum(&mut objects.keys().filter(|k| k.starts_with("index/")));
    assert_eq!(
        rows(&v, "index"),
        BTreeMap::from([("STANDARD".to_string(), index)])
    );

    // Early deletion: the minimum storage duration (180 and 90 days, barely begun) of each
    // cold object, each billed with its 40 KiB overhead.
    let gb = (1u64 << 30) as f64;
    let due =
        |size: u64, price: f64, days: f64| (size + 40 * 1024) as f64 / gb * price * days / 30.0;
    let mut want = due(objects[&tree_pack].0, 0.0036, 90.0);
    for k in &cold {
        want += due(objects[k].0, 0.00099, 180.0);
    }
    let got = v["early_deletion_pending"].as_f64().unwrap();
    assert!((got - want).abs() <= want * 1e-3, "{got} {want}: {v}");
}
