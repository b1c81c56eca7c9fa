//! Deploys a weighted Istio route on a real cluster (Minikube with Istio, or
//! any other): the VirtualService and DestinationRule the core generates,
//! server-side applied, then read back and printed.
//!
//! ```text
//! cargo run -p octrix-examples --example k8s_route -- \
//!     --namespace demo --service web --weights v1=90,v2=10
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use octrix_core::routing::{Destination, IstioApiVersion, TrafficRule};
use octrix_k8s::KubeRoutingApplier;

/// Istio API version to write.
#[derive(Clone, Copy, ValueEnum)]
enum Version {
    /// networking.istio.io/v1 (Istio 1.22 and later).
    V1,
    /// networking.istio.io/v1beta1 (Istio 1.5 and later).
    V1beta1,
}

/// Deploys a weighted route.
#[derive(Parser)]
struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kube context (default: the current one).
    #[arg(long)]
    context: Option<String>,
    /// Namespace of the service.
    #[arg(long)]
    namespace: String,
    /// The Kubernetes Service whose traffic is split.
    #[arg(long)]
    service: String,
    /// Subsets and weights, `subset=weight,...`; pods of a subset carry the
    /// label `version: <subset>`; the weights sum to 100.
    #[arg(long, default_value = "v1=90,v2=10")]
    weights: String,
    /// Istio API version.
    #[arg(long, value_enum, default_value_t = Version::V1)]
    istio_version: Version,
}

fn destinations(weights: &str) -> Result<Vec<Destination>> {
    weights
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let Some((subset, weight)) = pair.split_once('=') else {
                bail!("weight {pair:?} is not subset=weight");
            };
            let weight = weight.trim().parse().context("weight")?;
            Ok(Destination::for_version(subset.trim(), weight))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let connection = octrix_k8s::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .context("connecting to the cluster")?;
    let version = match args.istio_version {
        Version::V1 => IstioApiVersion::V1,
        Version::V1beta1 => IstioApiVersion::V1beta1,
    };
    let rule = TrafficRule::weighted(
        args.service.clone(),
        args.namespace.clone(),
        destinations(&args.weights)?,
    );
    let applier = KubeRoutingApplier::new(connection.client, version);
    let applied = applier.apply(&rule).await?;
    println!(
        "applied to {}: VirtualService and DestinationRule {}/{}",
        connection.cluster_name, args.namespace, args.service
    );
    println!(
        "VirtualService spec:\n{}",
        serde_json::to_string_pretty(&applied.virtual_service.data["spec"])?
    );
    println!(
        "DestinationRule spec:\n{}",
        serde_json::to_string_pretty(&applied.destination_rule.data["spec"])?
    );
    Ok(())
}
