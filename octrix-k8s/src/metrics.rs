//! [`NoMetricSource`]: the engine's metric port when only the Kubernetes API
//! is at hand.
//!
//! The Kubernetes API serves no usage figures without metrics-server, and
//! Octrix takes usage from Prometheus (`octrix-prom`). Where no Prometheus is
//! configured, this source lets the engine run on what the
//! [`KubeObserver`](crate::KubeObserver) reports (crash loops, OOM kills, node
//! conditions): its scrapes are empty and its queries say that it has no data.

use async_trait::async_trait;
use octrix_core::metrics::{
    ClusterMetrics, MetricSource, NodeMetrics, PodMetrics, SeriesSample, ServiceMetrics,
    ServiceSelector, SourceError, SourceInfo, SourceKind,
};

/// A metric source that has no metrics: scrapes are empty, usage lists are
/// empty, cluster and service queries are [`SourceError::NotFound`].
#[derive(Debug, Clone, Default)]
pub struct NoMetricSource;

const NAME: &str = "none (Kubernetes API only)";

fn not_found(what: &str) -> SourceError {
    SourceError::NotFound {
        source_name: NAME.to_owned(),
        what: what.to_owned(),
    }
}

#[async_trait]
impl MetricSource for NoMetricSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: NAME.to_owned(),
            kind: SourceKind::None,
        }
    }

    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError> {
        Ok(Vec::new())
    }

    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError> {
        Ok(Vec::new())
    }

    async fn pod_metrics(&self, _namespace: Option<&str>) -> Result<Vec<PodMetrics>, SourceError> {
        Ok(Vec::new())
    }

    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError> {
        Err(not_found("cluster metrics"))
    }

    async fn service_metrics(
        &self,
        selector: &ServiceSelector,
    ) -> Result<ServiceMetrics, SourceError> {
        Err(not_found(&format!(
            "service {}/{}",
            selector.namespace, selector.service
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_no_data() {
        let source = NoMetricSource;
        assert!(source.scrape().await.expect("scrape").is_empty());
        assert!(source.pod_metrics(None).await.expect("pods").is_empty());
        assert_eq!(
            source
                .cluster_metrics()
                .await
                .expect_err("none")
                .to_string(),
            "cluster metrics not found in metric source none (Kubernetes API only)"
        );
    }
}
