//! # octrix-k8s
//!
//! Octrix's Kubernetes adapter, on kube-rs: it implements the core's cluster
//! ports against a real API server.
//!
//! * [`KubeObserver`] implements
//!   [`ClusterObserver`](octrix_core::cluster::ClusterObserver) with
//!   kube-runtime reflectors over Pods, Nodes, Deployments and ReplicaSets.
//! * [`KubeActuator`] implements
//!   [`ClusterActuator`](octrix_core::cluster::ClusterActuator): restart,
//!   scale, cordon, uncordon and drain (Eviction API), server-side dry runs,
//!   an Event per action, retries with backoff and typed errors.
//! * [`LeaderElector`] elects one replica on a `coordination.k8s.io/v1` Lease;
//!   [`KubeActuator::with_leader`] makes only the leader act.
//! * [`NoMetricSource`] lets the engine run on the Kubernetes API alone,
//!   without Prometheus.
//! * [`K8sConfig`] is the `[kubernetes]` section of Octrix's configuration
//!   file.
//! * [`rbac`] lists every API operation the crate performs; the
//!   least-privilege ClusterRole in `docs/deploy/` is checked against it.
//!
//! * [`KubeRoutingApplier`] server-side applies the Istio VirtualService and
//!   DestinationRule the core generates from a
//!   [`TrafficRule`](octrix_core::routing::TrafficRule), with a clear error
//!   when Istio's CRDs are missing, and implements the engine's
//!   [`TrafficControl`](octrix_core::engine::TrafficControl) (canary
//!   rollback).
//! * [`KubeChaosExecutor`] implements
//!   [`ChaosExecutor`](octrix_core::chaos::ChaosExecutor): pod deletion,
//!   node cordon and drain, stress Jobs, Istio fault injection and deny
//!   NetworkPolicies, all labelled with the run id and reverted exactly.
//!
//! The crate decides nothing: what to do comes from `octrix-core`. Each
//! module is a struct holding a [`kube::Client`] that implements a core port,
//! with requests named by [`rbac::ApiOp`]s, sent through [`api::call`].
//!
//! CPU and memory usage are not served by the Kubernetes API without
//! metrics-server: snapshots report them as `0.0`, and the core takes usage
//! from its Prometheus metric source.
//!
//! ## Tests
//!
//! Unit tests use no cluster (tower-test mocks). `tests/apiserver.rs` runs
//! against a real kube-apiserver and etcd started by `scripts/test-k8s`.

pub mod actuator;
pub mod api;
pub mod chaos;
pub mod client;
pub mod config;
pub mod convert;
pub mod leader;
pub mod metrics;
pub mod observer;
pub mod rbac;
pub mod routing;

pub use actuator::{ActuatorConfig, KubeActuator};
pub use chaos::{ChaosExecutorConfig, KubeChaosExecutor};
pub use client::{Connection, connect};
pub use config::K8sConfig;
pub use leader::{LeaderElector, LeaseConfig};
pub use metrics::NoMetricSource;
pub use observer::{KubeObserver, ObserverConfig};
pub use routing::{KubeRoutingApplier, RoutingError};
