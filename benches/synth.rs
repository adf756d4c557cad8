//! Wall time of `kith synth` at 100,000 and 1,000,000 people.
//!
//! Run with `cargo bench --bench synth`; set `KITH_BENCH_SIZES=100000` to skip the million.
//! Each iteration writes a full export (about 1.7 GB at a million people) to a temporary
//! folder, so the figures include formatting and disk writes. Peak memory is measured by
//! `benches/synth_memory.sh`, which runs the release binary under `/usr/bin/time -v`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kith::progress::Progress;
use kith::synth::{SynthConfig, generate};

fn sizes() -> Vec<usize> {
    std::env::var("KITH_BENCH_SIZES").ok().map_or_else(
        || vec![100_000, 1_000_000],
        |list| list.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    )
}

fn synth(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    for people in sizes() {
        group.bench_with_input(BenchmarkId::from_parameter(people), &people, |b, &people| {
            let out = tempfile::tempdir().expect("temporary folder");
            b.iter(|| {
                generate(&SynthConfig::new(people, 1), out.path(), &Progress::hidden())
                    .expect("synth succeeds")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, synth);
criterion_main!(benches);
