//! Streams a real series from the Numenta Anomaly Benchmark (bundled in
//! `benches/data/nab`) through a windowed z-score detector, classifies the
//! anomalies and opens incidents, printing both.
//!
//! ```text
//! cargo run -p octrix-examples --example nab_stream -- \
//!     --file benches/data/nab/data/realKnownCause/machine_temperature_system_failure.csv
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use octrix_core::classify::{AnomalyReading, Classifier, Observation, Reading, ResourceRef};
use octrix_core::detect::{Detector, WindowedZScore, WindowedZScoreConfig};
use octrix_core::incident::{IncidentBook, Ingested};
use octrix_core::{Labels, Timestamp};

/// Streams a NAB series through Octrix's detector and incident book.
#[derive(Parser)]
struct Args {
    /// A NAB CSV file (`timestamp,value`).
    #[arg(long, default_value = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../benches/data/nab/data/realKnownCause/machine_temperature_system_failure.csv"
    ))]
    file: PathBuf,
    /// Window of the z-score detector, in samples.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// Sensitivity, in standard deviations.
    #[arg(long, default_value_t = 2.5)]
    sensitivity: f64,
}

fn parse_row(line: &str, number: usize) -> Result<(Timestamp, f64)> {
    let (at, value) = line
        .split_once(',')
        .with_context(|| format!("line {number}: expected `timestamp,value`"))?;
    let at: Timestamp = format!("{}Z", at.replace(' ', "T"))
        .parse()
        .with_context(|| format!("line {number}: bad timestamp {at:?}"))?;
    let value: f64 = value
        .trim()
        .parse()
        .with_context(|| format!("line {number}: bad value {value:?}"))?;
    Ok((at, value))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let series = args
        .file
        .file_stem()
        .map_or_else(|| "series".to_owned(), |s| s.to_string_lossy().into_owned());
    let mut detector = WindowedZScore::new(&WindowedZScoreConfig {
        window: args.window,
        sensitivity: args.sensitivity,
        ..WindowedZScoreConfig::default()
    })?;
    let mut classifier = Classifier::default();
    let mut book = IncidentBook::default();
    let resource =
        ResourceRef::cluster_scoped(octrix_core::classify::ResourceKind::Series, &series);
    let (mut samples, mut anomalies) = (0usize, 0usize);

    for (number, line) in text.lines().enumerate().skip(1) {
        let (at, value) = parse_row(line, number + 1)?;
        samples += 1;
        let detection = detector.observe(value)?;
        if detection.is_anomaly {
            anomalies += 1;
            println!(
                "{at}  anomaly  value {value:>10.3}  z {:>6.2}  score {:.3}  confidence {:.2}",
                detection.z, detection.score, detection.confidence
            );
        }
        let observation = Observation::new(
            at,
            resource.clone(),
            Reading::Anomaly(AnomalyReading {
                metric: series.clone(),
                labels: Labels::new(),
                value,
                score: detection.score,
                z: detection.z,
                direction: detection.direction,
            }),
        );
        for classification in classifier.observe(&observation) {
            match book.ingest(&classification, at) {
                Ingested::Opened(id) | Ingested::Reopened(id) => {
                    let incident = book.get(&id).context("an opened incident exists")?;
                    println!(
                        "{at}  incident {id} opened [{}]: {}",
                        incident.severity, incident.title
                    );
                }
                Ingested::AutoResolved(id) => println!("{at}  incident {id} resolved"),
                _ => {}
            }
        }
    }
    if samples == 0 {
        bail!("{} has no samples", args.file.display());
    }
    let stats = book.stats(&octrix_core::incident::TimeRange::all());
    println!(
        "\n{samples} samples, {anomalies} anomalies ({:.2}%), {} incidents opened",
        100.0 * anomalies as f64 / samples as f64,
        stats.total
    );
    Ok(())
}
