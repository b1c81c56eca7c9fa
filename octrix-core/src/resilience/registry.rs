//! [`BreakerRegistry`]: one breaker per service, created on first use.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use super::breaker::{BreakerSnapshot, CallError, CircuitBreaker};
use super::config::{BreakerConfig, BreakerConfigError};
use super::transition::BreakerTransition;
use crate::Clock;

/// The circuit breakers of every service, sharing a clock.
///
/// Services get the default configuration unless one was set for them with
/// [`with_service_config`](Self::with_service_config). Transitions of all
/// breakers are collected by [`drain_transitions`](Self::drain_transitions),
/// for the incident book.
pub struct BreakerRegistry {
    clock: Arc<dyn Clock>,
    default_config: BreakerConfig,
    service_configs: BTreeMap<String, BreakerConfig>,
    breakers: RwLock<BTreeMap<String, Arc<CircuitBreaker>>>,
}

impl std::fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("default_config", &self.default_config)
            .field("service_configs", &self.service_configs)
            .field("services", &self.services())
            .finish_non_exhaustive()
    }
}

impl BreakerRegistry {
    /// An empty registry whose breakers use `default_config`.
    pub fn new(
        default_config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BreakerConfigError> {
        default_config.validate()?;
        Ok(Self {
            clock,
            default_config,
            service_configs: BTreeMap::new(),
            breakers: RwLock::new(BTreeMap::new()),
        })
    }

    /// Gives `service` its own configuration.
    pub fn with_service_config(
        mut self,
        service: impl Into<String>,
        config: BreakerConfig,
    ) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        self.service_configs.insert(service.into(), config);
        Ok(self)
    }

    /// The breaker of `service`, created closed on first use.
    pub fn breaker(&self, service: &str) -> Arc<CircuitBreaker> {
        if let Some(breaker) = self.get(service) {
            return breaker;
        }
        let mut breakers = self
            .breakers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let breaker = breakers.entry(service.to_owned()).or_insert_with(|| {
            let config = self
                .service_configs
                .get(service)
                .unwrap_or(&self.default_config)
                .clone();
            // Every configuration was validated when it was registered.
            Arc::new(CircuitBreaker::with_valid_config(
                service.to_owned(),
                config,
                Arc::clone(&self.clock),
            ))
        });
        Arc::clone(breaker)
    }

    /// The breaker of `service`, if it was used.
    pub fn get(&self, service: &str) -> Option<Arc<CircuitBreaker>> {
        self.breakers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(service)
            .cloned()
    }

    /// Runs `operation` through the breaker of `service`.
    pub async fn call<T, E, F, Fut>(&self, service: &str, operation: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.breaker(service).call(operation).await
    }

    /// Services with a breaker, sorted.
    pub fn services(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .map(|b| b.service().to_owned())
            .collect()
    }

    /// Every breaker's state, sorted by service.
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        self.all().iter().map(|b| b.snapshot()).collect()
    }

    /// Takes the transitions of every breaker, ordered by time (and by
    /// service for equal times).
    pub fn drain_transitions(&self) -> Vec<BreakerTransition> {
        let mut transitions: Vec<_> = self
            .all()
            .iter()
            .flat_map(|b| b.drain_transitions())
            .collect();
        transitions.sort_by_key(|t| t.at);
        transitions
    }

    fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        // Copied out so that no breaker lock is taken under the map's lock.
        self.breakers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::breaker::CallOutcome;
    use crate::resilience::transition::BreakerState;
    use crate::{ManualClock, Timestamp};
    use jiff::SignedDuration;

    fn registry() -> (BreakerRegistry, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(0).unwrap()));
        let strict = BreakerConfig {
            consecutive_failures: Some(1),
            ..BreakerConfig::default()
        };
        let registry = BreakerRegistry::new(BreakerConfig::default(), clock.clone())
            .unwrap()
            .with_service_config("payments", strict)
            .unwrap();
        (registry, clock)
    }

    fn fail(breaker: &CircuitBreaker) {
        if let Ok(permit) = breaker.try_acquire() {
            permit.record(CallOutcome::Failure);
        }
    }

    #[test]
    fn one_breaker_per_service_with_its_own_config() {
        let (registry, _) = registry();
        let payments = registry.breaker("payments");
        assert!(Arc::ptr_eq(&payments, &registry.breaker("payments")));
        assert_eq!(payments.config().consecutive_failures, Some(1));
        assert_eq!(
            registry.breaker("search").config().consecutive_failures,
            Some(5)
        );
        assert_eq!(registry.services(), ["payments", "search"]);
        assert!(registry.get("checkout").is_none());
    }

    #[test]
    fn transitions_of_all_breakers_are_drained_in_time_order() {
        let (registry, clock) = registry();
        let search = registry.breaker("search");
        let payments = registry.breaker("payments");
        clock.set(Timestamp::from_second(20).unwrap());
        for _ in 0..5 {
            fail(&search);
        }
        clock.set(Timestamp::from_second(10).unwrap());
        fail(&payments);
        let drained = registry.drain_transitions();
        let summary: Vec<_> = drained
            .iter()
            .map(|t| (t.service.as_str(), t.to, t.at.as_second()))
            .collect();
        assert_eq!(
            summary,
            [
                ("payments", BreakerState::Open, 10),
                ("search", BreakerState::Open, 20)
            ]
        );
        assert!(registry.drain_transitions().is_empty());
        let states: Vec<_> = registry.snapshots().iter().map(|s| s.state).collect();
        assert_eq!(states, [BreakerState::Open, BreakerState::Open]);
    }

    #[test]
    fn invalid_service_configs_are_refused() {
        let (registry, _) = registry();
        let bad = BreakerConfig {
            open_timeout: SignedDuration::ZERO,
            ..BreakerConfig::default()
        };
        let error = registry.with_service_config("x", bad).unwrap_err();
        assert_eq!(error.to_string(), "open_timeout: must be positive, got 0s");
    }

    #[test]
    fn registry_call_goes_through_the_service_breaker() {
        let (registry, _) = registry();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let answer = registry
                .call("payments", || async { Ok::<_, ()>(42) })
                .await;
            assert_eq!(answer.unwrap(), 42);
            let _ = registry
                .call("payments", || async { Err::<(), _>(()) })
                .await;
        });
        assert_eq!(registry.breaker("payments").state(), BreakerState::Open);
    }
}
