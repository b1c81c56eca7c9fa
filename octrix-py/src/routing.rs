//! `TrafficRule` (to Istio VirtualService / DestinationRule) and
//! `LoadBalancer`.

use std::collections::BTreeMap;

use octrix_core::routing::balancer::{
    BalancingStrategy, Endpoint, EndpointId, Health, LoadBalancer,
};
use octrix_core::routing::istio::{self, IstioManifests};
use octrix_core::routing::{Destination, IstioApiVersion, TrafficRule};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::convert::{self, enum_to_py};
use crate::errors::Error;

/// How the traffic of one service is split between its versions (subsets):
/// weighted, A/B on headers, or weighted with a mirror. Generates one Istio
/// VirtualService and one DestinationRule, as dicts or as YAML/JSON text.
///
/// Build it from a mapping (`TrafficRule({"service": ..., "namespace": ...,
/// "destinations": [{"subset": "v1", "labels": {"version": "v1"},
/// "weight": 80}, ...], "kind": {"type": "weighted"}})`), from YAML, or with
/// `TrafficRule.weighted(service, namespace, {"v1": 80, "v2": 20})`.
/// Generating validates the rule: ValidationError lists every problem in
/// `errors` as (field, message) pairs.
#[pyclass(module = "octrix", name = "TrafficRule", frozen)]
#[derive(Debug)]
pub struct PyTrafficRule {
    inner: TrafficRule,
}

impl PyTrafficRule {
    fn manifests(&self, api_version: &Bound<'_, PyAny>) -> Result<IstioManifests, Error> {
        let version: IstioApiVersion = convert::parse_enum(api_version, "api_version")?;
        Ok(self.inner.to_istio(version)?)
    }
}

#[pymethods]
impl PyTrafficRule {
    /// A rule from a mapping of its YAML form; ValidationError names a
    /// malformed field (`destinations[1].weight`). Not yet validated.
    #[new]
    fn new(rule: &Bound<'_, PyAny>) -> Result<Self, Error> {
        Ok(Self {
            inner: convert::from_py(rule, "")?,
        })
    }

    /// A rule from a YAML document.
    #[staticmethod]
    fn from_yaml(text: &str) -> Result<Self, Error> {
        let inner = convert::config_from_yaml(text).map_err(|error| match error {
            Error::Config { field, message } => Error::Input { field, message },
            other => other,
        })?;
        Ok(Self { inner })
    }

    /// A plain weighted split of `service` in `namespace`: `weights` maps
    /// each subset (a version, whose pods carry `version: <subset>`) to
    /// its percentage; the weights must sum to 100.
    #[staticmethod]
    fn weighted(service: &str, namespace: &str, weights: BTreeMap<String, u32>) -> Self {
        let destinations = weights
            .into_iter()
            .map(|(subset, weight)| Destination::for_version(subset, weight))
            .collect();
        Self {
            inner: TrafficRule::weighted(service, namespace, destinations),
        }
    }

    /// Checks every field; raises ValidationError listing all problems.
    fn validate(&self) -> Result<(), Error> {
        Ok(self.inner.validate()?)
    }

    /// The service whose traffic is split.
    #[getter]
    fn service(&self) -> &str {
        &self.inner.service
    }

    /// The namespace of the service and of the generated objects.
    #[getter]
    fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Subset → weight, in the rule's order.
    #[getter]
    fn weights(&self) -> Vec<(String, u32)> {
        self.inner
            .destinations
            .iter()
            .map(|d| (d.subset.clone(), d.weight))
            .collect()
    }

