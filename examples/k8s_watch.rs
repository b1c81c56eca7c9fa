//! Watches a real cluster through a kubeconfig (Minikube or any other) and
//! prints the incidents the engine opens, with every step of their timeline.
//!
//! The engine runs on the Kubernetes API alone (no Prometheus): it sees crash
//! loops, OOM kills, pods that are not ready and node conditions. It heals
//! crash-looping pods by restarting them, as a dry run unless `--heal` is
//! given.
//!
//! ```text
//! cargo run -p octrix-examples --example k8s_watch -- --namespace default
//! cargo run -p octrix-examples --example k8s_watch -- --context minikube --heal
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use octrix_core::engine::{Engine, EngineConfig, EngineEvent, Ports, RecordingNotifier};
use octrix_core::healing::HealingConfig;
use octrix_core::incident::InMemoryIncidentStore;
use octrix_core::{Clock, Timestamp};
use octrix_k8s::{ActuatorConfig, KubeActuator, KubeObserver, NoMetricSource, ObserverConfig};

/// Watches a cluster and prints incidents.
#[derive(Parser)]
struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kube context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// Only this namespace (default: all).
    #[arg(long)]
    namespace: Option<String>,
    /// Seconds between two engine ticks.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Ticks to run; 0 runs until interrupted.
    #[arg(long, default_value_t = 0)]
    ticks: u64,
    /// Really restart crash-looping pods (default: dry run).
    #[arg(long)]
    heal: bool,
}

const RULES: &str = r#"
settle_seconds: 120
rules:
  - name: crashloops
    match: { categories: [pod-crash] }
    cooldown_seconds: 600
    actions:
      - type: restart-pod
"#;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let connection = octrix_k8s::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .context("connecting to the cluster")?;
    println!("watching cluster {}", connection.cluster_name);
    let mut config = ObserverConfig::new(connection.cluster_name.clone());
    config.namespace = args.namespace.clone();
    let observer = Arc::new(KubeObserver::spawn(connection.client.clone(), config));
    observer
        .wait_until_ready(Duration::from_secs(60))
        .await
        .context("waiting for the watches to sync")?;
    let actuator = KubeActuator::new(
        connection.client.clone(),
        ActuatorConfig::new(connection.cluster_name.clone()),
    );
    let clock: Arc<dyn Clock> = Arc::new(Timestamp::now);
    let ports = Ports {
        metrics: Arc::new(NoMetricSource),
        observer,
        actuator: Arc::new(actuator),
        store: Arc::new(InMemoryIncidentStore::default()),
        events: Arc::new(|event: EngineEvent| {
            if let EngineEvent::SourceStatus(status) = &event {
                println!(
                    "source: {}",
                    serde_json::to_string(status).unwrap_or_default()
                );
            }
        }),
        notifier: Arc::new(RecordingNotifier::default()),
        scripts: None,
        traffic: None,
        chaos: None,
        silencer: None,
        clock,
    };
    let mut healing = HealingConfig::from_yaml(RULES)?;
    healing.dry_run = !args.heal;
    let mut engine = Engine::new(
        EngineConfig {
            healing,
            ..EngineConfig::default()
        },
        ports,
    )?;
    // How much of each incident's timeline has been printed.
    let mut printed: HashMap<String, usize> = HashMap::new();
    let mut tick = 0u64;
    loop {
        let report = engine.tick().await;
        for error in &report.errors {
            println!("error: {error}");
        }
        for incident in engine.book().incidents() {
            let seen = printed.entry(incident.id.to_string()).or_insert(0);
            if *seen == 0 {
                println!(
                    "\n{} [{}] {} ({}, {})",
                    incident.id,
                    incident.severity,
                    incident.title,
                    incident.category,
                    incident.status
                );
            }
            for entry in incident.timeline.iter().skip(*seen) {
                println!(
                    "  {} {:<14} {}",
                    entry.at.strftime("%H:%M:%S"),
                    entry.actor,
                    serde_json::to_string(&entry.event).unwrap_or_default()
                );
            }
            *seen = incident.timeline.len();
        }
        tick += 1;
        if args.ticks != 0 && tick >= args.ticks {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
    }
}
