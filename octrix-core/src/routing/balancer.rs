//! Client-side load balancing over the endpoints of one service.
//!
//! Four strategies, as Envoy and the seed's balancer offer them:
//!
//! * [`BalancingStrategy::RoundRobin`]: each healthy endpoint in turn.
//! * [`BalancingStrategy::LeastOutstanding`]: the healthy endpoint with the fewest
//!   requests in flight; ties go round robin so that an idle set still
//!   rotates.
//! * [`BalancingStrategy::Weighted`]: smooth weighted round robin on the endpoints'
//!   weights.
//! * [`BalancingStrategy::PowerOfTwoChoices`]: two distinct healthy endpoints drawn at
//!   random, the less loaded one wins. Nearly as good as least outstanding
//!   without its full scan or its herd behaviour when many balancers share
//!   stale counts.
//!
//! Only healthy endpoints are picked; when none is healthy, [`pick`]
//! returns [`BalancerError::NoHealthyEndpoint`]. Health arrives through
//! [`LoadBalancer::set_health`] (the HTTP API and health checkers call it).
//! A pick counts as outstanding until [`LoadBalancer::complete`] is called
//! with the returned [`EndpointId`].
//!
//! ```
//! use octrix_core::routing::balancer::{BalancingStrategy, Endpoint, Health, LoadBalancer};
//! use rand::{SeedableRng, rngs::SmallRng};
//!
//! let endpoints = vec![Endpoint::new("10.0.0.1:8080", 1), Endpoint::new("10.0.0.2:8080", 1)];
//! let mut balancer =
//!     LoadBalancer::new(BalancingStrategy::RoundRobin, endpoints, SmallRng::seed_from_u64(1)).unwrap();
//! balancer.set_health("10.0.0.1:8080", Health::Unhealthy).unwrap();
//! let id = balancer.pick().unwrap();
//! assert_eq!(balancer.address(id), "10.0.0.2:8080");
//! balancer.complete(id);
//! ```
//!
//! [`pick`]: LoadBalancer::pick

use std::collections::BTreeSet;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::picker::smooth_weighted_step;

/// How a [`LoadBalancer`] chooses among healthy endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancingStrategy {
    /// Each healthy endpoint in turn.
    RoundRobin,
    /// Fewest requests in flight.
    LeastOutstanding,
    /// Smooth weighted round robin on the endpoints' weights.
    Weighted,
    /// The less loaded of two random healthy endpoints.
    PowerOfTwoChoices,
}

/// Whether an endpoint may receive traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Receives traffic.
    Healthy,
    /// Receives none until marked healthy again.
    Unhealthy,
}

/// One endpoint as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Unique address, e.g. `10.0.0.1:8080` or a pod name.
    pub address: String,
    /// Relative weight for [`BalancingStrategy::Weighted`], at least 1.
    pub weight: u32,
}

impl Endpoint {
    /// An endpoint with an address and a weight.
    pub fn new(address: impl Into<String>, weight: u32) -> Self {
        Self {
            address: address.into(),
            weight,
        }
    }
}

/// A picked endpoint: its position in the balancer, valid until the
/// endpoints are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(usize);

impl EndpointId {
    /// Position of the endpoint in the list the balancer was built with.
    pub fn index(self) -> usize {
        self.0
    }
}

/// What the balancer knows about one endpoint, for the API and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Address.
    pub address: String,
    /// Weight.
    pub weight: u32,
    /// Health.
    pub health: Health,
    /// Picks not yet completed.
    pub outstanding: u32,
}

/// Why the balancer could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalancerError {
    /// Every endpoint is unhealthy (or there are none).
    #[error("no healthy endpoint: all {total} endpoints are unhealthy")]
    NoHealthyEndpoint {
        /// Number of endpoints, all unhealthy.
        total: usize,
    },
    /// The address is not one of the balancer's endpoints.
    #[error("unknown endpoint {address:?}")]
    UnknownEndpoint {
        /// The address asked for.
        address: String,
    },
    /// Two endpoints share an address.
    #[error("endpoints[{index}].address: {address:?} is listed twice")]
    DuplicateEndpoint {
        /// Position of the second occurrence.
        index: usize,
        /// The address.
        address: String,
    },
    /// A weight of zero would make the endpoint unreachable by weighted
    /// balancing while other strategies still use it.
    #[error("endpoints[{index}].weight: must be at least 1")]
    ZeroWeight {
        /// Position of the endpoint.
        index: usize,
    },
}

#[derive(Debug, Clone)]
struct EndpointState {
    endpoint: Endpoint,
    health: Health,
    outstanding: u32,
    current_weight: i64,
}

