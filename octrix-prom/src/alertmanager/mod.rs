//! Alertmanager: the webhook payload Octrix receives, and a client for the
//! API v2 that Octrix uses to post alerts and to silence the alerts its own
//! chaos runs and remediations are expected to cause.
//!
//! ```no_run
//! use octrix_core::Timestamp;
//! use octrix_prom::alertmanager::{AlertmanagerClient, Matcher, Silence};
//!
//! # async fn demo() -> Result<(), octrix_prom::alertmanager::Error> {
//! let am = AlertmanagerClient::from_url("http://localhost:9093")?;
//! let now = Timestamp::now();
//! let id = am
//!     .create_silence(&Silence {
//!         matchers: vec![Matcher::equal("service", "checkout")],
//!         starts_at: now,
//!         ends_at: now + std::time::Duration::from_secs(300),
//!         created_by: "octrix".into(),
//!         comment: "chaos run: pod-failure on checkout".into(),
//!     })
//!     .await?;
//! am.expire_silence(&id).await?;
//! # Ok(()) }
//! ```

mod api;
mod webhook;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Method, StatusCode, Url};
use serde::de::DeserializeOwned;

pub use api::{
    AlertFilter, AlertmanagerAlertState, AlertmanagerAlertStatus, AlertmanagerStatus,
    ClusterStatus, ConfigStatus, GettableAlert, GettableSilence, Matcher, Peer, PostableAlert,
    Receiver, Silence, SilenceState, SilenceStatus, VersionInfo,
};
pub use webhook::{Error as WebhookError, WebhookAlert, WebhookPayload};

use crate::http::{self, HttpConfig};

/// Why an Alertmanager API call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: the connection failed or timed out, or the client could
    /// not be built.
    #[error(transparent)]
    Transport(#[from] http::Error),
    /// Alertmanager refused the request; `message` is what it said.
    #[error("Alertmanager answered HTTP {status} to {endpoint}: {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The API path.
        endpoint: String,
        /// Alertmanager's message.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("cannot decode Alertmanager's answer from {endpoint}: {source}")]
    Decode {
        /// The API path.
        endpoint: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be encoded.
    #[error("cannot encode the request to {endpoint}: {source}")]
    Encode {
        /// The API path.
        endpoint: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// A client for one Alertmanager's API v2. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    http: Client,
    base: Url,
}

impl AlertmanagerClient {
    /// A client with these settings.
    pub fn new(config: &HttpConfig) -> Result<Self, Error> {
        let (http, base) = config.build()?;
        Ok(Self { http, base })
    }

    /// A client for `url` with default settings.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::new(&HttpConfig::new(url))
    }

    /// The base URL, ending with `/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Alerts known to Alertmanager, filtered.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<GettableAlert>, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        for (name, value) in [
            ("active", filter.active),
            ("silenced", filter.silenced),
            ("inhibited", filter.inhibited),
            ("unprocessed", filter.unprocessed),
        ] {
            if let Some(value) = value {
                params.push((name, value.to_string()));
            }
        }
        params.extend(filter.matchers.iter().map(|m| ("filter", m.clone())));
        if let Some(receiver) = &filter.receiver {
            params.push(("receiver", receiver.clone()));
        }
        let url = http::join(&self.base, "api/v2/alerts");
        let body = self.send(Method::GET, url.clone(), &params, None).await?;
        decode(&url, &body)
    }

    /// Posts alerts, as Prometheus does; a past `ends_at` resolves one.
    pub async fn post_alerts(&self, alerts: &[PostableAlert]) -> Result<(), Error> {
        let url = http::join(&self.base, "api/v2/alerts");
        let body = encode(&url, alerts)?;
        self.send(Method::POST, url, &[], Some(body)).await?;
        Ok(())
    }

    /// Creates a silence and returns its ID.
    pub async fn create_silence(&self, silence: &Silence) -> Result<String, Error> {
        let url = http::join(&self.base, "api/v2/silences");
        let body = encode(&url, silence)?;
        let answer = self
            .send(Method::POST, url.clone(), &[], Some(body))
            .await?;
        let created: api::SilenceCreated = decode(&url, &answer)?;
        Ok(created.silence_id)
    }

    /// The silence with this ID.
    pub async fn silence(&self, id: &str) -> Result<GettableSilence, Error> {
        let url = self.silence_url(id);
        let body = self.send(Method::GET, url.clone(), &[], None).await?;
        decode(&url, &body)
    }

    /// Every silence, expired ones included, optionally filtered by label
    /// matchers in Alertmanager's syntax.
    pub async fn silences(&self, matchers: &[&str]) -> Result<Vec<GettableSilence>, Error> {
        let url = http::join(&self.base, "api/v2/silences");
        let params: Vec<(&str, String)> = matchers
            .iter()
            .map(|m| ("filter", (*m).to_owned()))
            .collect();
        let body = self.send(Method::GET, url.clone(), &params, None).await?;
        decode(&url, &body)
    }

    /// Expires a silence now.
    pub async fn expire_silence(&self, id: &str) -> Result<(), Error> {
        self.send(Method::DELETE, self.silence_url(id), &[], None)
            .await?;
        Ok(())
    }

    /// Alertmanager's status: version, cluster, configuration.
    pub async fn status(&self) -> Result<AlertmanagerStatus, Error> {
        let url = http::join(&self.base, "api/v2/status");
        let body = self.send(Method::GET, url.clone(), &[], None).await?;
        decode(&url, &body)
    }

    /// Whether Alertmanager is ready (`/-/ready` answers 200).
    pub async fn ready(&self) -> Result<bool, Error> {
        let url = http::join(&self.base, "-/ready");
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| http::classify(&url, e))?;
        Ok(response.status() == StatusCode::OK)
    }

    fn silence_url(&self, id: &str) -> Url {
        let mut url = http::join(&self.base, "api/v2/silence/");
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(id);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        params: &[(&str, String)],
        json: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Error> {
        let mut request = self.http.request(method, url.clone());
        if !params.is_empty() {
            request = request.query(params);
        }
        if let Some(json) = json {
            request = request.header(CONTENT_TYPE, "application/json").body(json);
        }
        let response = request.send().await.map_err(|e| http::classify(&url, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::classify(&url, e))?;
        if !status.is_success() {
            return Err(Error::Api {
                status: status.as_u16(),
                endpoint: url.path().to_owned(),
                message: api_message(&body),
            });
        }
        Ok(body.to_vec())
    }
}

/// Alertmanager's error bodies are a JSON string, a JSON object with a
/// `message`, or plain text.
fn api_message(body: &[u8]) -> String {
    if let Ok(text) = serde_json::from_slice::<String>(body) {
        return text;
    }
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body)
        && let Some(serde_json::Value::String(message)) = object.get("message")
    {
        return message.clone();
    }
    let end = body.len().min(512);
    String::from_utf8_lossy(&body[..end]).trim().to_owned()
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        endpoint: url.path().to_owned(),
        source,
    })
}

