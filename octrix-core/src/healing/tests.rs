use super::*;
use crate::Timestamp;
use crate::cluster::{
    ClusterAction, ClusterSnapshot, ContainerState, DeploymentState, PodOwner, PodPhase, PodState,
};

const RULES: &str = r#"
dry_run: false
escalation_channel: oncall
rules:
  - name: crashloops
    priority: 10
    match:
      categories: [pod-crash, oom-killed]
      max_severity: medium
    cooldown_seconds: 120
    actions:
      - type: restart-pod
      - type: scale-deployment
        by: 2
        max: 4
      - type: notify
        channel: sre
  - name: catch-all
    match: {}
    actions:
      - type: notify
        channel: sre
"#;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn crash(severity: Severity) -> Subject {
    Subject {
        namespace: Some("shop".into()),
        service: Some("web".into()),
        pod: Some("web-1".into()),
        deployment: Some("web".into()),
        node: Some("node-0".into()),
        ..Subject::new("inc-1", Category::PodCrash, severity, "web-1 crash-looping")
    }
}

fn pod(name: &str, ready: bool) -> PodState {
    PodState {
        namespace: "shop".into(),
        name: name.into(),
        node: Some("node-0".into()),
        owner: PodOwner::Deployment("web".into()),
        phase: PodPhase::Running,
        labels: Labels::new(),
        containers: vec![ContainerState {
            name: "web".into(),
            ready,
            restart_count: 0,
            waiting_reason: None,
            last_termination_reason: None,
            cpu_used_cores: 0.1,
            cpu_limit_cores: None,
            memory_used_bytes: 1.0,
            memory_limit_bytes: None,
        }],
    }
}

fn cluster(replicas: u32) -> ClusterSnapshot {
    ClusterSnapshot {
        taken_at: None,
        nodes: vec![],
        deployments: vec![DeploymentState {
            namespace: "shop".into(),
            name: "web".into(),
            replicas,
            ready_replicas: replicas - 1,
            labels: Labels::new(),
        }],
        pods: (1..=replicas)
            .map(|i| pod(&format!("web-{i}"), i != 1))
            .collect(),
    }
}

fn act(decision: Decision) -> PlannedAction {
    match decision {
        Decision::Act(planned) => planned,
        other => panic!("expected an action, got {other:?}"),
    }
}

#[test]
fn heals_step_by_step_then_escalates() {
    let mut planner = Planner::new(HealingConfig::from_yaml(RULES).unwrap());
    let subject = crash(Severity::Medium);
    let snapshot = cluster(2);

    let restart = act(planner.plan(&subject, &snapshot, at(0)));
    assert_eq!((restart.rule.as_str(), restart.step), ("crashloops", 0));
    assert_eq!(
        restart.remediation,
        Remediation::Cluster(ClusterAction::RestartPod {
            namespace: "shop".into(),
            pod: "web-1".into()
        })
    );
    let impact = restart
        .disruption
        .as_ref()
        .unwrap()
        .workload
        .clone()
        .unwrap();
    assert_eq!(
        (
            impact.pods,
            impact.ready_pods,
            impact.disrupted_pods,
            impact.disrupted_ready_pods
        ),
        (2, 1, 1, 0),
        "web-1 is the crashed, unready pod"
    );
    planner.record_attempt("inc-1", &restart, at(0));

    // Within the cooldown, the same action on the same target is denied.
    match planner.plan(&subject, &snapshot, at(60)) {
        Decision::Deny(Denial::Cooldown {
            rule,
            action,
            target,
            until,
        }) => {
            assert_eq!(
                (rule.as_str(), action.as_str(), target.as_str(), until),
                ("crashloops", "restart-pod", "pod/shop/web-1", at(120))
            );
        }
        other => panic!("expected a cooldown, got {other:?}"),
    }

    // The restart did not help: the incident was escalated to high, and the
    // next action of the rule under way still runs: scale by 2 (from 2 to 4).
    planner.advance("inc-1");
    let subject = Subject {
        severity: Severity::High,
        ..subject
    };
    let scale = act(planner.plan(&subject, &snapshot, at(200)));
    assert_eq!(
        scale.remediation,
        Remediation::Cluster(ClusterAction::ScaleDeployment {
            namespace: "shop".into(),
            deployment: "web".into(),
            replicas: 4
        })
    );
    assert_eq!(
        scale.disruption.as_ref().unwrap().workload,
        None,
        "scaling up disrupts no pod"
    );
    planner.record_attempt("inc-1", &scale, at(200));
    planner.advance("inc-1");

    let notify = act(planner.plan(&subject, &snapshot, at(400)));
    let Remediation::Notify(message) = &notify.remediation else {
        panic!("{notify:?}")
    };
    assert_eq!(message.channel, "sre");
    assert_eq!(message.subject, "[high] web-1 crash-looping");
    assert_eq!(notify.disruption, None);
    planner.record_attempt("inc-1", &notify, at(400));
    planner.advance("inc-1");

    // max_attempts (3) is reached: escalate once, then wait for a human.
    match planner.plan(&subject, &snapshot, at(500)) {
        Decision::Escalate {
            reason,
            notification,
        } => {
            assert_eq!(
                reason,
                EscalationReason::ActionsExhausted {
                    rule: "crashloops".into()
                }
            );
            assert_eq!(notification.channel, "oncall");
        }
        other => panic!("expected escalation, got {other:?}"),
    }
    assert_eq!(
        planner.plan(&subject, &snapshot, at(600)),
        Decision::AwaitingHuman
    );
    planner.finish("inc-1");
    // Starting afresh, a high incident is above the auto-heal limit again.
    assert!(matches!(
        planner.plan(&subject, &snapshot, at(700)),
        Decision::Escalate { .. }
    ));
    planner.finish("inc-1");
    let medium = Subject {
        severity: Severity::Medium,
        ..subject
    };
    assert!(matches!(
        planner.plan(&medium, &snapshot, at(700)),
        Decision::Act(_)
    ));
}