/// A load balancer over the endpoints of one service; see the [module
/// docs](self).
///
/// The random source `R` is only drawn from by
/// [`BalancingStrategy::PowerOfTwoChoices`]; inject a seeded one for reproducible
/// tests.
#[derive(Debug, Clone)]
pub struct LoadBalancer<R> {
    strategy: BalancingStrategy,
    endpoints: Vec<EndpointState>,
    /// Indices of the healthy endpoints, ascending; rebuilt on health changes
    /// so that picks never scan unhealthy endpoints.
    healthy: Vec<usize>,
    /// Position in `healthy` where round robin continues.
    cursor: usize,
    rng: R,
}

impl<R: Rng> LoadBalancer<R> {
    /// A balancer whose endpoints all start healthy.
    pub fn new(
        strategy: BalancingStrategy,
        endpoints: Vec<Endpoint>,
        rng: R,
    ) -> Result<Self, BalancerError> {
        let endpoints = Self::states(endpoints, |_| None)?;
        let mut balancer = Self {
            strategy,
            endpoints,
            healthy: Vec::new(),
            cursor: 0,
            rng,
        };
        balancer.rebuild_healthy();
        Ok(balancer)
    }

    /// Replaces the endpoints (e.g. after the Kubernetes Endpoints changed).
    /// Addresses that stay keep their health and outstanding count; new ones
    /// start healthy. Earlier [`EndpointId`]s become invalid.
    pub fn replace_endpoints(&mut self, endpoints: Vec<Endpoint>) -> Result<(), BalancerError> {
        let previous = std::mem::take(&mut self.endpoints);
        let lookup = |address: &str| {
            previous
                .iter()
                .find(|s| s.endpoint.address == address)
                .map(|s| (s.health, s.outstanding))
        };
        match Self::states(endpoints, lookup) {
            Ok(states) => {
                self.endpoints = states;
                self.rebuild_healthy();
                Ok(())
            }
            Err(error) => {
                self.endpoints = previous;
                Err(error)
            }
        }
    }

