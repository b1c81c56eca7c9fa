//! HTTP settings shared by the Prometheus and Alertmanager clients.
//!
//! An [`HttpConfig`] is what a user writes (serde, with defaults): base URL,
//! timeouts, optional bearer or basic authentication and extra headers.
//! [`HttpConfig::build`] turns it into a ready [`reqwest::Client`] and the
//! parsed base URL. Transport failures are classified into [`Error`] so that
//! callers can tell a timeout from a refused connection.
//!
//! TLS is rustls with the `ring` provider, installed as the process default
//! the first time a client is built.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};

/// Why an HTTP exchange failed below the level of the remote API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL could not be parsed or cannot be a base.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A configured header name or value is not valid HTTP.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as configured.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The HTTP client could not be constructed.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// No answer within the configured timeout.
    #[error("request to {url} timed out")]
    Timeout {
        /// The URL requested.
        url: String,
    },
    /// The server could not be reached (connection refused, DNS, TLS).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL requested.
        url: String,
        /// The underlying cause, with its chain of sources.
        reason: String,
    },
    /// Any other failure while sending the request or reading the answer.
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL requested.
        url: String,
        /// The underlying cause, with its chain of sources.
        reason: String,
    },
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password, if any.
        #[serde(default)]
        password: Option<String>,
    },
}

/// Connection settings for one HTTP API, as a user writes them.
///
/// ```
/// use octrix_prom::http::HttpConfig;
///
/// let config: HttpConfig = serde_json::from_str(
///     r#"{"url": "http://prometheus:9090", "timeout_ms": 2000,
///         "auth": {"type": "bearer", "token": "s3cret"},
///         "headers": {"X-Scope-OrgID": "team-a"}}"#,
/// ).unwrap();
/// assert_eq!(config.connect_timeout_ms, 2_000); // the default
/// let (_client, base) = config.build().unwrap();
/// assert_eq!(base.as_str(), "http://prometheus:9090/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Base URL of the server, e.g. `http://prometheus:9090` or a path prefix
    /// such as `https://example.org/prometheus`.
    pub url: String,
    /// Time allowed for a whole request, in milliseconds.
    pub timeout_ms: u64,
    /// Time allowed to establish a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Optional authentication.
    pub auth: Option<Auth>,
    /// Extra headers sent with every request (e.g. a tenant header).
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            url: "http://localhost:9090".to_owned(),
            timeout_ms: 10_000,
            connect_timeout_ms: 2_000,
            auth: None,
            headers: Default::default(),
        }
    }
}

impl HttpConfig {
    /// Settings for `url` with the default timeouts and no authentication.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The same settings with a request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The same settings with authentication.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The same settings with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Builds the HTTP client and parses the base URL (always ending in `/`,
    /// so that API paths join below any prefix).
    pub fn build(&self) -> Result<(Client, Url), Error> {
        install_crypto_provider();
        let base = parse_base(&self.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| Error::InvalidHeader {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            let header_value = HeaderValue::from_str(value).map_err(|e| Error::InvalidHeader {
                name: name.clone(),
                reason: e.to_string(),
            })?;
            headers.insert(header_name, header_value);
        }
        if let Some(auth) = &self.auth {
            let value = match auth {
                Auth::Bearer { token } => format!("Bearer {token}"),
                Auth::Basic { username, password } => {
                    let raw = format!("{username}:{}", password.as_deref().unwrap_or(""));
                    format!("Basic {}", base64_encode(raw.as_bytes()))
                }
            };
            let mut value = HeaderValue::from_str(&value).map_err(|e| Error::InvalidHeader {
                name: "authorization".to_owned(),
                reason: e.to_string(),
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_millis(self.timeout_ms))
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .build()
            .map_err(Error::Build)?;
        Ok((client, base))
    }
}

/// Parses a base URL and makes sure it ends with `/`.
fn parse_base(url: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut base = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
        return Err(invalid("expected an http or https URL".to_owned()));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.set_query(None);
    base.set_fragment(None);
    Ok(base)
}

/// Joins an API path (without leading `/`) below a base URL.
pub(crate) fn join(base: &Url, path: &str) -> Url {
    // `base` always ends with '/', and `path` is a relative path of ours.
    base.join(path)
        .unwrap_or_else(|_| panic!("API path {path:?} must be a relative URL"))
}

/// Classifies a transport error from reqwest.
pub(crate) fn classify(url: &Url, error: reqwest::Error) -> Error {
    let url = url.to_string();
    let reason = chain(&error);
    if error.is_timeout() {
        Error::Timeout { url }
    } else if error.is_connect() {
        Error::Connect { url, reason }
    } else {
        Error::Request { url, reason }
    }
}

/// An error and its sources, separated by `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Installs rustls' `ring` provider as the process default, once. Another
/// provider installed first by the application is kept.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ];
        for (input, expected) in cases {
            assert_eq!(base64_encode(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn base_url_gets_a_trailing_slash_and_joins_below_prefix() {
        let base = parse_base("https://example.org/prometheus?x=1").unwrap();
        assert_eq!(base.as_str(), "https://example.org/prometheus/");
        assert_eq!(
            join(&base, "api/v1/query").as_str(),
            "https://example.org/prometheus/api/v1/query"
        );
    }

    #[test]
    fn bad_urls_and_headers_are_rejected() {
        assert!(matches!(
            parse_base("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_base("ftp://example.org"),
            Err(Error::InvalidUrl { .. })
        ));
        let config = HttpConfig::new("http://localhost:9090").with_header("bad header", "x");
        assert!(matches!(
            config.build(),
            Err(Error::InvalidHeader { name, .. }) if name == "bad header"
        ));
    }

    #[test]
    fn config_defaults_fill_missing_fields() {
        let config: HttpConfig = serde_json::from_str(r#"{"url": "http://p:9090"}"#).unwrap();
        assert_eq!(config.timeout_ms, 10_000);
        assert_eq!(config.auth, None);
        let with_basic: HttpConfig = serde_json::from_str(
            r#"{"url": "http://p:9090", "auth": {"type": "basic", "username": "u"}}"#,
        )
        .unwrap();
        assert_eq!(
            with_basic.auth,
            Some(Auth::Basic {
                username: "u".into(),
                password: None
            })
        );
    }
}
