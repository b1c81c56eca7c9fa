//! Checks of Kubernetes and Istio names, shared by the rule and canary
//! validators so that both report the same rules in the same words.

/// Why a name was refused, phrased to follow the field it belongs to.
pub(crate) type NameProblem = String;

/// A DNS-1123 label: what Kubernetes accepts as a namespace or service name
/// and Istio as a subset name.
pub(crate) fn check_dns_label(value: &str) -> Result<(), NameProblem> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > 63 {
        return Err(format!(
            "{value:?} is longer than 63 characters, the limit of a DNS-1123 label"
        ));
    }
    if !is_dns_label(value) {
        return Err(format!(
            "{value:?} is not a DNS-1123 label (lowercase letters, digits and '-', \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A VirtualService host: a DNS-1123 subdomain (`reviews`,
/// `reviews.prod.svc.cluster.local`), optionally behind a `*.` wildcard, or `*`.
pub(crate) fn check_host(value: &str) -> Result<(), NameProblem> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value == "*" {
        return Ok(());
    }
    let name = value.strip_prefix("*.").unwrap_or(value);
    if name.len() > 253 || !name.split('.').all(is_dns_label) {
        return Err(format!(
            "{value:?} is not a host name (DNS-1123 subdomain, optionally prefixed by \"*.\")"
        ));
    }
    Ok(())
}

/// A Kubernetes label key: an optional DNS subdomain prefix and a slash, then
/// a name of at most 63 alphanumerics, '-', '_' or '.'.
pub(crate) fn check_label_key(key: &str) -> Result<(), NameProblem> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(is_dns_label))
    {
        return Err(format!(
            "label key {key:?} has a prefix that is not a DNS-1123 subdomain"
        ));
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(format!(
            "label key {key:?} is not valid (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or like a label key's name part.
pub(crate) fn check_label_value(value: &str) -> Result<(), NameProblem> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is not valid (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

/// An HTTP header name as Istio matches it: lowercase, made of token characters.
pub(crate) fn check_header_name(value: &str) -> Result<(), NameProblem> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let is_token_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c);
    if !value.chars().all(is_token_char) {
        return Err(format!(
            "{value:?} is not a lowercase HTTP header name (Istio matches header names in lowercase)"
        ));
    }
    Ok(())
}

fn is_dns_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && edge_ok(bytes[0])
        && edge_ok(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| edge_ok(b) || b == b'-')
}

fn is_label_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(check_dns_label("reviews-v2").is_ok());
        assert!(check_dns_label("v1").is_ok());
        assert!(check_dns_label("").is_err());
        assert!(check_dns_label("Reviews").is_err());
        assert!(check_dns_label("-reviews").is_err());
        assert!(check_dns_label("reviews-").is_err());
        assert!(check_dns_label("a.b").is_err());
        assert!(check_dns_label(&"a".repeat(64)).is_err());
        assert!(check_dns_label(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn hosts() {
        assert!(check_host("reviews").is_ok());
        assert!(check_host("reviews.prod.svc.cluster.local").is_ok());
        assert!(check_host("*.example.com").is_ok());
        assert!(check_host("*").is_ok());
        assert!(check_host("").is_err());
        assert!(check_host("reviews..local").is_err());
        assert!(check_host("a.*.com").is_err());
        assert!(check_host("Reviews").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(check_label_key("version").is_ok());
        assert!(check_label_key("app.kubernetes.io/version").is_ok());
        assert!(check_label_key("/version").is_err());
        assert!(check_label_key("app/").is_err());
        assert!(check_label_key("ver sion").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2.3_rc-1").is_ok());
        assert!(check_label_value("-v1").is_err());
        assert!(check_label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn header_names() {
        assert!(check_header_name("x-canary").is_ok());
        assert!(check_header_name("end-user").is_ok());
        assert!(check_header_name("X-Canary").is_err());
        assert!(check_header_name("x canary").is_err());
        assert!(check_header_name("").is_err());
    }
}