#[test]
fn scaling_already_at_the_bound_is_skipped() {
    let mut planner = Planner::new(HealingConfig::from_yaml(RULES).unwrap());
    let subject = crash(Severity::Low);
    let snapshot = cluster(4);
    planner.advance("inc-1"); // no progress yet: nothing happens
    let first = act(planner.plan(&subject, &snapshot, at(0)));
    planner.record_attempt("inc-1", &first, at(0));
    planner.advance("inc-1");
    let next = act(planner.plan(&subject, &snapshot, at(10)));
    assert_eq!(
        next.step, 2,
        "4 replicas is already the max, so scale is skipped"
    );
    assert_eq!(next.action.name(), "notify");
}

#[test]
fn high_severity_escalates_unless_the_rule_allows_acting() {
    let mut planner = Planner::new(HealingConfig::from_yaml(RULES).unwrap());
    let high = crash(Severity::High);
    // crashloops caps at medium, so catch-all matches; high is above auto-heal.
    match planner.plan(&high, &cluster(2), at(0)) {
        Decision::Escalate {
            reason,
            notification,
        } => {
            assert_eq!(reason, EscalationReason::SeverityAboveAutoHeal);
            assert_eq!(
                notification.subject,
                "[high] escalated: web-1 crash-looping"
            );
        }
        other => panic!("{other:?}"),
    }

    let mut config = HealingConfig::from_yaml(RULES).unwrap();
    config.rules[1].act_above_auto_heal_severity = true;
    let mut planner = Planner::new(config);
    let planned = act(planner.plan(&high, &cluster(2), at(0)));
    assert_eq!(planned.rule, "catch-all");
}

#[test]
fn protected_namespaces_and_dry_run() {
    let mut planner = Planner::new(HealingConfig::from_yaml(RULES).unwrap());
    let system = Subject {
        namespace: Some("kube-system".into()),
        ..crash(Severity::Low)
    };
    assert_eq!(
        planner.plan(&system, &cluster(2), at(0)),
        Decision::Deny(Denial::Protected {
            namespace: "kube-system".into()
        })
    );
    planner.set_dry_run(true);
    assert!(act(planner.plan(&crash(Severity::Low), &cluster(2), at(0))).dry_run);
}

#[test]
fn unmatched_incidents_have_no_rule() {
    let config = HealingConfig {
        rules: HealingConfig::from_yaml(RULES).unwrap().rules[..1].to_vec(),
        ..HealingConfig::default()
    };
    let mut planner = Planner::new(config);
    let cpu = Subject::new("inc-2", Category::HighCpu, Severity::Low, "cpu");
    assert_eq!(
        planner.plan(&cpu, &cluster(2), at(0)),
        Decision::NoMatchingRule
    );
}