    /// The VirtualService and the DestinationRule as dicts (Kubernetes
    /// objects, camelCase fields): `{"virtual_service": ...,
    /// "destination_rule": ...}`. `api_version` is `v1` or `v1beta1`.
    #[pyo3(signature = (api_version = None))]
    fn to_istio<'py>(
        &self,
        py: Python<'py>,
        api_version: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manifests = self.manifests(&version_or_default(py, api_version))?;
        convert::to_py(py, &manifests)
    }

    /// The VirtualService as a dict.
    #[pyo3(signature = (api_version = None))]
    fn virtual_service<'py>(
        &self,
        py: Python<'py>,
        api_version: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manifests = self.manifests(&version_or_default(py, api_version))?;
        convert::to_py(py, &manifests.virtual_service)
    }

    /// The DestinationRule as a dict.
    #[pyo3(signature = (api_version = None))]
    fn destination_rule<'py>(
        &self,
        py: Python<'py>,
        api_version: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manifests = self.manifests(&version_or_default(py, api_version))?;
        convert::to_py(py, &manifests.destination_rule)
    }

    /// Both objects as one YAML stream (the VirtualService first), the same
    /// bytes for the same rule, ready for `kubectl apply -f -`.
    #[pyo3(signature = (api_version = None))]
    fn to_yaml(
        &self,
        py: Python<'_>,
        api_version: Option<&Bound<'_, PyAny>>,
    ) -> Result<String, Error> {
        let manifests = self.manifests(&version_or_default(py, api_version))?;
        Ok(manifests.to_yaml()?)
    }

    /// Both objects as a pretty-printed Kubernetes `List` in JSON.
    #[pyo3(signature = (api_version = None))]
    fn to_json(
        &self,
        py: Python<'_>,
        api_version: Option<&Bound<'_, PyAny>>,
    ) -> Result<String, Error> {
        let manifests = self.manifests(&version_or_default(py, api_version))?;
        Ok(manifests.to_json()?)
    }

    /// The rule itself as a dict (its YAML form).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner)
    }

    /// The rule itself as YAML.
    fn rule_yaml(&self) -> Result<String, Error> {
        Ok(istio::to_yaml(&self.inner)?)
    }

    fn __repr__(&self) -> String {
        format!(
            "TrafficRule(service='{}', namespace='{}', weights={:?})",
            self.inner.service,
            self.inner.namespace,
            self.weights()
        )
    }
}

/// The API version argument, `v1` when None.
fn version_or_default<'py>(
    py: Python<'py>,
    api_version: Option<&Bound<'py, PyAny>>,
) -> Bound<'py, PyAny> {
    match api_version {
        Some(version) if !version.is_none() => version.clone(),
        _ => PyString::new(py, "v1").into_any(),
    }
}

/// A picked endpoint. Give it back with `LoadBalancer.complete(pick)`, or
/// use it as a context manager: `with balancer.pick() as address: ...`
/// completes it on exit.
#[pyclass(module = "octrix", name = "Pick", frozen)]
#[derive(Debug)]
pub struct PyPick {
    id: EndpointId,
    address: String,
    balancer: Py<PyLoadBalancer>,
}

#[pymethods]
impl PyPick {
    /// The endpoint's address.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// The endpoint's position in the balancer's list.
    #[getter]
    fn index(&self) -> usize {
        self.id.index()
    }

    fn __enter__(&self) -> String {
        self.address.clone()
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.balancer.borrow_mut(py).inner.complete(self.id);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "Pick(address='{}', index={})",
            self.address,
            self.id.index()
        )
    }
}

/// A client-side load balancer over the endpoints of one service:
/// round_robin, least_outstanding, weighted (smooth weighted round robin) or
/// power_of_two_choices. Only healthy endpoints are picked; a pick counts as
/// outstanding until completed.
///
/// `endpoints` lists addresses, `(address, weight)` pairs, or mappings with
/// `address` and `weight` (weights at least 1). `seed` makes
/// power_of_two_choices reproducible.
#[pyclass(module = "octrix", name = "LoadBalancer")]
#[derive(Debug)]
pub struct PyLoadBalancer {
    inner: LoadBalancer<SmallRng>,
}

