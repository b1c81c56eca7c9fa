//! [`KubeRoutingApplier`]: the Istio objects the core generates from a
//! [`TrafficRule`], applied to a cluster.
//!
//! | operation | requests |
//! |---|---|
//! | discovery | `GET /apis` once: is `networking.istio.io/<version>` served? |
//! | [`apply`](KubeRoutingApplier::apply) | server-side apply (field manager `octrix`, forced) of the VirtualService and the DestinationRule, which answers with the stored objects |
//! | [`route_all_to`](KubeRoutingApplier::route_all_to), [`TrafficControl::rollback`] | `GET` the VirtualService, then server-side apply it with every weight on one subset |
//!
//! The objects are sent as [`DynamicObject`]s with the [`ApiResource`] of the
//! chosen [`IstioApiVersion`] (`v1beta1` is served by every Istio since 1.5,
//! `v1` from 1.22 on). Where Istio's CRDs are not installed the applier says
//! so ([`RoutingError::IstioNotInstalled`]) instead of failing with a bare
//! 404.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use async_trait::async_trait;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use octrix_core::engine::{PortError, TrafficControl};
use octrix_core::routing::istio::{DestinationRule, VirtualService};
use octrix_core::routing::{IstioApiVersion, IstioManifests, RuleError, TrafficRule};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::actuator::FIELD_MANAGER;
use crate::api::{self, ApiError, RetryConfig};
use crate::rbac;

/// Istio's networking API group.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// The [`ApiResource`] of Istio's `VirtualService` in `version`.
pub fn virtual_service_resource(version: IstioApiVersion) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(ISTIO_GROUP, version.as_str(), "VirtualService"),
        "virtualservices",
    )
}

/// The [`ApiResource`] of Istio's `DestinationRule` in `version`.
pub fn destination_rule_resource(version: IstioApiVersion) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(ISTIO_GROUP, version.as_str(), "DestinationRule"),
        "destinationrules",
    )
}

/// Why routing could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The API server does not serve `networking.istio.io/<version>`.
    #[error("Istio CRDs are not installed ({api_version})")]
    IstioNotInstalled {
        /// The API version asked for, e.g. `networking.istio.io/v1`.
        api_version: String,
    },
    /// The rule failed the core's validation.
    #[error(transparent)]
    InvalidRule(#[from] RuleError),
    /// The API server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A generated object could not be turned into a Kubernetes object.
    #[error("cannot encode {kind} {namespace}/{name}: {source}")]
    Encode {
        /// `VirtualService` or `DestinationRule`.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// No VirtualService routes the service.
    #[error("no VirtualService {namespace}/{name}")]
    NoVirtualService {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A rollback was asked for a service whose stable subset is unknown.
    #[error(
        "the stable subset of {namespace}/{service} is unknown: apply its rule or set it first"
    )]
    UnknownStableSubset {
        /// Namespace.
        namespace: String,
        /// Service.
        service: String,
    },
}

/// Both objects as the API server stored them.
#[derive(Debug, Clone)]
pub struct AppliedRoute {
    /// The VirtualService.
    pub virtual_service: DynamicObject,
    /// The DestinationRule.
    pub destination_rule: DynamicObject,
}

/// Whether the API server serves `networking.istio.io/<version>`.
///
/// # Errors
/// An [`ApiError`] when discovery itself fails.
pub async fn istio_served(
    client: &Client,
    retry: &RetryConfig,
    version: IstioApiVersion,
) -> Result<bool, ApiError> {
    let groups = api::call(retry, rbac::DISCOVERY, "/apis", || client.list_api_groups()).await?;
    Ok(groups
        .groups
        .iter()
        .filter(|g| g.name == ISTIO_GROUP)
        .flat_map(|g| &g.versions)
        .any(|v| v.version == version.as_str()))
}

