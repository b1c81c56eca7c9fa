//! The identity of a series: metric name plus sorted labels, as one string.

use std::fmt;

use crate::Labels;

/// A series' identity rendered once as `metric{name="value",...}`, labels in
/// name order (Prometheus' notation).
///
/// The characters `\ { } = , "` and newlines are backslash-escaped in every
/// part, so two different series never render the same; ordinary Prometheus
/// names and values need no escaping and render as Prometheus shows them.
///
/// ```
/// use octrix_core::detect::SeriesKey;
/// use octrix_core::labels::from_pairs;
///
/// let key = SeriesKey::new("http_latency", &from_pairs([("pod", "api-0"), ("env", "prod")]));
/// assert_eq!(key.as_str(), r#"http_latency{env="prod",pod="api-0"}"#);
/// assert_eq!(SeriesKey::new("up", &Default::default()).as_str(), "up{}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(Box<str>);

impl SeriesKey {
    /// The key of the series `metric` with `labels`.
    pub fn new(metric: &str, labels: &Labels) -> Self {
        let mut rendered = String::new();
        render_into(&mut rendered, metric, labels);
        Self(rendered.into_boxed_str())
    }

    /// The rendered key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders the key of `metric` with `labels` into `out` (cleared first), so
/// that a lookup can reuse one buffer instead of allocating.
pub(crate) fn render_into(out: &mut String, metric: &str, labels: &Labels) {
    out.clear();
    push_escaped(out, metric);
    out.push('{');
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_escaped(out, name);
        out.push_str("=\"");
        push_escaped(out, value);
        out.push('"');
    }
    out.push('}');
}

fn push_escaped(out: &mut String, text: &str) {
    // Label values rarely need escaping: copy them whole when they do not.
    if !text
        .bytes()
        .any(|b| matches!(b, b'\n' | b'\\' | b'{' | b'}' | b'=' | b',' | b'"'))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' | '{' | '}' | '=' | ',' | '"' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::from_pairs;

    #[test]
    fn label_order_does_not_matter() {
        let a = SeriesKey::new("m", &from_pairs([("b", "2"), ("a", "1")]));
        let b = SeriesKey::new("m", &from_pairs([("a", "1"), ("b", "2")]));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), r#"m{a="1",b="2"}"#);
    }

    #[test]
    fn delimiters_are_escaped_so_keys_stay_distinct() {
        let tricky = SeriesKey::new("m", &from_pairs([("a", r#"1",b="2"#)]));
        let plain = SeriesKey::new("m", &from_pairs([("a", "1"), ("b", "2")]));
        assert_ne!(tricky, plain);
        assert_eq!(tricky.as_str(), r#"m{a="1\"\,b\=\"2"}"#);
        let in_metric = SeriesKey::new(r#"m{a="1"}"#, &Labels::new());
        let as_label = SeriesKey::new("m", &from_pairs([("a", "1")]));
        assert_ne!(in_metric, as_label);
        assert_eq!(
            SeriesKey::new("m", &from_pairs([("a", "x\ny\\")])).as_str(),
            r#"m{a="x\ny\\"}"#
        );
    }
}
