//! One blast-radius budget for everything that disrupts: healing actions and
//! chaos runs draw on the same [`SafetyBudget`].
//!
//! ```
//! use octrix_core::healing::{BudgetConfig, Disruptor, DisruptionRequest, SafetyBudget};
//! use octrix_core::Timestamp;
//!
//! let mut budget = SafetyBudget::new(BudgetConfig { max_concurrent: 1, ..BudgetConfig::default() });
//! let now = Timestamp::UNIX_EPOCH;
//! let restart = DisruptionRequest::new(Disruptor::Healing, "pod/shop/web-1").in_namespace("shop");
//! let permit = budget.try_acquire(&restart, now).unwrap();
//! assert!(budget.try_acquire(&restart, now).is_err(), "one action at a time");
//! budget.release(permit);
//! assert!(budget.try_acquire(&restart, now).is_ok());
//! ```

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::Timestamp;
use crate::time::SignedDuration;

/// Limits of the shared budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Disruptions in flight at once.
    pub max_concurrent: u32,
    /// Disruptions started within any window of `window_seconds`.
    pub max_per_window: u32,
    /// Length of the sliding window, in seconds.
    pub window_seconds: u32,
    /// Disruptions started in one namespace within the window.
    pub max_per_namespace: u32,
    /// Largest fraction of a workload's pods disrupted at once; one pod may
    /// always be disrupted, subject to the last-ready-replica rule.
    pub max_disrupted_fraction: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            max_per_window: 10,
            window_seconds: 600,
            max_per_namespace: 5,
            max_disrupted_fraction: 0.5,
        }
    }
}

impl BudgetConfig {
    /// Checks the limits, naming the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: &str, reason: &str| Error::InvalidField {
            field: format!("budget.{field}"),
            reason: reason.to_owned(),
        };
        if self.window_seconds == 0 {
            return Err(invalid("window_seconds", "must be at least 1"));
        }
        if !(self.max_disrupted_fraction > 0.0 && self.max_disrupted_fraction <= 1.0) {
            return Err(invalid("max_disrupted_fraction", "must be within (0, 1]"));
        }
        Ok(())
    }
}

/// Who asks for a disruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disruptor {
    /// A healing action.
    Healing,
    /// A chaos run.
    Chaos,
}

/// How an action touches one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadImpact {
    /// `namespace/name` of the workload.
    pub workload: String,
    /// Pods the workload has.
    pub pods: u32,
    /// Pods of it that are ready now.
    pub ready_pods: u32,
    /// Pods this action disrupts.
    pub disrupted_pods: u32,
    /// Of those, how many are ready now.
    pub disrupted_ready_pods: u32,
}

/// A request to disrupt something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisruptionRequest {
    /// Who asks.
    pub by: Disruptor,
    /// What is disrupted (`pod/ns/name`, `node/name`, ...).
    pub target: String,
    /// Its namespace, if namespaced.
    pub namespace: Option<String>,
    /// Its effect on a workload, when known.
    pub workload: Option<WorkloadImpact>,
}

impl DisruptionRequest {
    /// A request with no namespace and no known workload impact.
    pub fn new(by: Disruptor, target: impl Into<String>) -> Self {
        Self {
            by,
            target: target.into(),
            namespace: None,
            workload: None,
        }
    }

    /// Sets the namespace.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the workload impact.
    pub fn with_impact(mut self, impact: WorkloadImpact) -> Self {
        self.workload = Some(impact);
        self
    }
}

/// Why the budget said no.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetDenial {
    /// Too many disruptions in flight.
    #[error("{in_flight} disruptions already in flight (limit {limit})")]
    Concurrency {
        /// The limit.
        limit: u32,
        /// In flight now.
        in_flight: u32,
    },
    /// Too many disruptions started recently.
    #[error("{limit} disruptions already started in the last {window_seconds} s")]
    Rate {
        /// The limit.
        limit: u32,
        /// The window.
        window_seconds: u32,
    },
    /// Too many disruptions started recently in one namespace.
    #[error("{limit} disruptions already started in namespace {namespace} in the window")]
    Namespace {
        /// The namespace.
        namespace: String,
        /// The limit.
        limit: u32,
    },
    /// The workload would lose too large a share of its pods at once.
    #[error(
        "{workload} would have {disrupted} of {pods} pods disrupted at once (max fraction {max_fraction})"
    )]
    Fraction {
        /// The workload.
        workload: String,
        /// Pods disrupted with this action.
        disrupted: u32,
        /// Pods of the workload.
        pods: u32,
        /// The limit.
        max_fraction: f64,
    },
    /// The workload would be left without a ready replica.
    #[error("{workload} would lose its last ready replica")]
    LastReadyReplica {
        /// The workload.
        workload: String,
    },
}

