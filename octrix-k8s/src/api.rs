//! Calling the API server: retries with backoff and typed errors.
//!
//! Every request goes through [`call`]: it retries conflicts (409), throttling
//! (429), server errors (5xx) and transport failures with exponential backoff
//! ([`backon`]), then turns what is left into an [`ApiError`] that names the
//! [`ApiOp`] and the target, which [`ApiError::into_cluster_error`] maps onto the
//! core's [`ClusterError`]: 404 is `NotFound`, 403 is `Forbidden` with the verb
//! and resource, other 4xx are `Rejected`, the rest `Unavailable`.
//!
//! Clients built by [`crate::client`] have kube's own retry layer switched off,
//! so this policy is the only one.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use octrix_core::cluster::ClusterError;

use crate::rbac::ApiOp;

/// How often and how fast failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// Longest delay between two retries.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retries: 5,
        }
    }
}

impl RetryConfig {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

/// A request that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API server refused or could not be reached, after retries.
    #[error("cannot {verb} {resource} {target}: {source}", verb = op.verb, resource = op.resource)]
    Request {
        /// What was attempted.
        op: ApiOp,
        /// The object, as `kind/namespace/name` or `kind/name`.
        target: String,
        /// kube's error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// The HTTP status of an API error response, if `error` is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Whether a failed request is worth sending again: conflicts, throttling,
/// server errors and transport failures.
pub fn is_retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..=599),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

impl ApiError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        let Self::Request { source, .. } = self;
        status_code(source)
    }

    /// The core's view of this failure.
    pub fn into_cluster_error(self, cluster: &str) -> ClusterError {
        let Self::Request { op, target, source } = self;
        match *source {
            kube::Error::Api(status) => match status.code {
                404 => ClusterError::NotFound { target },
                403 => ClusterError::Forbidden {
                    verb: op.verb.to_owned(),
                    resource: op.resource.to_owned(),
                    message: status.message,
                },
                400..=499 if status.code != 429 => ClusterError::Rejected {
                    target,
                    reason: status.message,
                },
                code => ClusterError::Unavailable {
                    cluster: cluster.to_owned(),
                    reason: format!(
                        "{} {} {target}: HTTP {code}: {}",
                        op.verb, op.resource, status.message
                    ),
                },
            },
            other => ClusterError::Unavailable {
                cluster: cluster.to_owned(),
                reason: format!("{} {} {target}: {other}", op.verb, op.resource),
            },
        }
    }
}

/// Sends a request built by `request` with retries, naming `op` and `target`
/// in the error.
///
/// # Errors
/// [`ApiError::Request`] with the last error once retries are exhausted or the
/// error is not retryable.
pub async fn call<T, F, Fut>(
    retry: &RetryConfig,
    op: ApiOp,
    target: &str,
    request: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    request
        .retry(retry.backoff())
        .when(is_retryable)
        .notify(|error, delay| {
            tracing::debug!(
                verb = op.verb,
                resource = op.resource,
                target,
                %error,
                ?delay,
                "retrying Kubernetes API request"
            );
        })
        .await
        .map_err(|source| ApiError::Request {
            op,
            target: target.to_owned(),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..kube::core::Status::failure(message, "")
        }))
    }

    fn fast() -> RetryConfig {
        RetryConfig {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retries: 3,
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_then_succeeds() {
        for code in [409, 429, 500, 503] {
            let attempts = AtomicUsize::new(0);
            let out = call(&fast(), rbac::DELETE_POD, "pod/a/b", || async {
                if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(api_error(code, "busy"))
                } else {
                    Ok(7)
                }
            })
            .await
            .expect("succeeds on the third attempt");
            assert_eq!(out, 7);
            assert_eq!(attempts.load(Ordering::SeqCst), 3, "code {code}");
        }
    }

    #[tokio::test]
    async fn gives_up_after_max_retries() {
        let attempts = AtomicUsize::new(0);
        let err = call(&fast(), rbac::PATCH_SCALE, "deployment/a/b", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(api_error(503, "unavailable"))
        })
        .await
        .expect_err("never succeeds");
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert_eq!(err.status_code(), Some(503));
        assert_eq!(
            err.into_cluster_error("test"),
            ClusterError::Unavailable {
                cluster: "test".into(),
                reason: "patch deployments/scale deployment/a/b: HTTP 503: unavailable".into()
            }
        );
    }

    #[tokio::test]
    async fn does_not_retry_client_errors() {
        for (code, want) in [
            (
                403,
                ClusterError::Forbidden {
                    verb: "delete".into(),
                    resource: "pods".into(),
                    message: "no RBAC".into(),
                },
            ),
            (
                404,
                ClusterError::NotFound {
                    target: "pod/a/b".into(),
                },
            ),
            (
                422,
                ClusterError::Rejected {
                    target: "pod/a/b".into(),
                    reason: "no RBAC".into(),
                },
            ),
        ] {
            let attempts = AtomicUsize::new(0);
            let err = call(&fast(), rbac::DELETE_POD, "pod/a/b", || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(api_error(code, "no RBAC"))
            })
            .await
            .expect_err("fails");
            assert_eq!(attempts.load(Ordering::SeqCst), 1, "code {code}");
            assert_eq!(err.into_cluster_error("test"), want);
        }
    }
}
