//! Connecting to a cluster through a kubeconfig or the in-cluster service account.

use std::path::Path;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("cannot read kubeconfig {path}: {source}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        /// kube's error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig has no usable context, cluster or user.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("no cluster configuration found: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The HTTP client could not be built (TLS, proxy).
    #[error("cannot build a client for {cluster}: {source}")]
    Build {
        /// The cluster URL.
        cluster: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// A client and the name the cluster is reported under.
#[derive(Clone)]
pub struct Connection {
    /// The kube client.
    pub client: Client,
    /// The kube context name, or the server URL when there is none.
    pub cluster_name: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("cluster_name", &self.cluster_name)
            .finish_non_exhaustive()
    }
}

/// Builds a client from `config` with kube's own retry layer switched off:
/// [`crate::api::call`] retries (409, 429 and 5xx with backoff) instead, so a
/// request is never retried by two layers.
///
/// # Errors
/// [`ClientError::Build`] when TLS or the connector cannot be set up.
pub fn client_from_config(mut config: Config) -> Result<Client, ClientError> {
    config.default_retry = false;
    let cluster = config.cluster_url.to_string();
    Client::try_from(config).map_err(|source| ClientError::Build { cluster, source })
}

/// Connects through the kubeconfig at `path` (or, without one, as kubectl
/// would: `$KUBECONFIG`, `~/.kube/config`, then the in-cluster service
/// account), using `context` or the current context.
///
/// # Errors
/// A [`ClientError`] when the configuration cannot be read or used.
pub async fn connect(
    path: Option<&Path>,
    context: Option<&str>,
) -> Result<Connection, ClientError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let (config, name) = match path {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            let name = context
                .map(str::to_owned)
                .or_else(|| kubeconfig.current_context.clone());
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(ClientError::Kubeconfig)?;
            (config, name)
        }
        None if context.is_some() => {
            let config = Config::from_kubeconfig(&options)
                .await
                .map_err(ClientError::Kubeconfig)?;
            (config, context.map(str::to_owned))
        }
        None => (Config::infer().await.map_err(ClientError::Infer)?, None),
    };
    let cluster_name = name.unwrap_or_else(|| config.cluster_url.to_string());
    Ok(Connection {
        client: client_from_config(config)?,
        cluster_name,
    })
}