#[test]
fn yaml_and_toml_load_the_same_configuration() {
    let toml = r#"
escalation_channel = "oncall"
[[rules]]
name = "crashloops"
priority = 10
cooldown_seconds = 120
match = { categories = ["pod-crash", "oom-killed"], max_severity = "medium" }
actions = [
  { type = "restart-pod" },
  { type = "scale-deployment", by = 2, max = 4 },
  { type = "notify", channel = "sre" },
]
[[rules]]
name = "catch-all"
actions = [{ type = "notify", channel = "sre" }]
"#;
    assert_eq!(
        HealingConfig::from_toml(toml).unwrap(),
        HealingConfig::from_yaml(RULES).unwrap()
    );
    let defaults = HealingConfig::default();
    assert_eq!(
        defaults.protected_namespaces,
        ["kube-system", "octrix-system"]
    );
    assert_eq!(defaults.auto_heal_max_severity, Severity::Medium);
}

#[test]
fn invalid_configuration_names_the_field() {
    let cases = [
        (
            "rules: [{name: a, actions: [{type: scale-deployment, to: 3, by: 1}]}]",
            "rules[0].actions[0].to set exactly one of `to` and `by`",
        ),
        (
            "rules: [{name: a, actions: [{type: custom-script, program: 'rm -rf /'}]}]",
            "rules[0].actions[0].program is a program path, not a shell command: put arguments in `args`",
        ),
        (
            "rules: [{name: a, actions: []}]",
            "rules[0].actions must list at least one action",
        ),
        (
            "rules: [{name: a, actions: [{type: restart-pod}]}, {name: a, actions: [{type: restart-pod}]}]",
            "rules[1].name duplicates another rule's name",
        ),
        (
            "rules: [{name: a, match: {min_severity: high, max_severity: low}, actions: [{type: restart-pod}]}]",
            "rules[0].match.min_severity is above match.max_severity",
        ),
        (
            "budget: {window_seconds: 0}",
            "budget.window_seconds must be at least 1",
        ),
    ];
    for (yaml, message) in cases {
        let err = HealingConfig::from_yaml(yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid healing configuration: {message}"),
            "{yaml}"
        );
    }
    let err =
        HealingConfig::from_yaml("rules: [{name: a, actions: [{type: reboot}]}]").unwrap_err();
    assert!(
        matches!(&err, Error::Parse(m) if m.contains("unknown variant `reboot`")),
        "{err}"
    );
}

#[test]
fn custom_scripts_get_the_incident_in_their_environment() {
    let yaml = "rules: [{name: s, actions: [{type: custom-script, program: /usr/local/bin/fix, args: ['--fast']}]}]";
    let mut planner = Planner::new(HealingConfig::from_yaml(yaml).unwrap());
    let planned = act(planner.plan(&crash(Severity::Low), &cluster(2), at(0)));
    let Remediation::Script(script) = planned.remediation else {
        panic!()
    };
    assert_eq!(script.args, ["--fast"]);
    assert_eq!(script.timeout_seconds, 60);
    assert!(
        script
            .env
            .contains(&("OCTRIX_INCIDENT_ID".into(), "inc-1".into()))
    );
    assert!(script.env.contains(&("OCTRIX_POD".into(), "web-1".into())));
}

#[test]
fn policies_fire_outside_their_cooldown() {
    let yaml = r#"
policies:
  - {name: slow, condition: "latency > 0.5", action: scale_up, service: orders, cooldown: 60}
"#;
    let mut planner = Planner::new(HealingConfig::from_yaml(yaml).unwrap());
    let fired = planner.fire_policies("orders", "latency", 0.9, at(0));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.name(), "scale-deployment");
    assert!(
        planner
            .fire_policies("orders", "latency", 0.9, at(30))
            .is_empty()
    );
    assert!(
        planner
            .fire_policies("orders", "latency", 0.1, at(90))
            .is_empty()
    );
    assert_eq!(
        planner
            .fire_policies("orders", "latency", 0.9, at(90))
            .len(),
        1
    );
}

#[test]
fn priority_orders_matching_rules() {
    let config = HealingConfig::from_yaml(RULES).unwrap();
    let names: Vec<_> = config
        .matching_rules(&crash(Severity::Low))
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["crashloops", "catch-all"]);
}
