//! A scripted failure story on the simulated cluster, run by the engine.
//!
//! 1. Two pods crash-loop at once (transient). The budget admits one restart
//!    at a time, so the second restart is denied until the first is verified.
//! 2. The payments deployment leaks memory. A restart does not cure it, so the
//!    incident escalates to scaling, which does not cure it either, then to a
//!    notification, and finally to a human.
//!
//! Deterministic for a seed: the clock is a [`ManualClock`] advanced by the
//! story, and the simulator draws from the seed.

use std::sync::Arc;

use octrix_core::classify::Step;
use octrix_core::engine::{ActionRecord, Engine, EngineConfig, Ports, RecordingNotifier};
use octrix_core::healing::{HealingConfig, Notification};
use octrix_core::incident::{Incident, TimeRange};
use octrix_core::sim::{FaultKind, FaultTarget, SimCluster, SimConfig};
use octrix_core::time::SignedDuration;
use octrix_core::{Category, Clock, ManualClock, Timestamp};

/// The healing rules of the story.
pub const RULES: &str = r#"
settle_seconds: 120
budget:
  max_concurrent: 1
rules:
  - name: restart-crashing-pods
    match: { categories: [pod-crash] }
    cooldown_seconds: 120
    actions:
      - type: restart-pod
  - name: memory-pressure
    match: { categories: [high-memory] }
    actions:
      - type: restart-pod
      - type: scale-deployment
        by: 1
        max: 5
      - type: notify
        channel: sre
"#;

/// When the story starts (the simulator's clock).
pub fn start() -> Timestamp {
    Timestamp::from_second(1_767_225_600).expect("2026-01-01 is a valid timestamp")
}

/// A fault the story injects, and when.
#[derive(Debug, Clone)]
pub struct Injection {
    /// Minutes after the start.
    pub at_minute: i64,
    /// What it is.
    pub description: &'static str,
    /// The incident category it should open.
    pub category: Category,
    /// The deployment it hits.
    pub deployment: &'static str,
    /// The fault.
    pub kind: FaultKind,
    /// Its target.
    pub target: FaultTarget,
}

/// The story's script.
pub fn script() -> Vec<Injection> {
    let pod = |name: &str| FaultTarget::Pod {
        namespace: "shop".into(),
        name: name.into(),
    };
    vec![
        Injection {
            at_minute: 3,
            description: "checkout-1 crash-loops (transient)",
            category: Category::PodCrash,
            deployment: "checkout",
            kind: FaultKind::CrashLoop { persistent: false },
            target: pod("checkout-1"),
        },
        Injection {
            at_minute: 3,
            description: "frontend-2 crash-loops (transient)",
            category: Category::PodCrash,
            deployment: "frontend",
            kind: FaultKind::CrashLoop { persistent: false },
            target: pod("frontend-2"),
        },
        Injection {
            at_minute: 12,
            description: "payments leaks 2 MiB/s in every pod",
            category: Category::HighMemory,
            deployment: "payments",
            kind: FaultKind::MemoryLeak {
                bytes_per_second: 2.0 * 1024.0 * 1024.0,
            },
            target: FaultTarget::Deployment {
                namespace: "shop".into(),
                name: "payments".into(),
            },
        },
    ]
}

/// Detection and repair times of one injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The fault.
    pub description: &'static str,
    /// The first incident opened on its deployment after it was injected
    /// (the detection), and that incident's category.
    pub incident: String,
    /// Category of that first incident (an anomaly often comes first).
    pub detected_as: Category,
    /// The incident of the fault's own category, and when it resolved.
    pub expected_incident: Option<String>,
    /// From injection to the incident opening.
    pub time_to_detect: SignedDuration,
    /// From the injection to the resolution of the incident of the fault's
    /// category, if it resolved.
    pub time_to_resolve: Option<SignedDuration>,
}

/// What the story produced.
#[derive(Debug, Clone)]
pub struct StoryReport {
    /// Every incident, in opening order.
    pub incidents: Vec<Incident>,
    /// Every notification sent.
    pub notifications: Vec<Notification>,
    /// Every action taken or denied.
    pub actions: Vec<ActionRecord>,
    /// Detection and repair times per injected fault.
    pub measured: Vec<Measured>,
    /// Mean time to resolve over incidents resolved in the story.
    pub mttr: Option<SignedDuration>,
}

/// Why the story could not run.
#[derive(Debug, thiserror::Error)]
pub enum StoryError {
    /// The simulator refused its configuration or a fault.
    #[error(transparent)]
    Sim(#[from] octrix_core::sim::SimError),
    /// The engine refused its configuration.
    #[error(transparent)]
    Engine(#[from] octrix_core::engine::Error),
    /// The healing rules did not parse.
    #[error(transparent)]
    Rules(#[from] octrix_core::healing::Error),
}

/// Runs the story for `minutes` simulated minutes with `seed`.
pub async fn run(seed: u64, minutes: i64) -> Result<StoryReport, StoryError> {
    let clock = Arc::new(ManualClock::new(start()));
    let sim = Arc::new(SimCluster::new(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        clock.clone(),
    )?);
    let notifier = Arc::new(RecordingNotifier::default());
    let ports = Ports {
        notifier: notifier.clone(),
        ..Ports::simulated(sim.clone(), clock.clone())
    };
    let mut config = EngineConfig {
        healing: HealingConfig::from_yaml(RULES)?,
        ..EngineConfig::default()
    };
    // Memory above 70% of the limit for two samples is a problem here: the
    // leak then shows before it OOM-kills the pod.
    config.severity.high_memory.medium = Some(Step::new(0.70, 2));
    let mut engine = Engine::new(config, ports)?;

    let script = script();
    let step = SignedDuration::from_secs(15);
    let end = start()
        .checked_add(SignedDuration::from_mins(minutes))
        .expect("the story stays within the supported time range");
    let mut injected_at = Vec::new();
    while clock.now() < end {
        let minute = clock.now().duration_since(start()).as_secs() / 60;
        for injection in script.iter().filter(|i| i.at_minute == minute) {
            if injected_at.iter().all(|(d, _)| *d != injection.description) {
                sim.inject(injection.kind.clone(), injection.target.clone(), None)?;
                injected_at.push((injection.description, clock.now()));
            }
        }
        engine.tick().await;
        clock.advance(step);
    }

    let incidents: Vec<Incident> = engine.book().incidents().cloned().collect();
    let measured = script
        .iter()
        .filter_map(|injection| {
            let (_, at) = injected_at
                .iter()
                .find(|(d, _)| *d == injection.description)?;
            let on_deployment = |i: &&Incident| {
                i.first_seen >= *at && i.service.as_deref() == Some(injection.deployment)
            };
            let detected = incidents.iter().find(on_deployment)?;
            let expected = incidents
                .iter()
                .filter(on_deployment)
                .find(|i| i.category == injection.category);
            Some(Measured {
                description: injection.description,
                incident: detected.id.to_string(),
                detected_as: detected.category,
                expected_incident: expected.map(|i| i.id.to_string()),
                time_to_detect: detected.first_seen.duration_since(*at),
                time_to_resolve: expected
                    .and_then(|i| i.resolved_at.filter(|_| i.resolved_by_healing))
                    .map(|resolved| resolved.duration_since(*at)),
            })
        })
        .collect();
    let stats = engine.book().stats(&TimeRange::all());
    Ok(StoryReport {
        incidents,
        notifications: notifier.sent(),
        actions: engine.action_history().cloned().collect(),
        measured,
        mttr: stats.mttr.mean,
    })
}
