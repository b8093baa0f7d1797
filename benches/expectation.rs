//! Benchmarks of the expectation engine against its budgets (issue 4):
//! - parse the 357 KB `item-equipment` sample and compute all three presets: ≤ 2 ms median on one core;
//! - load (read + hash + parse + precompute) the reference cube table: ≤ 200 ms.
//!
//! `compute` memoises flame distributions process-wide, so after the first iteration the compute benches measure
//! the warm path; `flame_distribution_cold_*` shows the one-off cost of a new level bracket (a character brings at
//! most ~12 of them).
//!
//! Run: `cargo bench --bench expectation` (add `-- --measurement-time 3` for a short run). The inputs are read
//! from `../shared/data/` like the tests; a missing file aborts the bench with its path.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use maple_gateway::expectation::flames::{FlameDistribution, FlameKind};
use maple_gateway::expectation::{
    AttackType, CubeTables, ItemEquipment, MainStat, Profile, StarforceOptions, compute,
    compute_json,
};

const SAMPLE: &str = "../shared/data/nexon/item-equipment-evan.json";
const TABLE: &str = "../shared/data/cube_probability.csv";

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn benches(c: &mut Criterion) {
    let sample = read(SAMPLE);
    let table = read(TABLE);
    let (tables, _) = CubeTables::parse_bytes(&table).expect("reference table");
    let opts = StarforceOptions::default();

    c.bench_function("parse_and_compute_evan_3_presets", |b| {
        b.iter(|| compute_json(black_box(&sample), Some(&tables), &opts).expect("sample parses"))
    });
    let parsed = ItemEquipment::from_json(&sample).expect("sample parses");
    c.bench_function("compute_only_evan_3_presets", |b| {
        b.iter(|| compute(black_box(&parsed), Some(&tables), &opts))
    });
    c.bench_function("parse_only_evan", |b| {
        b.iter(|| ItemEquipment::from_json(black_box(&sample)).expect("sample parses"))
    });
    // The flame distributions of a new level bracket are computed once per process (then memoised); this is the
    // cold cost of the largest one (level 250, boss drop, eternal).
    let mage = Profile::fixed(Some(MainStat::Int), AttackType::Magic);
    c.bench_function("flame_distribution_cold_250_boss_eternal", |b| {
        b.iter(|| FlameDistribution::new(black_box(250), true, FlameKind::Eternal, &mage))
    });
    let mut group = c.benchmark_group("table");
    group.sample_size(20);
    group.bench_function("load_reference_cube_table", |b| {
        b.iter(|| CubeTables::load(black_box(Path::new(TABLE))).expect("reference table"))
    });
    group.finish();
}

criterion_group!(expectation, benches);
criterion_main!(expectation);
