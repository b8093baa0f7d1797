//! The engine end to end over the simulator: generated characters, the simulator's synthetic table.

use maple_gateway::expectation::{CubeTables, StarforceOptions, compute};
use maple_gateway::sim;

#[test]
fn generated_characters_compute_end_to_end_with_the_synthetic_table() {
    let (tables, report) = CubeTables::parse(sim::SYNTHETIC_TABLE_CSV.as_bytes()).unwrap();
    assert!(
        report.over_one.is_empty(),
        "the synthetic table sums to exactly 1 per group"
    );
    let mut potential_blocks = 0;
    let mut available = 0;
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        let name = format!("Gen{i}");
        let ocid = sim::ocid_for(1, &name).unwrap();
        let eq = sim::generate_equipment(1, &ocid, None);
        let exp = compute(&eq, Some(&tables), &StarforceOptions::default());
        let v = serde_json::to_value(&exp).unwrap();
        assert_eq!(v["presets"].as_array().unwrap().len(), 3);
        assert_eq!(v["table_version"], tables.version());
        for preset in v["presets"].as_array().unwrap() {
            for item in preset["items"].as_array().unwrap() {
                for block in ["potential", "additional"] {
                    let b = &item[block];
                    if let Some(reason) = b["unavailable"].as_str() {
                        if reason != "no_potential" {
                            potential_blocks += 1;
                            *reasons.entry(reason.to_string()).or_default() += 1;
                        }
                    } else {
                        potential_blocks += 1;
                        available += 1;
                        let p = b["probability"].as_f64().unwrap();
                        assert!(p > 0.0 && p <= 1.0, "{b}");
                        let cubes = b["expected_cubes"].as_f64().unwrap();
                        assert!((cubes - 1.0 / p).abs() < 1e-6 * cubes.max(1.0), "{b}");
                    }
                }
            }
        }
    }
    // The simulator draws every line from this table, so no group can be missing: the only reason left is
    // an item whose lines hold nothing worth targeting (the simulator rolls lines at the table's rates, and
    // most rolls are such lines).
    assert!(reasons.keys().all(|r| r == "no_target"), "{reasons:?}");
    assert!(
        available as f64 >= 0.5 * potential_blocks as f64,
        "{available}/{potential_blocks} available; reasons {reasons:?}"
    );
}
