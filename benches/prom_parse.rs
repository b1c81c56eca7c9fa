//! Parsing a large Prometheus range-query answer (a matrix of 10,000 series
//! x 60 samples) into octrix-prom's typed result, next to parsing the same
//! bytes into `serde_json::Value` in one criterion group, so that the ratio
//! comes from one run.
//!
//! `cargo bench -p octrix-benches --bench prom_parse`

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use octrix_prom::prometheus::{Envelope, QueryData};

const SERIES: usize = 10_000;
const POINTS: usize = 60;

/// A matrix answer shaped like Prometheus's: container CPU usage per pod,
/// 15 s steps, values as Go formats them (including the odd `NaN`).
fn matrix_body() -> Vec<u8> {
    let mut out = String::with_capacity(SERIES * POINTS * 28 + SERIES * 200);
    out.push_str(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for s in 0..SERIES {
        if s > 0 {
            out.push(',');
        }
        write!(
            out,
            r#"{{"metric":{{"__name__":"container_cpu_usage_seconds_total","container":"app","instance":"10.0.{}.{}:10250","job":"kubelet","namespace":"ns-{}","pod":"app-{s}-7d9f8c6b5-x2k4p"}},"values":["#,
            s / 250,
            s % 250,
            s % 40,
        )
        .unwrap();
        for p in 0..POINTS {
            if p > 0 {
                out.push(',');
            }
            // xorshift: cheap, deterministic values with varied digits.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let timestamp = 1_795_424_000.0 + (p as f64) * 15.0 + 0.123;
            if state.is_multiple_of(997) {
                write!(out, r#"[{timestamp},"NaN"]"#).unwrap();
            } else {
                let value = (state % 1_000_000) as f64 / 1000.0;
                write!(out, r#"[{timestamp},"{value}"]"#).unwrap();
            }
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    out.into_bytes()
}

fn parse_matrix(c: &mut Criterion) {
    let body = matrix_body();
    // Both parsers must accept the input, and the typed one must see it all.
    let typed: Envelope<QueryData> = serde_json::from_slice(&body).unwrap();
    match typed.data {
        Some(QueryData::Matrix(series)) => {
            assert_eq!(series.len(), SERIES);
            assert!(series.iter().all(|s| s.values.len() == POINTS));
        }
        other => panic!("not a matrix: {other:?}"),
    }
    serde_json::from_slice::<serde_json::Value>(&body).unwrap();

    let mut group = c.benchmark_group("prom_parse_matrix_10000x60");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Elements((SERIES * POINTS) as u64));
    group.bench_function("typed_query_data", |b| {
        b.iter(|| {
            let parsed: Envelope<QueryData> = serde_json::from_slice(black_box(&body)).unwrap();
            black_box(parsed)
        })
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let parsed: serde_json::Value = serde_json::from_slice(black_box(&body)).unwrap();
            black_box(parsed)
        })
    });
    group.finish();
    println!(
        "prom_parse: body is {:.1} MiB, {} samples",
        body.len() as f64 / (1024.0 * 1024.0),
        SERIES * POINTS
    );
}

criterion_group!(benches, parse_matrix);
criterion_main!(benches);
