//! Seed 004's policies: `metric op threshold` conditions with an action and a
//! cooldown, e.g.
//!
//! ```yaml
//! - name: slow-orders
//!   condition: "latency > 0.5"
//!   action: scale-up
//!   service: orders
//!   cooldown: 300
//! ```
//!
//! ```
//! use octrix_core::healing::{Comparison, Condition};
//!
//! let c: Condition = "error_rate >= 0.05".parse().unwrap();
//! assert_eq!((c.metric.as_str(), c.op, c.threshold), ("error_rate", Comparison::Ge, 0.05));
//! assert!(c.holds(0.07));
//!
//! let err = "latency >> 0.5".parse::<Condition>().unwrap_err();
//! assert_eq!(err.to_string(), "at column 10: expected a number, found `> 0.5`");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Error;
use super::action::HealingAction;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

/// `metric op threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Condition {
    /// Metric name: letters, digits, `_` and `:`, not starting with a digit.
    pub metric: String,
    /// The comparison.
    pub op: Comparison,
    /// The threshold.
    pub threshold: f64,
}

/// Why a condition did not parse: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: expected {expected}, found `{found}`")]
pub struct ConditionError {
    /// 1-based column of the problem.
    pub column: usize,
    /// What the parser expected.
    pub expected: &'static str,
    /// The rest of the input from there (or `end of input`).
    pub found: String,
}

impl Condition {
    /// Whether `value` satisfies the condition. NaN satisfies nothing.
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            Comparison::Gt => value > self.threshold,
            Comparison::Ge => value >= self.threshold,
            Comparison::Lt => value < self.threshold,
            Comparison::Le => value <= self.threshold,
            Comparison::Eq => value == self.threshold,
            Comparison::Ne => !value.is_nan() && value != self.threshold,
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.text[self.at..];
        let len = rest.find(|c| !accept(c)).unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn error(&self, expected: &'static str) -> ConditionError {
        let rest = &self.text[self.at..];
        ConditionError {
            column: self.text[..self.at].chars().count() + 1,
            expected,
            found: if rest.is_empty() {
                "end of input".to_owned()
            } else {
                rest.to_owned()
            },
        }
    }
}

impl FromStr for Condition {
    type Err = ConditionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut cursor = Cursor { text, at: 0 };
        cursor.skip_spaces();
        let starts_name = text[cursor.at..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
        if !starts_name {
            return Err(cursor.error("a metric name"));
        }
        let metric = cursor.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        cursor.skip_spaces();
        let op = [
            (">=", Comparison::Ge),
            ("<=", Comparison::Le),
            ("==", Comparison::Eq),
            ("!=", Comparison::Ne),
            (">", Comparison::Gt),
            ("<", Comparison::Lt),
        ]
        .into_iter()
        .find(|(symbol, _)| text[cursor.at..].starts_with(symbol))
        .map(|(symbol, op)| {
            cursor.at += symbol.len();
            op
        })
        .ok_or_else(|| cursor.error("one of >, >=, <, <=, ==, !="))?;
        cursor.skip_spaces();
        let number_at = cursor.at;
        let number = cursor.take_while(|c| !c.is_whitespace());
        let threshold = number
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .ok_or_else(|| {
                cursor.at = number_at;
                cursor.error("a number")
            })?;
        cursor.skip_spaces();
        if cursor.at != text.len() {
            return Err(cursor.error("end of input"));
        }
        Ok(Self {
            metric: metric.to_owned(),
            op,
            threshold,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.symbol(), self.threshold)
    }
}

impl TryFrom<String> for Condition {
    type Error = ConditionError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Condition> for String {
    fn from(condition: Condition) -> Self {
        condition.to_string()
    }
}

/// What a seed-004 policy does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyAction {
    /// Restart the offending pod (seed 004's `restart_container`).
    #[serde(alias = "restart_container")]
    Restart,
    /// Add one replica (seed 004's `scale_up`).
    #[serde(alias = "scale_up")]
    ScaleUp,
    /// Notify the escalation channel.
    Alert,
}

/// A seed-004 policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Unique name.
    pub name: String,
    /// When it fires.
    pub condition: Condition,
    /// What it does.
    pub action: PolicyAction,
    /// The service it watches and acts on.
    pub service: String,
    /// Seconds before the policy may fire again.
    #[serde(default = "default_cooldown")]
    pub cooldown: u32,
    /// Whether it is considered.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_cooldown() -> u32 {
    300
}
fn yes() -> bool {
    true
}

