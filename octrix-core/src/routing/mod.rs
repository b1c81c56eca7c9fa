//! Weighted routing: traffic rules, Istio manifests, GitOps export, canary
//! progression, and in-process weighted picking and load balancing.
//!
//! * [`rule`]: the [`TrafficRule`] a user writes (service, hosts, weighted
//!   destinations, weighted / header-match / mirror kinds) and its
//!   field-level validation.
//! * [`istio`]: the rule as typed Istio `VirtualService` and
//!   `DestinationRule` objects (`networking.istio.io/v1beta1` or `v1`),
//!   rendered to YAML and JSON byte-for-byte reproducibly.
//! * [`gitops`]: the files a GitOps repository should hold, with stable
//!   names; an adapter writes them.
//! * [`canary`]: Flagger / Argo Rollouts style progressive delivery, a pure
//!   state machine fed with time and metrics.
//! * [`picker`]: smooth weighted round robin and alias-method random picks.
//! * [`balancer`]: round robin, least outstanding, weighted and
//!   power-of-two-choices load balancing over healthy endpoints.
//!
//! Like the rest of the core, nothing here does IO or reads the clock.
//!
//! ```
//! use octrix_core::routing::{Destination, IstioApiVersion, TrafficRule};
//!
//! let rule = TrafficRule::weighted(
//!     "reviews",
//!     "bookinfo",
//!     vec![Destination::for_version("v1", 80), Destination::for_version("v2", 20)],
//! );
//! let manifests = rule.to_istio(IstioApiVersion::V1).unwrap();
//! let yaml = octrix_core::routing::istio::to_yaml(&manifests.virtual_service).unwrap();
//! assert_eq!(
//!     yaml,
//!     "\
//! apiVersion: networking.istio.io/v1
//! kind: VirtualService
//! metadata:
//!   name: reviews
//!   namespace: bookinfo
//!   labels:
//!     app.kubernetes.io/managed-by: octrix
//! spec:
//!   hosts:
//!   - reviews
//!   http:
//!   - name: weighted
//!     route:
//!     - destination:
//!         host: reviews
//!         subset: v1
//!       weight: 80
//!     - destination:
//!         host: reviews
//!         subset: v2
//!       weight: 20
//! "
//! );
//! ```

pub mod balancer;
pub mod canary;
pub mod gitops;
pub mod istio;
pub mod picker;
pub mod rule;

mod names;

pub use istio::{IstioApiVersion, IstioManifests};
pub use rule::{Destination, FieldError, RuleError, RuleKind, StringMatch, TrafficRule};
