//! The healing story: crash loops healed by restarts (one held back by the
//! safety budget), and a memory leak that escalates from restart to scaling
//! to a notification and a human. Prints every incident's timeline, then the
//! time to detect and to resolve each fault.
//!
//! ```text
//! cargo run -p octrix-examples --example heal_story -- --seed 42 --minutes 45
//! ```

use anyhow::Result;
use clap::Parser;
use octrix_core::incident::TimelineEvent;
use octrix_core::time::SignedDuration;
use octrix_examples::story;

/// Runs the healing story on the simulated cluster.
#[derive(Parser)]
struct Args {
    /// Seed of the simulated cluster.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Simulated minutes to run.
    #[arg(long, default_value_t = 45)]
    minutes: i64,
}

fn clock(at: octrix_core::Timestamp) -> String {
    let offset = at.duration_since(story::start());
    format!("+{:02}:{:02}", offset.as_secs() / 60, offset.as_secs() % 60)
}

fn human(d: SignedDuration) -> String {
    format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
}

fn describe(event: &TimelineEvent) -> String {
    let json = serde_json::to_value(event).unwrap_or_default();
    match event {
        TimelineEvent::Healing {
            action,
            target,
            outcome,
            ..
        } => {
            let outcome = serde_json::to_value(outcome).unwrap_or_default();
            let detail = outcome
                .get("summary")
                .or_else(|| outcome.get("reason"))
                .or_else(|| outcome.get("error"))
                .and_then(|v| v.as_str())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!(
                "healing {action} on {target}: {}{detail}",
                outcome["result"].as_str().unwrap_or("?")
            )
        }
        _ => {
            let mut fields = json.as_object().cloned().unwrap_or_default();
            let kind = fields
                .remove("kind")
                .and_then(|k| k.as_str().map(str::to_owned));
            let rest: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {}", kind.unwrap_or_default(), rest.join(" "))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "Octrix healing story on a simulated cluster (seed {}), {} simulated minutes",
        args.seed, args.minutes
    );
    for injection in story::script() {
        println!(
            "  at +{:02}:00 inject: {}",
            injection.at_minute, injection.description
        );
    }
    let report = story::run(args.seed, args.minutes).await?;

    let (anomalies, incidents): (Vec<_>, Vec<_>) = report
        .incidents
        .iter()
        .partition(|i| i.category == octrix_core::Category::Anomaly);
    for incident in incidents {
        println!(
            "\n{} [{}] {} ({}, {}{})",
            incident.id,
            incident.severity,
            incident.title,
            incident.category,
            incident.status,
            if incident.resolved_by_healing {
                ", resolved by healing"
            } else if incident.escalated {
                ", escalated"
            } else {
                ""
            }
        );
        for entry in &incident.timeline {
            println!(
                "  {} {:<14} {}",
                clock(entry.at),
                entry.actor,
                describe(&entry.event)
            );
        }
    }
    println!("\nDetector anomalies (no healing rule applies to them):");
    for incident in anomalies {
        println!(
            "  {} {} [{}] {}: {}",
            clock(incident.first_seen),
            incident.id,
            incident.severity,
            incident.status,
            incident.title
        );
    }
    println!("\nNotifications:");
    for n in &report.notifications {
        println!("  #{}: {}", n.channel, n.subject);
    }
    println!("\nTime to detect and resolve each injected fault:");
    for m in &report.measured {
        println!(
            "  {:<40} detected in {} ({} {}), {}",
            m.description,
            human(m.time_to_detect),
            m.incident,
            m.detected_as,
            m.time_to_resolve
                .map_or("not healed: escalated to a human".to_owned(), |d| {
                    format!("healed {} after injection", human(d))
                })
        );
    }
    match report.mttr {
        Some(mttr) => println!("\nMTTR over resolved incidents: {}", human(mttr)),
        None => println!("\nNo incident resolved."),
    }
    Ok(())
}