/// Proof that a disruption was admitted; hand it back with [`SafetyBudget::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permit(pub u64);

#[derive(Debug, Clone)]
struct InFlight {
    permit: Permit,
    workload: Option<WorkloadImpact>,
}

/// The shared blast-radius budget. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct SafetyBudget {
    config: BudgetConfig,
    in_flight: Vec<InFlight>,
    started: VecDeque<(Timestamp, Option<String>)>,
    next_permit: u64,
}

impl SafetyBudget {
    /// An empty budget with these limits.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            in_flight: Vec::new(),
            started: VecDeque::new(),
            next_permit: 1,
        }
    }

    /// The limits.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Changes the limits. Disruptions in flight and the window's history
    /// are kept: new limits apply to the next request, and what already
    /// runs is not cut short.
    pub fn set_config(&mut self, config: BudgetConfig) {
        self.config = config;
    }

    /// Disruptions in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Admits `request` at `now`, or says which limit it would break.
    pub fn try_acquire(
        &mut self,
        request: &DisruptionRequest,
        now: Timestamp,
    ) -> Result<Permit, BudgetDenial> {
        let window = SignedDuration::from_secs(i64::from(self.config.window_seconds));
        while let Some((at, _)) = self.started.front() {
            if now.duration_since(*at) >= window {
                self.started.pop_front();
            } else {
                break;
            }
        }
        let in_flight = self.in_flight.len() as u32;
        if in_flight >= self.config.max_concurrent {
            return Err(BudgetDenial::Concurrency {
                limit: self.config.max_concurrent,
                in_flight,
            });
        }
        if self.started.len() as u32 >= self.config.max_per_window {
            return Err(BudgetDenial::Rate {
                limit: self.config.max_per_window,
                window_seconds: self.config.window_seconds,
            });
        }
        if let Some(namespace) = &request.namespace {
            let in_namespace = self
                .started
                .iter()
                .filter(|(_, ns)| ns.as_ref() == Some(namespace))
                .count() as u32;
            if in_namespace >= self.config.max_per_namespace {
                return Err(BudgetDenial::Namespace {
                    namespace: namespace.clone(),
                    limit: self.config.max_per_namespace,
                });
            }
        }
        if let Some(impact) = &request.workload {
            self.check_workload(impact)?;
        }
        let permit = Permit(self.next_permit);
        self.next_permit += 1;
        self.in_flight.push(InFlight {
            permit,
            workload: request.workload.clone(),
        });
        self.started.push_back((now, request.namespace.clone()));
        Ok(permit)
    }

    fn check_workload(&self, impact: &WorkloadImpact) -> Result<(), BudgetDenial> {
        let (already, already_ready) = self
            .in_flight
            .iter()
            .filter_map(|f| f.workload.as_ref())
            .filter(|w| w.workload == impact.workload)
            .fold((0, 0), |(d, r), w| {
                (d + w.disrupted_pods, r + w.disrupted_ready_pods)
            });
        let disrupted = already + impact.disrupted_pods;
        let allowed =
            ((self.config.max_disrupted_fraction * f64::from(impact.pods)).floor() as u32).max(1);
        if impact.disrupted_pods > 0 && disrupted > allowed {
            return Err(BudgetDenial::Fraction {
                workload: impact.workload.clone(),
                disrupted,
                pods: impact.pods,
                max_fraction: self.config.max_disrupted_fraction,
            });
        }
        if impact.disrupted_ready_pods > 0
            && impact.ready_pods <= already_ready + impact.disrupted_ready_pods
        {
            return Err(BudgetDenial::LastReadyReplica {
                workload: impact.workload.clone(),
            });
        }
        Ok(())
    }

    /// Ends a disruption. Releasing an unknown or already released permit does nothing.
    pub fn release(&mut self, permit: Permit) {
        self.in_flight.retain(|f| f.permit != permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn impact(pods: u32, ready: u32, disrupted: u32, disrupted_ready: u32) -> WorkloadImpact {
        WorkloadImpact {
            workload: "shop/web".into(),
            pods,
            ready_pods: ready,
            disrupted_pods: disrupted,
            disrupted_ready_pods: disrupted_ready,
        }
    }

    fn request(target: &str) -> DisruptionRequest {
        DisruptionRequest::new(Disruptor::Healing, target).in_namespace("shop")
    }

    #[test]
    fn concurrency_limit_denies_the_third_in_flight() {
        let mut budget = SafetyBudget::new(BudgetConfig::default());
        let a = budget.try_acquire(&request("pod/shop/a"), at(0)).unwrap();
        budget.try_acquire(&request("pod/shop/b"), at(0)).unwrap();
        assert_eq!(
            budget.try_acquire(&request("pod/shop/c"), at(0)),
            Err(BudgetDenial::Concurrency {
                limit: 2,
                in_flight: 2
            })
        );
        budget.release(a);
        assert!(budget.try_acquire(&request("pod/shop/c"), at(0)).is_ok());
    }

    #[test]
    fn new_limits_apply_to_the_next_request_and_keep_what_is_in_flight() {
        let mut budget = SafetyBudget::new(BudgetConfig::default());
        budget.try_acquire(&request("pod/shop/a"), at(0)).unwrap();
        budget.try_acquire(&request("pod/shop/b"), at(0)).unwrap();
        budget.set_config(BudgetConfig {
            max_concurrent: 3,
            ..BudgetConfig::default()
        });
        assert_eq!(budget.in_flight(), 2);
        budget.try_acquire(&request("pod/shop/c"), at(0)).unwrap();
        budget.set_config(BudgetConfig {
            max_concurrent: 1,
            ..BudgetConfig::default()
        });
        assert_eq!(
            budget.try_acquire(&request("pod/shop/d"), at(0)),
            Err(BudgetDenial::Concurrency {
                limit: 1,
                in_flight: 3
            })
        );
    }

    #[test]
    fn sliding_window_and_namespace_caps() {
        let config = BudgetConfig {
            max_concurrent: 100,
            max_per_window: 3,
            max_per_namespace: 2,
            window_seconds: 60,
            ..BudgetConfig::default()
        };
        let mut budget = SafetyBudget::new(config);
        budget.try_acquire(&request("a"), at(0)).unwrap();
        budget.try_acquire(&request("b"), at(10)).unwrap();
        assert_eq!(
            budget.try_acquire(&request("c"), at(20)),
            Err(BudgetDenial::Namespace {
                namespace: "shop".into(),
                limit: 2
            })
        );
        let other = DisruptionRequest::new(Disruptor::Chaos, "node/n1");
        budget.try_acquire(&other, at(20)).unwrap();
        assert_eq!(
            budget.try_acquire(&other, at(30)),
            Err(BudgetDenial::Rate {
                limit: 3,
                window_seconds: 60
            })
        );
        // At 60 s the first start leaves the window.
        assert!(budget.try_acquire(&request("c"), at(60)).is_ok());
    }

    #[test]
    fn never_the_last_ready_replica_and_never_too_large_a_share() {
        let mut budget = SafetyBudget::new(BudgetConfig::default());
        let last = request("pod/shop/web-1").with_impact(impact(1, 1, 1, 1));
        assert_eq!(
            budget.try_acquire(&last, at(0)),
            Err(BudgetDenial::LastReadyReplica {
                workload: "shop/web".into()
            })
        );
        // Restarting a crashed (unready) single pod takes nothing ready away.
        let crashed = request("pod/shop/web-1").with_impact(impact(1, 0, 1, 0));
        assert!(budget.try_acquire(&crashed, at(0)).is_ok());

        let mut budget = SafetyBudget::new(BudgetConfig {
            max_concurrent: 10,
            ..BudgetConfig::default()
        });
        for i in 0..2 {
            let r = request(&format!("pod/shop/web-{i}")).with_impact(impact(4, 4, 1, 1));
            budget.try_acquire(&r, at(0)).unwrap();
        }
        let third = request("pod/shop/web-3").with_impact(impact(4, 4, 1, 1));
        assert_eq!(
            budget.try_acquire(&third, at(0)),
            Err(BudgetDenial::Fraction {
                workload: "shop/web".into(),
                disrupted: 3,
                pods: 4,
                max_fraction: 0.5
            })
        );
    }

    #[test]
    fn invalid_limits_name_the_field() {
        let config = BudgetConfig {
            max_disrupted_fraction: 1.5,
            ..BudgetConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid healing configuration: budget.max_disrupted_fraction must be within (0, 1]"
        );
    }
}
