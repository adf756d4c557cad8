//! Wall time of `kith ingest` at 100,000 and 1,000,000 people.
//!
//! Run with `cargo bench --bench ingest`; `KITH_BENCH_SIZES=100000` skips the million. The
//! export is generated once per size; each iteration ingests it into a fresh workspace, so
//! every run does the full work (hashing, validation, identity, consent, Parquet, fsync).
//! Peak memory is measured by `benches/ingest_memory.sh` under `/usr/bin/time -v`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kith::intake::{IngestOptions, ingest};
use kith::progress::Progress;
use kith::synth::{SynthConfig, generate};
use kith::workspace::Workspace;

fn sizes() -> Vec<usize> {
    std::env::var("KITH_BENCH_SIZES").ok().map_or_else(
        || vec![100_000, 1_000_000],
        |list| list.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    )
}

fn ingest_export(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10).measurement_time(Duration::from_mins(1));
    for people in sizes() {
        let export = tempfile::tempdir().expect("temporary folder");
        generate(&SynthConfig::new(people, 1), export.path(), &Progress::hidden())
            .expect("synth succeeds");
        let options = IngestOptions { export: export.path().to_owned(), as_of: None };
        group.bench_with_input(BenchmarkId::from_parameter(people), &options, |b, options| {
            b.iter_with_setup(
                || {
                    let dir = tempfile::tempdir().expect("temporary folder");
                    let workspace =
                        Workspace::init(&dir.path().join("ws"), "bench").expect("workspace");
                    (dir, workspace)
                },
                |(_dir, workspace)| {
                    ingest(&workspace, options, Progress::hidden()).expect("ingest succeeds")
                },
            );
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_export);
criterion_main!(benches);
