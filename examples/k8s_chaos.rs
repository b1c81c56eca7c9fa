//! Runs one chaos scenario in a namespace of a real cluster (Minikube or any
//! other), holds it, then stops it, which restores the cluster.
//!
//! The run goes through the engine: targets are chosen from what the observer
//! sees, within the safety budget, never in protected namespaces nor taking a
//! workload's last ready replica.
//!
//! ```text
//! cargo run -p octrix-examples --example k8s_chaos -- \
//!     --namespace demo --scenario pod-failure --selector app=web --hold 30
//! cargo run -p octrix-examples --example k8s_chaos -- \
//!     --namespace demo --scenario latency-injection --selector app=web --dry-run
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use octrix_core::chaos::{ScenarioId, ScenarioType, StartOptions, TargetSelector};
use octrix_core::engine::{Engine, EngineConfig, EngineEvent, Ports, RecordingNotifier};
use octrix_core::incident::InMemoryIncidentStore;
use octrix_core::{Clock, Labels, Timestamp};
use octrix_k8s::{
    ActuatorConfig, ChaosExecutorConfig, KubeActuator, KubeChaosExecutor, KubeObserver,
    NoMetricSource, ObserverConfig,
};

/// Runs one chaos scenario, then stops it.
#[derive(Parser)]
struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kube context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// Namespace of the targets.
    #[arg(long)]
    namespace: String,
    /// Scenario type: pod-failure, node-failure, cpu-stress, memory-stress,
    /// disk-stress, latency-injection, packet-loss, service-failure,
    /// database-overload, network-partition.
    #[arg(long, default_value = "pod-failure")]
    scenario: ScenarioType,
    /// Target labels, `key=value,key=value`.
    #[arg(long, default_value = "")]
    selector: String,
    /// Seconds to hold the run before stopping it.
    #[arg(long, default_value_t = 30)]
    hold: u64,
    /// Choose targets and consult the budget, change nothing.
    #[arg(long)]
    dry_run: bool,
}

fn labels(selector: &str) -> Result<Labels> {
    let mut labels = Labels::new();
    for pair in selector.split(',').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("selector {pair:?} is not key=value");
        };
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(labels)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let connection = octrix_k8s::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .context("connecting to the cluster")?;
    let mut config = ObserverConfig::new(connection.cluster_name.clone());
    config.namespace = Some(args.namespace.clone());
    let observer = Arc::new(KubeObserver::spawn(connection.client.clone(), config));
    observer
        .wait_until_ready(Duration::from_secs(60))
        .await
        .context("waiting for the watches to sync")?;
    let name = connection.cluster_name.clone();
    let clock: Arc<dyn Clock> = Arc::new(Timestamp::now);
    let ports = Ports {
        metrics: Arc::new(NoMetricSource),
        observer,
        actuator: Arc::new(KubeActuator::new(
            connection.client.clone(),
            ActuatorConfig::new(name.clone()),
        )),
        store: Arc::new(InMemoryIncidentStore::default()),
        events: Arc::new(|event: EngineEvent| {
            if let EngineEvent::Chaos(chaos) = &event {
                println!(
                    "chaos: {}",
                    serde_json::to_string(chaos).unwrap_or_default()
                );
            }
        }),
        notifier: Arc::new(RecordingNotifier::default()),
        scripts: None,
        traffic: None,
        chaos: Some(Arc::new(KubeChaosExecutor::new(
            connection.client.clone(),
            ChaosExecutorConfig::new(name),
        ))),
        silencer: None,
        clock,
    };
    let mut engine = Engine::new(EngineConfig::default(), ports)?;
    // One tick takes the cluster snapshot that targets are chosen from.
    let report = engine.tick().await;
    for error in &report.errors {
        println!("error: {error}");
    }
    let options = StartOptions {
        dry_run: args.dry_run,
        target: Some(TargetSelector {
            namespace: Some(args.namespace.clone()),
            labels: labels(&args.selector)?,
            ..TargetSelector::default()
        }),
        ..StartOptions::default()
    };
    let run = engine
        .start_chaos(&ScenarioId::builtin(args.scenario), options)
        .await?;
    let chaos = engine.chaos().context("chaos is configured")?;
    let started = chaos.get(run).context("the run exists")?;
    println!("{run}: {} on", started.status);
    for target in &started.targets {
        println!("  {target}");
    }
    for change in started.injection.iter().flat_map(|i| &i.changes) {
        println!("  change: {}", serde_json::to_string(change)?);
    }
    if started.status.is_active() {
        println!("holding for {} s", args.hold);
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
        engine.stop_chaos(run).await?;
    }
    let ended = engine
        .chaos()
        .and_then(|c| c.get(run))
        .context("the run exists")?;
    println!(
        "{run}: {}{}",
        ended.status,
        ended
            .reverted_at
            .map(|t| format!(", reverted at {t}"))
            .unwrap_or_default()
    );
    Ok(())
}