/// Endpoints from Python: `"addr"`, `("addr", weight)` or
/// `{"address": ..., "weight": ...}`.
fn endpoints(endpoints: &Bound<'_, PyAny>) -> Result<Vec<Endpoint>, Error> {
    let items = endpoints
        .try_iter()
        .map_err(|_| Error::input("endpoints", "expected a sequence"))?;
    let mut list = Vec::new();
    for (index, item) in items.enumerate() {
        let field = format!("endpoints[{index}]");
        let item = item.map_err(|error| Error::input(&field, error.to_string()))?;
        if let Ok(address) = item.extract::<String>() {
            list.push(Endpoint::new(address, 1));
        } else if let Ok((address, weight)) = item.extract::<(String, u32)>() {
            list.push(Endpoint::new(address, weight));
        } else {
            list.push(convert::from_py(&item, &field)?);
        }
    }
    Ok(list)
}

#[pymethods]
impl PyLoadBalancer {
    /// A balancer whose endpoints all start healthy.
    #[new]
    #[pyo3(signature = (endpoints, strategy = None, seed = None))]
    fn new(
        endpoints: &Bound<'_, PyAny>,
        strategy: Option<&Bound<'_, PyAny>>,
        seed: Option<u64>,
    ) -> Result<Self, Error> {
        let strategy = match strategy {
            Some(strategy) if !strategy.is_none() => convert::parse_enum(strategy, "strategy")?,
            _ => BalancingStrategy::RoundRobin,
        };
        let rng = match seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Ok(Self {
            inner: LoadBalancer::new(strategy, self::endpoints(endpoints)?, rng)?,
        })
    }

    /// Chooses a healthy endpoint; raises NoHealthyEndpointError when none
    /// is healthy.
    fn pick(slf: &Bound<'_, Self>) -> Result<PyPick, Error> {
        let mut balancer = slf.borrow_mut();
        let id = balancer.inner.pick()?;
        Ok(PyPick {
            id,
            address: balancer.inner.address(id).to_owned(),
            balancer: slf.clone().unbind(),
        })
    }

    /// Marks a picked request as finished. Raises ValidationError for a
    /// pick of another balancer.
    fn complete(slf: &Bound<'_, Self>, pick: &Bound<'_, PyPick>) -> Result<(), Error> {
        let pick = pick.get();
        if !pick.balancer.bind(slf.py()).is(slf) {
            return Err(Error::input("pick", "comes from another load balancer"));
        }
        slf.borrow_mut().inner.complete(pick.id);
        Ok(())
    }

    /// Marks an endpoint healthy (True) or unhealthy (False); returns whether
    /// that changed anything. Raises UnknownEndpointError.
    fn set_health(&mut self, address: &str, healthy: bool) -> Result<bool, Error> {
        let health = if healthy {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        Ok(self.inner.set_health(address, health)?)
    }

    /// Sets an endpoint's weight (at least 1).
    fn set_weight(&mut self, address: &str, weight: u32) -> Result<(), Error> {
        Ok(self.inner.set_weight(address, weight)?)
    }

    /// Replaces the endpoints; addresses that stay keep their health and
    /// outstanding count. Earlier picks can no longer be completed.
    fn replace_endpoints(&mut self, endpoints: &Bound<'_, PyAny>) -> Result<(), Error> {
        Ok(self.inner.replace_endpoints(self::endpoints(endpoints)?)?)
    }

    /// The strategy in use; assign a name or a `BalancingStrategy` to switch.
    #[getter]
    fn get_strategy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "BalancingStrategy", &self.inner.strategy())
    }

    #[setter]
    fn set_strategy(&mut self, strategy: &Bound<'_, PyAny>) -> Result<(), Error> {
        self.inner
            .set_strategy(convert::parse_enum(strategy, "strategy")?);
        Ok(())
    }

    /// Every endpoint's state, in order: dicts with `address`, `weight`,
    /// `health` and `outstanding`.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.status())
    }

    /// Number of healthy endpoints.
    #[getter]
    fn healthy_count(&self) -> usize {
        self.inner.healthy_count()
    }

    fn __repr__(&self) -> String {
        format!(
            "LoadBalancer(strategy='{}', endpoints={}, healthy={})",
            convert::serde_name(&self.inner.strategy()),
            self.inner.status().len(),
            self.inner.healthy_count()
        )
    }
}

/// Registers the routing classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyTrafficRule>()?;
    module.add_class::<PyPick>()?;
    module.add_class::<PyLoadBalancer>()?;
    Ok(())
}
