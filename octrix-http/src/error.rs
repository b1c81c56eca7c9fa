//! Every error the API answers, turned into a response in one place.
//!
//! Client mistakes are 4xx with a message and, where one is at fault, the
//! field (`alerts[0].startsAt`, `limit`, `rules[0].actions`); failures of the
//! server are 500 (or 503 for a dependency that is down) without internals:
//! the details go to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Role;

/// An error answered by the API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; `field` names the culprit.
    #[error("{field}: {message}")]
    BadRequest {
        /// The offending field (`.` for the whole body).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 401: no credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: valid credentials without the role the endpoint needs.
    #[error("this endpoint needs the {needed} role; the credentials have {have}")]
    Forbidden {
        /// The role needed.
        needed: Role,
        /// The role the caller has.
        have: Role,
    },
    /// 403: the caller's address is not allowed to call the webhook.
    #[error("address {0} is not allowed to deliver alerts")]
    AddressNotAllowed(String),
    /// 404: the thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than allowed.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 429: too many requests; retry after this many seconds.
    #[error("too many requests; retry after {retry_after_seconds} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// 501: the server is not set up for this (e.g. PromQL on the simulator).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a dependency (storage, a metric source) cannot serve now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a failure of the server; the message is logged, not answered.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::AddressNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::AddressNotAllowed(_) => "address_not_allowed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotImplemented(_) => "not_implemented",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Self::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        let field = match self {
            Self::BadRequest { field, .. } => Some(field.clone()),
            _ => None,
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                field,
            },
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `bad_request`, `unauthorized`,
    /// `forbidden`, `address_not_allowed`, `not_found`, `conflict`,
    /// `payload_too_large`, `rate_limited`, `not_implemented`, `unavailable`,
    /// `internal`.
    #[schema(example = "bad_request")]
    pub code: String,
    /// A message for people.
    #[schema(example = "alerts[0].startsAt: input contains invalid characters")]
    pub message: String,
    /// The offending field of a 400, e.g. `alerts[0].startsAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        match &self {
            Self::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"octrix\""),
                );
            }
            Self::RateLimited {
                retry_after_seconds,
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            _ => {}
        }
        response
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(error: crate::storage::StorageError) -> Self {
        tracing::error!(%error, "storage failed");
        Self::Unavailable("storage is unavailable".to_owned())
    }
}

impl From<octrix_core::incident::StoreError> for ApiError {
    fn from(error: octrix_core::incident::StoreError) -> Self {
        match error {
            octrix_core::incident::StoreError::InvalidQuery(message) => {
                Self::bad_request("limit", message)
            }
            other => {
                tracing::error!(error = %other, "incident store failed");
                Self::Unavailable("storage is unavailable".to_owned())
            }
        }
    }
}

impl From<octrix_core::incident::Error> for ApiError {
    fn from(error: octrix_core::incident::Error) -> Self {
        use octrix_core::incident::Error as E;
        match error {
            E::UnknownIncident(id) => Self::not_found(format!("incident {id}")),
            E::MissingActor => Self::bad_request("actor", "an actor is required"),
            E::MissingAssignee => Self::bad_request("assignee", "an assignee is required"),
            E::InvalidConfig { field, requirement } => Self::bad_request(field, requirement),
            conflict @ (E::IllegalTransition { .. } | E::Superseded { .. } | E::NotActive(_)) => {
                Self::Conflict(conflict.to_string())
            }
        }
    }
}

impl From<octrix_core::engine::Error> for ApiError {
    fn from(error: octrix_core::engine::Error) -> Self {
        use octrix_core::engine::Error as E;
        match error {
            E::Incident(e) => e.into(),
            E::Config(message) => Self::bad_request("config", message),
            E::Store(message) => {
                tracing::error!(error = %message, "incident store failed");
                Self::Unavailable("storage is unavailable".to_owned())
            }
            E::ChaosUnavailable => Self::NotImplemented(error.to_string()),
            E::Refused(reason) => Self::Conflict(reason),
            E::UnknownWorkload(what) => Self::NotFound(what),
            E::Cluster(message) => {
                tracing::error!(error = %message, "cluster failed");
                Self::Unavailable(format!("cluster: {message}"))
            }
            E::Chaos(chaos) => {
                use octrix_core::chaos::Error as C;
                match chaos {
                    C::Invalid { field, reason } => Self::bad_request(field, reason),
                    C::Parse(message) => Self::bad_request(".", message),
                    C::UnknownScenario(_) => Self::NotFound(chaos.to_string()),
                    other => Self::Conflict(other.to_string()),
                }
            }
        }
    }
}

impl From<octrix_core::healing::Error> for ApiError {
    fn from(error: octrix_core::healing::Error) -> Self {
        use octrix_core::healing::Error as E;
        match error {
            E::InvalidField { field, reason } => Self::bad_request(field, reason),
            E::Parse(message) => Self::bad_request(".", message),
        }
    }
}

impl From<octrix_core::metrics::SourceError> for ApiError {
    fn from(error: octrix_core::metrics::SourceError) -> Self {
        use octrix_core::metrics::SourceError as E;
        match error {
            E::Unavailable { .. } => Self::Unavailable(error.to_string()),
            E::Rejected { reason, .. } => Self::bad_request("query", reason),
            E::NotFound { .. } => Self::NotFound(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_message() {
        let error = ApiError::Internal("connection string postgres://u:secret@db".into());
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&error.body()).unwrap();
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("internal server error"), "{body}");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let body = ApiError::bad_request("alerts[0].startsAt", "invalid").body();
        assert_eq!(body.error.field.as_deref(), Some("alerts[0].startsAt"));
        assert_eq!(body.error.code, "bad_request");
        assert_eq!(body.error.message, "alerts[0].startsAt: invalid");
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_seconds: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
