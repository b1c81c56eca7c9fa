//! The healing story ends as it should, and the same seed tells it the same way.

use octrix_core::Category;
use octrix_core::incident::{Incident, IncidentStatus, TimelineEvent};
use octrix_core::time::SignedDuration;
use octrix_examples::story;

fn healing_steps(incident: &Incident) -> Vec<String> {
    incident
        .timeline
        .iter()
        .filter_map(|entry| match &entry.event {
            TimelineEvent::Healing {
                action, outcome, ..
            } => {
                let outcome = serde_json::to_value(outcome).unwrap();
                Some(format!("{action} {}", outcome["result"].as_str().unwrap()))
            }
            _ => None,
        })
        .collect()
}

fn first<'a>(report: &'a story::StoryReport, category: Category, pod: &str) -> &'a Incident {
    report
        .incidents
        .iter()
        .find(|i| i.category == category && i.resource.as_ref().is_some_and(|r| r.name == pod))
        .unwrap_or_else(|| panic!("no {category} incident on {pod}"))
}

#[tokio::test]
async fn the_story_heals_escalates_and_is_deterministic() {
    let report = story::run(42, 45).await.unwrap();

    // Two transient crash loops: both healed by a restart, one of them only
    // after the budget (one disruption at a time) let it through.
    let frontend = first(&report, Category::PodCrash, "frontend-2");
    let checkout = first(&report, Category::PodCrash, "checkout-1");
    for incident in [frontend, checkout] {
        assert_eq!(incident.status, IncidentStatus::Resolved);
        assert!(incident.resolved_by_healing, "{}", incident.id);
    }
    let mut steps = [healing_steps(frontend), healing_steps(checkout)];
    steps.sort();
    assert_eq!(
        steps,
        [
            vec![
                "restart-pod denied",
                "restart-pod executed",
                "restart-pod healed"
            ],
            vec!["restart-pod executed", "restart-pod healed"],
        ]
    );

    // The leak: a restart does not cure it, nor does scaling; a notification
    // goes out and the incident is handed to a human.
    let leak = first(&report, Category::HighMemory, "payments-1");
    assert_eq!(
        healing_steps(leak),
        [
            "restart-pod executed",
            "restart-pod not_healed",
            "scale-deployment executed",
            "scale-deployment not_healed",
            "notify executed",
            "notify not_healed",
        ]
    );
    assert!(leak.escalated);
    assert_eq!(leak.severity, octrix_core::Severity::Critical);
    let channels: Vec<&str> = report
        .notifications
        .iter()
        .map(|n| n.channel.as_str())
        .collect();
    assert!(
        channels.contains(&"sre") && channels.contains(&"oncall"),
        "{channels:?}"
    );

    // Every fault is detected within a minute and a half; the crash loops
    // are repaired within five minutes.
    assert_eq!(report.measured.len(), 3, "{:?}", report.measured);
    for m in &report.measured {
        assert!(m.time_to_detect <= SignedDuration::from_secs(90), "{m:?}");
    }
    for m in report
        .measured
        .iter()
        .filter(|m| m.description.contains("crash"))
    {
        assert!(
            m.time_to_resolve.unwrap() <= SignedDuration::from_mins(5),
            "{m:?}"
        );
    }
    assert!(report.mttr.is_some());

    // The same seed tells the same story.
    let again = story::run(42, 45).await.unwrap();
    assert_eq!(
        serde_json::to_string(&again.incidents).unwrap(),
        serde_json::to_string(&report.incidents).unwrap()
    );
}