    fn states(
        endpoints: Vec<Endpoint>,
        previous: impl Fn(&str) -> Option<(Health, u32)>,
    ) -> Result<Vec<EndpointState>, BalancerError> {
        let mut seen = BTreeSet::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            if endpoint.weight == 0 {
                return Err(BalancerError::ZeroWeight { index });
            }
            if !seen.insert(endpoint.address.as_str()) {
                return Err(BalancerError::DuplicateEndpoint {
                    index,
                    address: endpoint.address.clone(),
                });
            }
        }
        Ok(endpoints
            .into_iter()
            .map(|endpoint| {
                let (health, outstanding) =
                    previous(&endpoint.address).unwrap_or((Health::Healthy, 0));
                EndpointState {
                    endpoint,
                    health,
                    outstanding,
                    current_weight: 0,
                }
            })
            .collect())
    }

    /// The strategy in use.
    pub fn strategy(&self) -> BalancingStrategy {
        self.strategy
    }

    /// Switches strategy; outstanding counts are kept.
    pub fn set_strategy(&mut self, strategy: BalancingStrategy) {
        self.strategy = strategy;
    }

    /// Chooses a healthy endpoint and counts it as outstanding until
    /// [`complete`](Self::complete).
    pub fn pick(&mut self) -> Result<EndpointId, BalancerError> {
        if self.healthy.is_empty() {
            return Err(BalancerError::NoHealthyEndpoint {
                total: self.endpoints.len(),
            });
        }
        let index = match self.strategy {
            BalancingStrategy::RoundRobin => self.next_round_robin(),
            BalancingStrategy::LeastOutstanding => self.least_outstanding(),
            BalancingStrategy::Weighted => self.weighted(),
            BalancingStrategy::PowerOfTwoChoices => self.power_of_two_choices(),
        };
        let state = &mut self.endpoints[index];
        state.outstanding = state.outstanding.saturating_add(1);
        Ok(EndpointId(index))
    }

    /// Marks a picked request as finished.
    pub fn complete(&mut self, id: EndpointId) {
        if let Some(state) = self.endpoints.get_mut(id.0) {
            state.outstanding = state.outstanding.saturating_sub(1);
        }
    }

    /// The address of a picked endpoint.
    ///
    /// # Panics
    /// When `id` came from before the last [`replace_endpoints`](Self::replace_endpoints)
    /// and is out of range.
    pub fn address(&self, id: EndpointId) -> &str {
        &self.endpoints[id.0].endpoint.address
    }

    /// Sets an endpoint's health; returns whether it changed.
    pub fn set_health(&mut self, address: &str, health: Health) -> Result<bool, BalancerError> {
        let state = self.find_mut(address)?;
        if state.health == health {
            return Ok(false);
        }
        state.health = health;
        self.rebuild_healthy();
        Ok(true)
    }

    /// Sets an endpoint's weight (at least 1).
    pub fn set_weight(&mut self, address: &str, weight: u32) -> Result<(), BalancerError> {
        let index = self.position(address)?;
        if weight == 0 {
            return Err(BalancerError::ZeroWeight { index });
        }
        self.endpoints[index].endpoint.weight = weight;
        self.reset_weighted_rotation();
        Ok(())
    }

    /// Every endpoint's state, in order.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.endpoints
            .iter()
            .map(|s| EndpointStatus {
                address: s.endpoint.address.clone(),
                weight: s.endpoint.weight,
                health: s.health,
                outstanding: s.outstanding,
            })
            .collect()
    }

    /// Number of healthy endpoints.
    pub fn healthy_count(&self) -> usize {
        self.healthy.len()
    }

    fn position(&self, address: &str) -> Result<usize, BalancerError> {
        self.endpoints
            .iter()
            .position(|s| s.endpoint.address == address)
            .ok_or_else(|| BalancerError::UnknownEndpoint {
                address: address.to_owned(),
            })
    }

    fn find_mut(&mut self, address: &str) -> Result<&mut EndpointState, BalancerError> {
        let index = self.position(address)?;
        Ok(&mut self.endpoints[index])
    }

    fn rebuild_healthy(&mut self) {
        self.healthy = (0..self.endpoints.len())
            .filter(|&i| self.endpoints[i].health == Health::Healthy)
            .collect();
        self.cursor = 0;
        self.reset_weighted_rotation();
    }

    /// Starts weighted rotation afresh: credit earned while the set was
    /// different would skew the first picks of the new set.
    fn reset_weighted_rotation(&mut self) {
        for state in &mut self.endpoints {
            state.current_weight = 0;
        }
    }

    fn next_round_robin(&mut self) -> usize {
        let index = self.healthy[self.cursor % self.healthy.len()];
        self.cursor = (self.cursor + 1) % self.healthy.len();
        index
    }

    fn least_outstanding(&mut self) -> usize {
        let n = self.healthy.len();
        let start = self.cursor % n;
        let mut best = self.healthy[start];
        for offset in 1..n {
            let candidate = self.healthy[(start + offset) % n];
            if self.endpoints[candidate].outstanding < self.endpoints[best].outstanding {
                best = candidate;
            }
        }
        self.cursor = (start + 1) % n;
        best
    }

    fn weighted(&mut self) -> usize {
        let entries = self
            .endpoints
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.health == Health::Healthy)
            .map(|(i, s)| (i, s.endpoint.weight, &mut s.current_weight));
        // Weights are at least 1 and one endpoint is healthy, so a winner exists.
        smooth_weighted_step(entries).unwrap_or(self.healthy[0])
    }

    fn power_of_two_choices(&mut self) -> usize {
        let n = self.healthy.len();
        if n == 1 {
            return self.healthy[0];
        }
        let first = self.rng.random_range(0..n);
        // Draw the second from the other n - 1 so the two are distinct.
        let mut second = self.rng.random_range(0..n - 1);
        if second >= first {
            second += 1;
        }
        let (a, b) = (self.healthy[first], self.healthy[second]);
        if self.endpoints[b].outstanding < self.endpoints[a].outstanding {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    fn balancer(strategy: BalancingStrategy, weights: &[u32]) -> LoadBalancer<SmallRng> {
        let endpoints = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint::new(format!("e{i}"), w))
            .collect();
        LoadBalancer::new(strategy, endpoints, SmallRng::seed_from_u64(3)).unwrap()
    }

    fn picks(balancer: &mut LoadBalancer<SmallRng>, count: usize, complete: bool) -> Vec<String> {
        (0..count)
            .map(|_| {
                let id = balancer.pick().unwrap();
                if complete {
                    balancer.complete(id);
                }
                balancer.address(id).to_owned()
            })
            .collect()
    }

    #[test]
    fn round_robin_skips_unhealthy_endpoints() {
        let mut b = balancer(BalancingStrategy::RoundRobin, &[1, 1, 1]);
        assert_eq!(picks(&mut b, 4, true), ["e0", "e1", "e2", "e0"]);
        assert_eq!(b.set_health("e1", Health::Unhealthy), Ok(true));
        assert_eq!(b.set_health("e1", Health::Unhealthy), Ok(false));
        assert_eq!(picks(&mut b, 4, true), ["e0", "e2", "e0", "e2"]);
    }

    #[test]
    fn no_healthy_endpoint_is_a_typed_error() {
        let mut b = balancer(BalancingStrategy::PowerOfTwoChoices, &[1, 1]);
        b.set_health("e0", Health::Unhealthy).unwrap();
        b.set_health("e1", Health::Unhealthy).unwrap();
        assert_eq!(b.pick(), Err(BalancerError::NoHealthyEndpoint { total: 2 }));
        assert_eq!(
            b.set_health("e9", Health::Healthy),
            Err(BalancerError::UnknownEndpoint {
                address: "e9".into()
            })
        );
        b.set_health("e1", Health::Healthy).unwrap();
        assert_eq!(picks(&mut b, 2, true), ["e1", "e1"]);
    }

    #[test]
    fn least_outstanding_prefers_idle_endpoints_and_rotates_ties() {
        let mut b = balancer(BalancingStrategy::LeastOutstanding, &[1, 1, 1]);
        // Nothing completes: each pick goes to an endpoint with the fewest in flight.
        assert_eq!(picks(&mut b, 3, false), ["e0", "e1", "e2"]);
        b.complete(EndpointId(1));
        assert_eq!(picks(&mut b, 1, false), ["e1"]);
        let outstanding: Vec<_> = b.status().iter().map(|s| s.outstanding).collect();
        assert_eq!(outstanding, [1, 1, 1]);
        // All idle: ties rotate rather than always hitting e0.
        let mut b = balancer(BalancingStrategy::LeastOutstanding, &[1, 1, 1]);
        assert_eq!(picks(&mut b, 3, true), ["e0", "e1", "e2"]);
    }

    #[test]
    fn weighted_follows_weights_over_healthy_endpoints() {
        let mut b = balancer(BalancingStrategy::Weighted, &[5, 1, 1]);
        assert_eq!(picks(&mut b, 7, true).concat(), "e0e0e1e0e2e0e0");
        b.set_health("e0", Health::Unhealthy).unwrap();
        assert_eq!(picks(&mut b, 4, true), ["e1", "e2", "e1", "e2"]);
    }

    #[test]
    fn power_of_two_choices_avoids_the_loaded_endpoint() {
        let mut b = balancer(BalancingStrategy::PowerOfTwoChoices, &[1, 1, 1]);
        // Load e0 heavily: whenever it is drawn, the other (distinct) draw is
        // less loaded and wins.
        for _ in 0..10 {
            b.endpoints[0].outstanding += 1;
        }
        let chosen = picks(&mut b, 200, true);
        assert!(chosen.iter().all(|a| a != "e0"));
        assert!(chosen.iter().any(|a| a == "e1") && chosen.iter().any(|a| a == "e2"));
    }

    #[test]
    fn replacing_endpoints_keeps_known_state() {
        let mut b = balancer(BalancingStrategy::RoundRobin, &[1, 1]);
        b.set_health("e1", Health::Unhealthy).unwrap();
        let id = b.pick().unwrap();
        assert_eq!(b.address(id), "e0");
        b.replace_endpoints(vec![
            Endpoint::new("e1", 1),
            Endpoint::new("e0", 1),
            Endpoint::new("e2", 1),
        ])
        .unwrap();
        let status = b.status();
        assert_eq!(status[0].health, Health::Unhealthy);
        assert_eq!(status[1].outstanding, 1);
        assert_eq!(status[2].health, Health::Healthy);
        assert_eq!(b.healthy_count(), 2);
        let error = b
            .replace_endpoints(vec![Endpoint::new("x", 1), Endpoint::new("x", 1)])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "endpoints[1].address: \"x\" is listed twice"
        );
        assert_eq!(b.status().len(), 3, "a refused replacement changes nothing");
    }

    #[test]
    fn zero_weights_are_refused() {
        let endpoints = vec![Endpoint::new("a", 0)];
        let error = LoadBalancer::new(
            BalancingStrategy::Weighted,
            endpoints,
            SmallRng::seed_from_u64(0),
        )
        .unwrap_err();
        assert_eq!(error, BalancerError::ZeroWeight { index: 0 });
        let mut b = balancer(BalancingStrategy::Weighted, &[1]);
        assert_eq!(
            b.set_weight("e0", 0),
            Err(BalancerError::ZeroWeight { index: 0 })
        );
        assert_eq!(b.set_weight("e0", 3), Ok(()));
        assert_eq!(b.status()[0].weight, 3);
    }
}