fn encode<T: serde::Serialize + ?Sized>(url: &Url, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|source| Error::Encode {
        endpoint: url.path().to_owned(),
        source,
    })
}

/// Alertmanager mutes the alerts Octrix's own chaos runs and remediations
/// are expected to cause: each request becomes a silence with equality
/// matchers, created by `octrix`.
#[async_trait::async_trait]
impl octrix_core::engine::Silencer for AlertmanagerClient {
    async fn silence(
        &self,
        request: &octrix_core::engine::SilenceRequest,
    ) -> Result<String, octrix_core::engine::PortError> {
        let silence = Silence {
            matchers: request
                .matchers
                .iter()
                .map(|(name, value)| Matcher::equal(name, value))
                .collect(),
            starts_at: request.starts_at,
            ends_at: request.ends_at,
            created_by: "octrix".to_owned(),
            comment: request.comment.clone(),
        };
        self.create_silence(&silence).await.map_err(silencer_error)
    }

    async fn expire(&self, id: &str) -> Result<(), octrix_core::engine::PortError> {
        self.expire_silence(id).await.map_err(silencer_error)
    }
}

fn silencer_error(error: Error) -> octrix_core::engine::PortError {
    octrix_core::engine::PortError {
        port: "alertmanager silencer".to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_extracted() {
        assert_eq!(api_message(br#""silence not found""#), "silence not found");
        assert_eq!(
            api_message(br#"{"code":422,"message":"start time must be before end time"}"#),
            "start time must be before end time"
        );
        assert_eq!(api_message(b"not found\n"), "not found");
    }

    #[test]
    fn silence_urls_escape_the_id() {
        let client = AlertmanagerClient::from_url("http://am:9093/prefix").unwrap();
        assert_eq!(
            client.silence_url("a/b").as_str(),
            "http://am:9093/prefix/api/v2/silence/a%2Fb"
        );
    }
}