/// Converts a typed object of the core into a [`DynamicObject`].
fn to_dynamic<T: serde::Serialize>(
    object: &T,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<DynamicObject, RoutingError> {
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .map_err(|source| RoutingError::Encode {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })
}

/// Sets every HTTP route of a VirtualService `spec` to send all its traffic
/// to `subset` (weight 100; the other destinations 0) and removes mirrors.
/// A route without a destination for `subset` (an A/B route to the canary)
/// is pointed at `subset` of its first destination's host.
pub fn weights_all_to(spec: &mut Value, subset: &str) {
    let Some(routes) = spec.get_mut("http").and_then(Value::as_array_mut) else {
        return;
    };
    for route in routes {
        if let Some(object) = route.as_object_mut() {
            object.remove("mirror");
            object.remove("mirrorPercentage");
        }
        let Some(destinations) = route.get_mut("route").and_then(Value::as_array_mut) else {
            continue;
        };
        let has_subset = destinations
            .iter()
            .any(|d| d["destination"]["subset"].as_str() == Some(subset));
        if !has_subset {
            let host = destinations
                .first()
                .and_then(|d| d["destination"]["host"].as_str())
                .unwrap_or_default()
                .to_owned();
            *destinations = vec![json!({"destination": {"host": host, "subset": subset}})];
        }
        let single = destinations.len() == 1;
        for destination in destinations.iter_mut() {
            let on = destination["destination"]["subset"].as_str() == Some(subset);
            if let Some(object) = destination.as_object_mut() {
                if single {
                    object.remove("weight");
                } else {
                    object.insert("weight".into(), json!(if on { 100 } else { 0 }));
                }
            }
        }
    }
}

/// Applies Istio routing generated by the core.
pub struct KubeRoutingApplier {
    client: Client,
    version: IstioApiVersion,
    retry: RetryConfig,
    installed: OnceCell<()>,
    stable: Mutex<HashMap<(String, String), String>>,
}

impl Debug for KubeRoutingApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRoutingApplier")
            .field("version", &self.version)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl KubeRoutingApplier {
    /// An applier writing `networking.istio.io/<version>` objects through
    /// `client`.
    pub fn new(client: Client, version: IstioApiVersion) -> Self {
        Self {
            client,
            version,
            retry: RetryConfig::default(),
            installed: OnceCell::new(),
            stable: Mutex::new(HashMap::new()),
        }
    }

    /// Retries failed requests as `retry` says.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The Istio API version written.
    pub fn version(&self) -> IstioApiVersion {
        self.version
    }

    /// Checks that Istio's CRDs are installed. A positive answer is cached; a
    /// negative one is asked again next time (the CRDs may be installed
    /// meanwhile).
    ///
    /// # Errors
    /// [`RoutingError::IstioNotInstalled`], or [`RoutingError::Api`] when
    /// discovery fails.
    pub async fn ensure_installed(&self) -> Result<(), RoutingError> {
        self.installed
            .get_or_try_init(|| async {
                if istio_served(&self.client, &self.retry, self.version).await? {
                    Ok(())
                } else {
                    Err(RoutingError::IstioNotInstalled {
                        api_version: self.version.api_version().to_owned(),
                    })
                }
            })
            .await
            .copied()
    }

    /// Records `subset` as the stable version of `namespace/service`, where
    /// [`TrafficControl::rollback`] sends all traffic.
    pub fn set_stable_subset(&self, namespace: &str, service: &str, subset: &str) {
        self.stable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                (namespace.to_owned(), service.to_owned()),
                subset.to_owned(),
            );
    }

    /// The stable subset of `namespace/service`, if known.
    pub fn stable_subset(&self, namespace: &str, service: &str) -> Option<String> {
        self.stable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(namespace.to_owned(), service.to_owned()))
            .cloned()
    }

    fn api(&self, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, resource)
    }

    /// Generates the rule's VirtualService and DestinationRule and applies
    /// them. The rule's first destination becomes the service's stable subset
    /// unless [`set_stable_subset`](Self::set_stable_subset) named one.
    ///
    /// # Errors
    /// [`RoutingError::InvalidRule`] before anything is sent; otherwise as
    /// [`apply_manifests`](Self::apply_manifests).
    pub async fn apply(&self, rule: &TrafficRule) -> Result<AppliedRoute, RoutingError> {
        let manifests = rule.to_istio(self.version)?;
        let applied = self.apply_manifests(&manifests).await?;
        if let Some(first) = rule.destinations.first() {
            self.stable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry((rule.namespace.clone(), rule.service.clone()))
                .or_insert_with(|| first.subset.clone());
        }
        Ok(applied)
    }

    /// Server-side applies both objects, the DestinationRule first (so the
    /// subsets exist before routes name them).
    ///
    /// # Errors
    /// [`RoutingError::IstioNotInstalled`] when the CRDs are missing, or the
    /// API server's refusal.
    pub async fn apply_manifests(
        &self,
        manifests: &IstioManifests,
    ) -> Result<AppliedRoute, RoutingError> {
        self.ensure_installed().await?;
        let destination_rule = self.apply_destination_rule(&manifests.destination_rule);
        let destination_rule = destination_rule.await?;
        let virtual_service = self
            .apply_virtual_service(&manifests.virtual_service)
            .await?;
        Ok(AppliedRoute {
            virtual_service,
            destination_rule,
        })
    }

    async fn server_side_apply(
        &self,
        op: rbac::ApiOp,
        resource: &ApiResource,
        object: &DynamicObject,
    ) -> Result<DynamicObject, RoutingError> {
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let name = object.metadata.name.clone().unwrap_or_default();
        let api = self.api(&namespace, resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let target = format!("{}/{namespace}/{name}", resource.kind.to_lowercase());
        let patch = Patch::Apply(object);
        Ok(api::call(&self.retry, op, &target, || {
            api.patch(&name, &params, &patch)
        })
        .await?)
    }

    /// Server-side applies one VirtualService.
    ///
    /// # Errors
    /// As [`apply_manifests`](Self::apply_manifests).
    pub async fn apply_virtual_service(
        &self,
        virtual_service: &VirtualService,
    ) -> Result<DynamicObject, RoutingError> {
        let meta = &virtual_service.metadata;
        let object = to_dynamic(
            virtual_service,
            "VirtualService",
            &meta.namespace,
            &meta.name,
        )?;
        self.server_side_apply(
            rbac::PATCH_VIRTUAL_SERVICE,
            &virtual_service_resource(self.version),
            &object,
        )
        .await
    }

    /// Server-side applies one DestinationRule.
    ///
    /// # Errors
    /// As [`apply_manifests`](Self::apply_manifests).
    pub async fn apply_destination_rule(
        &self,
        destination_rule: &DestinationRule,
    ) -> Result<DynamicObject, RoutingError> {
        let meta = &destination_rule.metadata;
        let object = to_dynamic(
            destination_rule,
            "DestinationRule",
            &meta.namespace,
            &meta.name,
        )?;
        self.server_side_apply(
            rbac::PATCH_DESTINATION_RULE,
            &destination_rule_resource(self.version),
            &object,
        )
        .await
    }

    async fn get(
        &self,
        op: rbac::ApiOp,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, RoutingError> {
        self.ensure_installed().await?;
        let api = self.api(namespace, resource);
        let target = format!("{}/{namespace}/{name}", resource.kind.to_lowercase());
        Ok(api::call(&self.retry, op, &target, || api.get_opt(name)).await?)
    }

    /// Reads a VirtualService back.
    ///
    /// # Errors
    /// [`RoutingError::IstioNotInstalled`] or the API server's refusal.
    pub async fn virtual_service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, RoutingError> {
        let resource = virtual_service_resource(self.version);
        self.get(rbac::GET_VIRTUAL_SERVICE, &resource, namespace, name)
            .await
    }

    /// Reads a DestinationRule back.
    ///
    /// # Errors
    /// [`RoutingError::IstioNotInstalled`] or the API server's refusal.
    pub async fn destination_rule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, RoutingError> {
        let resource = destination_rule_resource(self.version);
        self.get(rbac::GET_DESTINATION_RULE, &resource, namespace, name)
            .await
    }

    /// Sends all traffic of the VirtualService `namespace/service` to
    /// `subset` (see [`weights_all_to`]) and returns the stored object.
    ///
    /// # Errors
    /// [`RoutingError::NoVirtualService`] when there is none, or the API
    /// server's refusal.
    pub async fn route_all_to(
        &self,
        namespace: &str,
        service: &str,
        subset: &str,
    ) -> Result<DynamicObject, RoutingError> {
        let current = self
            .virtual_service(namespace, service)
            .await?
            .ok_or_else(|| RoutingError::NoVirtualService {
                namespace: namespace.to_owned(),
                name: service.to_owned(),
            })?;
        let mut spec = current.data.get("spec").cloned().unwrap_or(Value::Null);
        weights_all_to(&mut spec, subset);
        let resource = virtual_service_resource(self.version);
        let mut object = DynamicObject::new(service, &resource).within(namespace);
        object.metadata.labels = current.metadata.labels.clone();
        object.data = json!({ "spec": spec });
        self.server_side_apply(rbac::PATCH_VIRTUAL_SERVICE, &resource, &object)
            .await
    }
}

#[async_trait]
impl TrafficControl for KubeRoutingApplier {
    async fn rollback(&self, namespace: &str, service: &str) -> Result<String, PortError> {
        let port_error = |reason: String| PortError {
            port: "istio traffic control".to_owned(),
            reason,
        };
        let subset = self.stable_subset(namespace, service).ok_or_else(|| {
            port_error(
                RoutingError::UnknownStableSubset {
                    namespace: namespace.to_owned(),
                    service: service.to_owned(),
                }
                .to_string(),
            )
        })?;
        self.route_all_to(namespace, service, &subset)
            .await
            .map_err(|e| port_error(e.to_string()))?;
        Ok(format!(
            "routed all traffic of {namespace}/{service} to subset {subset} (VirtualService {namespace}/{service})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::Body;
    use octrix_core::routing::Destination;

    #[test]
    fn resources_name_the_istio_group_and_version() {
        let vs = virtual_service_resource(IstioApiVersion::V1beta1);
        assert_eq!(vs.api_version, "networking.istio.io/v1beta1");
        assert_eq!(vs.plural, "virtualservices");
        let dr = destination_rule_resource(IstioApiVersion::V1);
        assert_eq!(dr.api_version, "networking.istio.io/v1");
        assert_eq!(dr.kind, "DestinationRule");
    }

    #[test]
    fn all_weights_move_to_one_subset() {
        let mut spec = json!({"hosts": ["web"], "http": [
            {"name": "header-match", "match": [{"headers": {"x": {"exact": "1"}}}],
             "route": [{"destination": {"host": "web", "subset": "v2"}}]},
            {"name": "weighted", "mirror": {"host": "web", "subset": "v2"},
             "mirrorPercentage": {"value": 10.0},
             "route": [{"destination": {"host": "web", "subset": "v1"}, "weight": 70},
                       {"destination": {"host": "web", "subset": "v2"}, "weight": 30}]}
        ]});
        weights_all_to(&mut spec, "v1");
        assert_eq!(
            spec["http"],
            json!([
                {"name": "header-match", "match": [{"headers": {"x": {"exact": "1"}}}],
                 "route": [{"destination": {"host": "web", "subset": "v1"}}]},
                {"name": "weighted",
                 "route": [{"destination": {"host": "web", "subset": "v1"}, "weight": 100},
                           {"destination": {"host": "web", "subset": "v2"}, "weight": 0}]}
            ])
        );
    }

    fn rule() -> TrafficRule {
        TrafficRule::weighted(
            "web",
            "shop",
            vec![
                Destination::for_version("v1", 90),
                Destination::for_version("v2", 10),
            ],
        )
    }

    #[tokio::test]
    async fn missing_crds_are_a_typed_error_and_nothing_is_applied() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("discovery");
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.uri().path(), "/apis");
            let body = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}
            ]});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
            // No further request may follow.
            assert!(handle.next_request().await.is_none());
        });
        let applier = KubeRoutingApplier::new(client, IstioApiVersion::V1);
        let err = applier.apply(&rule()).await.expect_err("no CRDs");
        assert_eq!(
            err.to_string(),
            "Istio CRDs are not installed (networking.istio.io/v1)"
        );
        assert!(applier.stable_subset("shop", "web").is_none());
        drop(applier);
        server.await.expect("server");
    }

    #[tokio::test]
    async fn applies_the_destination_rule_then_the_virtual_service_server_side() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.expect("discovery");
            let body = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "networking.istio.io", "versions": [
                    {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"}],
                 "preferredVersion": {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"}}
            ]});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
            let mut paths = Vec::new();
            for _ in 0..2 {
                let (request, send) = handle.next_request().await.expect("apply");
                assert_eq!(request.method(), Method::PATCH);
                assert_eq!(
                    request.headers()[http::header::CONTENT_TYPE],
                    "application/apply-patch+yaml"
                );
                let query = request.uri().query().unwrap_or_default().to_owned();
                assert!(query.contains("fieldManager=octrix"), "{query}");
                assert!(query.contains("force=true"), "{query}");
                paths.push(request.uri().path().to_owned());
                let bytes = request.into_body().collect_bytes().await.expect("body");
                let object: Value = serde_json::from_slice(&bytes).expect("json body");
                assert_eq!(object["apiVersion"], "networking.istio.io/v1beta1");
                send.send_response(
                    Response::builder()
                        .body(Body::from(bytes.to_vec()))
                        .unwrap(),
                );
            }
            paths
        });
        let applier = KubeRoutingApplier::new(client, IstioApiVersion::V1beta1);
        let applied = applier.apply(&rule()).await.expect("applied");
        assert_eq!(
            applied.virtual_service.data["spec"]["http"][0]["route"][1]["weight"],
            10
        );
        assert_eq!(
            applied.destination_rule.data["spec"]["subsets"][1]["labels"]["version"],
            "v2"
        );
        assert_eq!(applier.stable_subset("shop", "web").as_deref(), Some("v1"));
        assert_eq!(
            server.await.expect("server"),
            [
                "/apis/networking.istio.io/v1beta1/namespaces/shop/destinationrules/web",
                "/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices/web",
            ]
        );
    }
}
