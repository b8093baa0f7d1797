//! Benchmarks of the expectation engine against its targets:
//! - parse the 357 KB `item-equipment` sample and compute all three presets: ≤ 2 ms median on one core;
//! - load (read + hash + parse + precompute) the reference cube table: ≤ 200 ms.
//!
//! `gzip/level_N` compresses the same sample at each zlib level (the compressed size of each is printed once):
//! the cost the cold path pays to store a raw payload, and what the level buys in size.
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
use maple_gateway::codec;
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
    c.bench_function("parse_for_engine_evan", |b| {
        b.iter(|| ItemEquipment::from_json_for_engine(black_box(&sample)).expect("sample parses"))
    });
    // The floor for any typed parse: validate and skip every token, build nothing.
    c.bench_function("scan_only_evan", |b| {
        b.iter(|| {
            let text = std::str::from_utf8(black_box(&sample)).expect("UTF-8");
            serde_json::from_str::<serde::de::IgnoredAny>(text).expect("sample is JSON")
        })
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

    let mut group = c.benchmark_group("gzip");
    gzip_levels(&mut group, "", &sample, &[1, 2, 3, 4, 6]);
    // What the gateway calls: the same levels with the thread's deflate state reused (no table allocation).
    group.bench_function("codec_raw_reused", |b| {
        b.iter(|| codec::compress_raw(black_box(&sample)))
    });
    let small = &sample[..50_000];
    group.bench_function("level_6_50k_fresh", |b| {
        b.iter(|| gzip(black_box(small), 6))
    });
    group.bench_function("codec_served_50k_reused", |b| {
        b.iter(|| codec::compress(black_box(small)))
    });
    // A served body as it is: the sample's expectation rendered as JSON (~60 KB).
    let served = serde_json::to_vec(&compute(&parsed, Some(&tables), &opts)).expect("json");
    gzip_levels(&mut group, "expectation", &served, &[4, 5, 6]);
    group.finish();

    // The simulator's cost per item-equipment answer (it shares the machine's cores with the gateway in
    // `loadtest/bench.sh`'s cold step): building a character's gear, and serialising it as the upstream does.
    let mut group = c.benchmark_group("simulator");
    let ocid = maple_gateway::sim::ocid_for(1, "BenchSim").expect("a valid name");
    group.bench_function("generate_equipment", |b| {
        b.iter(|| maple_gateway::sim::generate_equipment(1, black_box(&ocid), None))
    });
    let gear = maple_gateway::sim::generate_equipment(1, &ocid, None);
    group.bench_function("serialize_pretty", |b| {
        b.iter(|| serde_json::to_vec_pretty(black_box(&gear)).expect("serialisable"))
    });
    group.bench_function("serialize_answer", |b| {
        b.iter(|| {
            maple_gateway::sim::pretty_json(black_box(&gear), 512 * 1024).expect("serialisable")
        })
    });
    group.finish();
}

/// Benchmarks a fresh gzip of `data` at each level as `{what}_level_{level}` (`level_{level}` when `what` is
/// empty), printing the size each level gives.
fn gzip_levels(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    what: &str,
    data: &[u8],
    levels: &[u32],
) {
    let (id, label) = if what.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("{what}_"), format!("{what} JSON, "))
    };
    for &level in levels {
        let gz = gzip(data, level);
        eprintln!(
            "{label}gzip level {level}: {} -> {} bytes ({:.1}x)",
            data.len(),
            gz.len(),
            data.len() as f64 / gz.len() as f64
        );
        group.bench_function(format!("{id}level_{level}"), |b| {
            b.iter(|| gzip(black_box(data), level))
        });
    }
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(data).expect("in memory");
    enc.finish().expect("in memory")
}

criterion_group!(expectation, benches);
criterion_main!(expectation);
