//! Fuzzes the whole engine: parse one item-equipment payload and compute its expectation against the real cube
//! table. Any payload must give an answer (or a parse error) quickly, in bounded memory, without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maple_gateway_fuzz::expectation::{CubeTables, StarforceSettings, compute_json};

static TABLE: &[u8] = include_bytes!("../../../shared/data/cube_probability.csv");

fn tables() -> &'static CubeTables {
    static T: OnceLock<CubeTables> = OnceLock::new();
    T.get_or_init(|| {
        CubeTables::parse_bytes(TABLE)
            .expect("the shared cube table parses")
            .0
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = compute_json(data, Some(tables()), &StarforceSettings::default());
});