impl Policy {
    /// Whether the policy fires for `metric` of `service` at `value`.
    pub fn fires(&self, service: &str, metric: &str, value: f64) -> bool {
        self.enabled
            && self.service == service
            && self.condition.metric == metric
            && self.condition.holds(value)
    }

    /// The healing action the policy stands for.
    pub fn healing_action(&self, escalation_channel: &str) -> HealingAction {
        match self.action {
            PolicyAction::Restart => HealingAction::RestartPod,
            PolicyAction::ScaleUp => HealingAction::ScaleDeployment {
                to: None,
                by: Some(1),
                min: 1,
                max: 10,
            },
            PolicyAction::Alert => HealingAction::Notify {
                channel: escalation_channel.to_owned(),
            },
        }
    }

    pub(super) fn validate(&self, field: &str) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::InvalidField {
                field: format!("{field}.name"),
                reason: "must not be empty".into(),
            });
        }
        if self.service.trim().is_empty() {
            return Err(Error::InvalidField {
                field: format!("{field}.service"),
                reason: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Condition, ConditionError> {
        text.parse()
    }

    #[test]
    fn parses_every_operator_and_spacing() {
        for (text, op) in [
            ("latency > 0.5", Comparison::Gt),
            ("latency>=0.5", Comparison::Ge),
            ("  latency <0.5 ", Comparison::Lt),
            ("latency <= 5e-1", Comparison::Le),
            ("latency == 0.5", Comparison::Eq),
            ("latency != 0.5", Comparison::Ne),
        ] {
            let c = parse(text).unwrap();
            assert_eq!(
                (c.metric.as_str(), c.op, c.threshold),
                ("latency", op, 0.5),
                "{text}"
            );
        }
        assert_eq!(
            parse("job:errors:rate5m > 1").unwrap().metric,
            "job:errors:rate5m"
        );
    }

    #[test]
    fn errors_give_the_column_and_what_was_expected() {
        let cases = [
            ("", 1, "a metric name", "end of input"),
            ("0latency > 1", 1, "a metric name", "0latency > 1"),
            ("latency 0.5", 9, "one of >, >=, <, <=, ==, !=", "0.5"),
            ("latency >", 10, "a number", "end of input"),
            ("latency > fast", 11, "a number", "fast"),
            ("latency > inf", 11, "a number", "inf"),
            ("latency > 0.5 ms", 15, "end of input", "ms"),
        ];
        for (text, column, expected, found) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                (err.column, err.expected, err.found.as_str()),
                (column, expected, found),
                "{text}"
            );
        }
    }

    #[test]
    fn holds_compares_and_never_fires_on_nan() {
        let c = parse("error_rate >= 0.05").unwrap();
        assert!(c.holds(0.05) && c.holds(0.5) && !c.holds(0.049));
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            assert!(
                !parse(&format!("x {op} 1")).unwrap().holds(f64::NAN),
                "{op}"
            );
        }
    }

    #[test]
    fn policies_load_from_seed_yaml_and_round_trip() {
        let yaml = r#"
- name: "slow-orders"
  condition: "latency > 0.5"
  action: "scale_up"
  service: "orders"
  cooldown: 120
- name: "errors"
  condition: "error_rate >= 0.05"
  action: "restart_container"
  service: "payments"
"#;
        let policies: Vec<Policy> = serde_norway::from_str(yaml).unwrap();
        assert_eq!(policies[0].action, PolicyAction::ScaleUp);
        assert_eq!(policies[0].cooldown, 120);
        assert_eq!(policies[1].cooldown, 300);
        assert!(policies[1].enabled);
        assert!(policies[0].fires("orders", "latency", 0.7));
        assert!(!policies[0].fires("payments", "latency", 0.7));
        let back: Vec<Policy> =
            serde_norway::from_str(&serde_norway::to_string(&policies).unwrap()).unwrap();
        assert_eq!(back, policies);

        let bad = "- {name: x, condition: \"latency >\", action: alert, service: s}";
        let err = serde_norway::from_str::<Vec<Policy>>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at column 10: expected a number"), "{err}");
    }
}
