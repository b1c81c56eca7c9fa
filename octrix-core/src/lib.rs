//! # octrix-core
//!
//! The pure core of Octrix, a self-healing reliability engine for Kubernetes
//! microservices. This crate decides; adapter crates act.
//!
//! * It does no IO: every interaction with the outside world goes through a
//!   port, a small trait implemented by an adapter (`octrix-k8s`,
//!   `octrix-prom`, `octrix-http`) or by the in-memory implementations here.
//! * It never reads the system clock: time comes from a [`Clock`].
//!
//! ## Modules
//!
//! * [`detect`]: streaming anomaly detection (windowed z-score, NAB's windowed
//!   Gaussian) and a bank of detectors keyed by series.
//! * [`classify`]: typed cluster observations turned into categorised,
//!   graded signals by a [`classify::SeverityPolicy`].
//! * [`incident`]: incidents with a lifecycle, deduplication, correlation and
//!   MTTA/MTTR statistics, behind an [`incident::IncidentStore`] port.
//! * [`cluster`]: cluster snapshots and the observer and actuator ports.
//! * [`engine`]: the loop tying detection, incidents and healing to the ports.
//! * [`healing`]: healing rules, policies, the safety budget and the planner.
//! * [`chaos`]: chaos scenarios and their catalog, safe and reversible runs
//!   drawing on the healing safety budget, abort guards, run statistics, and
//!   the executor port the simulator implements.
//! * [`alert`]: alerts as they arrive from an external system such as
//!   Alertmanager.
//! * [`metrics`]: the [`metrics::MetricSource`] port and typed metrics.
//! * [`sim`]: a seeded, clock-driven simulated cluster behind the ports.
//! * [`time`]: the [`Clock`] port and timestamps.
//! * [`labels`]: label sets and series keys.
//! * [`routing`]: traffic rules, Istio manifests, canaries, weighted picking
//!   and load balancing.
//! * [`resilience`]: circuit breakers with a per-service registry.

pub mod alert;
pub mod chaos;
pub mod classify;
pub mod cluster;
pub mod detect;
pub mod engine;
pub mod healing;
pub mod incident;
pub mod labels;
pub mod metrics;
pub mod resilience;
pub mod routing;
pub mod sim;
pub mod time;

pub use classify::{Category, Severity};
pub use labels::Labels;
pub use time::{Clock, ManualClock, Timestamp};
