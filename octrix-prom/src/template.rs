//! PromQL templates with `$name` placeholders.
//!
//! PromQL uses braces for selectors, so placeholders are written `$name`
//! (letters, digits and `_`, not starting with a digit); `$$` is a literal
//! `$`. A placeholder without a value is an error, never left in the query.
//! Values meant to be used inside a PromQL string literal must be passed
//! through [`escape_string`] (or [`escape_regex`] inside a `=~` matcher).
//!
//! ```
//! use octrix_prom::template::{render, escape_string};
//!
//! let promql = render(
//!     r#"sum(rate(http_requests_total{service="$service"}[$window]))"#,
//!     &[("service", escape_string("checkout")), ("window", "5m".to_owned())],
//! ).unwrap();
//! assert_eq!(promql, r#"sum(rate(http_requests_total{service="checkout"}[5m]))"#);
//! ```

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The template names a placeholder that has no value.
    #[error("unknown placeholder ${name} at byte {position}")]
    UnknownPlaceholder {
        /// The placeholder's name.
        name: String,
        /// Byte offset of its `$` in the template.
        position: usize,
    },
    /// A `$` followed by neither a name nor another `$`.
    #[error("lone '$' at byte {position} (write $$ for a literal '$')")]
    LoneDollar {
        /// Byte offset of the `$`.
        position: usize,
    },
}

/// Replaces each `$name` in `template` by its value in `vars`.
pub fn render(template: &str, vars: &[(&str, String)]) -> Result<String, Error> {
    let mut out = String::with_capacity(template.len() + 32);
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(offset) = template[i..].find('$') else {
            out.push_str(&template[i..]);
            break;
        };
        let dollar = i + offset;
        out.push_str(&template[i..dollar]);
        let rest = &bytes[dollar + 1..];
        if rest.first() == Some(&b'$') {
            out.push('$');
            i = dollar + 2;
            continue;
        }
        let len = rest
            .iter()
            .enumerate()
            .take_while(|&(n, b)| {
                b.is_ascii_alphabetic() || *b == b'_' || (n > 0 && b.is_ascii_digit())
            })
            .count();
        if len == 0 {
            return Err(Error::LoneDollar { position: dollar });
        }
        let name = &template[dollar + 1..dollar + 1 + len];
        let value = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::UnknownPlaceholder {
                name: name.to_owned(),
                position: dollar,
            })?;
        out.push_str(value);
        i = dollar + 1 + len;
    }
    Ok(out)
}

/// Escapes `value` for use inside a double-quoted PromQL string.
///
/// ```
/// assert_eq!(octrix_prom::template::escape_string(r#"a"b\c"#), r#"a\"b\\c"#);
/// ```
pub fn escape_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `value` so that a `=~` matcher matches it literally, ready for a
/// double-quoted PromQL string.
///
/// ```
/// assert_eq!(octrix_prom::template::escape_regex("v1.2"), r"v1\\.2");
/// ```
pub fn escape_regex(value: &str) -> String {
    let mut regex = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            regex.push('\\');
        }
        regex.push(c);
    }
    escape_string(&regex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(&'static str, String)> {
        vec![
            ("namespace", "prod".to_owned()),
            ("namespace_matcher", r#"namespace="prod""#.to_owned()),
            ("window", "5m".to_owned()),
        ]
    }

    #[test]
    fn longest_name_wins_and_dollars_escape() {
        let out = render("$namespace_matcher,$namespace;$$x[$window]", &vars()).unwrap();
        assert_eq!(out, r#"namespace="prod",prod;$x[5m]"#);
    }

    #[test]
    fn unknown_and_lone_placeholders_are_errors() {
        assert_eq!(
            render("rate(x[$windw])", &vars()),
            Err(Error::UnknownPlaceholder {
                name: "windw".into(),
                position: 7
            })
        );
        assert_eq!(
            render("x $ 1", &vars()),
            Err(Error::LoneDollar { position: 2 })
        );
        assert_eq!(
            render("x$", &vars()),
            Err(Error::LoneDollar { position: 1 })
        );
        assert_eq!(
            render("$1", &vars()),
            Err(Error::LoneDollar { position: 0 })
        );
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let q = r#"sum by (pod) (up{job="x"})"#;
        assert_eq!(render(q, &[]).unwrap(), q);
    }
}
