//! The server's configuration: a TOML or YAML file, then the environment.
//!
//! | setting | file key | environment | default |
//! |---|---|---|---|
//! | listen port | `port` | `PORT` | 3001 |
//! | listen address | `host` | `HOST` | 127.0.0.1 |
//! | Prometheus | `prometheus_url` | `PROMETHEUS_URL` | none: the simulated cluster |
//! | engine interval (ms) | `scrape_interval_ms` | `PROMETHEUS_SCRAPE_INTERVAL` | 15000 |
//! | kubeconfig | `kubeconfig_path` | `KUBECONFIG_PATH` | none |
//! | Kubernetes | `[kubernetes]` section (octrix-k8s's `K8sConfig`) | `KUBECONFIG_PATH` turns it on | off: the simulated cluster, or no cluster with Prometheus |
//! | database | `database_url` | `DATABASE_URL` | `sqlite://<data_dir>/octrix.db` |
//! | data directory | `data_dir` | `OCTRIX_DATA_DIR` | `./octrix-data` |
//! | JWT secret | `jwt_secret` | `JWT_SECRET` | none |
//! | CORS origins (comma-separated) | `cors_origins` | `CORS_ORIGIN` | `http://localhost:3000` |
//! | tokens | `tokens` (`name`, `role`, `sha256` or `token`) | `OCTRIX_ADMIN_TOKEN`, `OCTRIX_OPERATOR_TOKEN`, `OCTRIX_VIEWER_TOKEN` | an admin token generated at first start |
//! | webhook token | `webhook_token_sha256` / `webhook_token` | `OCTRIX_WEBHOOK_TOKEN` | none (operators and admins may deliver) |
//! | webhook allowlist | `webhook_allowlist` | `OCTRIX_WEBHOOK_ALLOWLIST` | any address |
//! | webhook rate | `webhook_rate_per_second`, `webhook_burst` | `OCTRIX_WEBHOOK_RATE`, `OCTRIX_WEBHOOK_BURST` | 200, 400 |
//! | body limit | `max_body_bytes` | `OCTRIX_MAX_BODY_BYTES` | 1048576 |
//! | public `/metrics` | `public_metrics` | `OCTRIX_PUBLIC_METRICS` | true |
//! | simulator seed | `sim_seed` | `OCTRIX_SIM_SEED` | 42 |
//! | retention (days) | `retention_days` | `OCTRIX_RETENTION_DAYS` | 90 |
//! | replica id (PostgreSQL leadership) | `replica_id` | `OCTRIX_REPLICA_ID` | `$HOSTNAME` (or `octrix`) |
//! | URL other replicas forward writes to | `advertise_url` | `OCTRIX_ADVERTISE_URL` | `http://<host>:<port>` |
//! | leader lease (s) | `lease_seconds` | `OCTRIX_LEASE_SECONDS` | 15 |
//! | lease renewal (s) | `lease_renew_seconds` | `OCTRIX_LEASE_RENEW_SECONDS` | 5 |
//! | follower refresh (ms) | `follower_refresh_ms` | `OCTRIX_FOLLOWER_REFRESH_MS` | 2000 |
//!
//! On PostgreSQL several replicas may share the database: they elect a
//! leader through a lease row (see `octrix_http::leadership`); SQLite is
//! single-replica and has no lease.
//!
//! Secrets (tokens, JWT secret, database URL with a password) never appear
//! in `Debug` output or logs: [`ServerConfig::summary`] redacts them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use octrix_k8s::K8sConfig;

use crate::auth::{AuthConfig, IpNet, Role, TokenHash};

/// A token given in the configuration file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (the actor shown on timelines).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its SHA-256, 64 hexadecimal digits (preferred: the file then holds
    /// no secret).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The token itself (hashed at load time).
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The server's configuration.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Prometheus URL; the simulated cluster when absent.
    pub prometheus_url: Option<String>,
    /// Engine interval, milliseconds.
    pub scrape_interval_ms: u64,
    /// Kubeconfig path; setting it turns the Kubernetes adapter on.
    pub kubeconfig_path: Option<PathBuf>,
    /// The Kubernetes adapter's settings (namespace, selectors, dry run,
    /// leader election); the adapter is on when the section is present or
    /// `kubeconfig_path` is set. Without a kubeconfig it uses `$KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster service account.
    pub kubernetes: Option<K8sConfig>,
    /// Database URL (`sqlite://...` or `postgres://...`).
    pub database_url: Option<String>,
    /// Where the database and the generated token live by default.
    pub data_dir: PathBuf,
    /// HS256 secret for JWTs.
    pub jwt_secret: Option<String>,
    /// Allowed CORS origins; `*` for any.
    pub cors_origins: Vec<String>,
    /// Static tokens.
    pub tokens: Vec<TokenConfig>,
    /// The webhook's token.
    pub webhook_token: Option<String>,
    /// The webhook token's SHA-256.
    pub webhook_token_sha256: Option<String>,
    /// Networks allowed to deliver alerts (empty: any).
    pub webhook_allowlist: Vec<String>,
    /// Deliveries per second and address.
    pub webhook_rate_per_second: u32,
    /// Burst of deliveries above the rate.
    pub webhook_burst: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Serve `/metrics` without credentials.
    pub public_metrics: bool,
    /// Seed of the simulated cluster.
    pub sim_seed: u64,
    /// Days resolved incidents, runs and action records are kept.
    pub retention_days: u32,
    /// This replica's name in the leader lease (a per-process suffix is
    /// added, so that a restarted replica starts a new term).
    pub replica_id: Option<String>,
    /// Where other replicas reach this one's API to forward writes to it
    /// when it leads (in Kubernetes: from the pod IP).
    pub advertise_url: Option<String>,
    /// How long a leader's lease lasts without renewal, seconds.
    pub lease_seconds: u64,
    /// How often the leader renews its lease (and followers try to take
    /// it), seconds; at most a third of `lease_seconds`.
    pub lease_renew_seconds: u64,
    /// How often a follower reloads the engine's state from storage, ms.
    pub follower_refresh_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 3001,
            prometheus_url: None,
            scrape_interval_ms: 15_000,
            kubeconfig_path: None,
            kubernetes: None,
            database_url: None,
            data_dir: PathBuf::from("octrix-data"),
            jwt_secret: None,
            cors_origins: vec!["http://localhost:3000".to_owned()],
            tokens: Vec::new(),
            webhook_token: None,
            webhook_token_sha256: None,
            webhook_allowlist: Vec::new(),
            webhook_rate_per_second: 200,
            webhook_burst: 400,
            max_body_bytes: crate::state::DEFAULT_BODY_LIMIT,
            public_metrics: true,
            sim_seed: 42,
            retention_days: 90,
            replica_id: None,
            advertise_url: None,
            lease_seconds: 15,
            lease_renew_seconds: 5,
            follower_refresh_ms: 2000,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Why the configuration is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {field}: {message}")]
pub struct ConfigError {
    /// The setting (file key or environment variable).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Reads environment variables; a function so tests need not touch the
/// process environment.
pub trait Env {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn parse_env<T: std::str::FromStr>(env: &dyn Env, name: &str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env.var(name)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|e: T::Err| invalid(name, format!("{v:?}: {e}")))
        })
        .transpose()
}

impl ServerConfig {
    /// Reads a TOML (`.toml`) or YAML (anything else) file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(&path.display().to_string(), e.to_string()))?;
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        if is_toml {
            toml::from_str(&text).map_err(|e| invalid(&path.display().to_string(), e.to_string()))
        } else {
            serde_norway::from_str(&text)
                .map_err(|e| invalid(&path.display().to_string(), e.to_string()))
        }
    }

    /// Overrides settings with the environment's.
    pub fn apply_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(host) = env.var("HOST") {
            self.host = host;
        }
        if let Some(port) = parse_env(env, "PORT")? {
            self.port = port;
        }
        if let Some(url) = env.var("PROMETHEUS_URL") {
            self.prometheus_url = Some(url);
        }
        if let Some(ms) = parse_env(env, "PROMETHEUS_SCRAPE_INTERVAL")? {
            self.scrape_interval_ms = ms;
        }
        if let Some(path) = env.var("KUBECONFIG_PATH") {
            self.kubeconfig_path = Some(PathBuf::from(path));
        }
        if let Some(url) = env.var("DATABASE_URL") {
            self.database_url = Some(url);
        }
        if let Some(dir) = env.var("OCTRIX_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(secret) = env.var("JWT_SECRET") {
            self.jwt_secret = Some(secret);
        }
        if let Some(origins) = env.var("CORS_ORIGIN") {
            self.cors_origins = origins
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        for (variable, role) in [
            ("OCTRIX_ADMIN_TOKEN", Role::Admin),
            ("OCTRIX_OPERATOR_TOKEN", Role::Operator),
            ("OCTRIX_VIEWER_TOKEN", Role::Viewer),
        ] {
            if let Some(token) = env.var(variable) {
                self.tokens.push(TokenConfig {
                    name: role.as_str().to_owned(),
                    role,
                    sha256: None,
                    token: Some(token),
                });
            }
        }
        if let Some(token) = env.var("OCTRIX_WEBHOOK_TOKEN") {
            self.webhook_token = Some(token);
        }
        if let Some(list) = env.var("OCTRIX_WEBHOOK_ALLOWLIST") {
            self.webhook_allowlist = list.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if let Some(rate) = parse_env(env, "OCTRIX_WEBHOOK_RATE")? {
            self.webhook_rate_per_second = rate;
        }
        if let Some(burst) = parse_env(env, "OCTRIX_WEBHOOK_BURST")? {
            self.webhook_burst = burst;
        }
        if let Some(bytes) = parse_env(env, "OCTRIX_MAX_BODY_BYTES")? {
            self.max_body_bytes = bytes;
        }
        if let Some(public) = parse_env(env, "OCTRIX_PUBLIC_METRICS")? {
            self.public_metrics = public;
        }
        if let Some(seed) = parse_env(env, "OCTRIX_SIM_SEED")? {
            self.sim_seed = seed;
        }
        if let Some(days) = parse_env(env, "OCTRIX_RETENTION_DAYS")? {
            self.retention_days = days;
        }
        if let Some(id) = env.var("OCTRIX_REPLICA_ID") {
            self.replica_id = Some(id);
        }
        if let Some(url) = env.var("OCTRIX_ADVERTISE_URL") {
            self.advertise_url = Some(url);
        }
        if let Some(seconds) = parse_env(env, "OCTRIX_LEASE_SECONDS")? {
            self.lease_seconds = seconds;
        }
        if let Some(seconds) = parse_env(env, "OCTRIX_LEASE_RENEW_SECONDS")? {
            self.lease_renew_seconds = seconds;
        }
        if let Some(ms) = parse_env(env, "OCTRIX_FOLLOWER_REFRESH_MS")? {
            self.follower_refresh_ms = ms;
        }
        Ok(())
    }

    /// The file (if any), then the environment, validated.
    pub fn load(file: Option<&Path>, env: &dyn Env) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// The Kubernetes adapter's settings when it is on: the `[kubernetes]`
    /// section, with `kubeconfig_path` (or `KUBECONFIG_PATH`) as its
    /// kubeconfig when set.
    pub fn kubernetes(&self) -> Option<K8sConfig> {
        if self.kubernetes.is_none() && self.kubeconfig_path.is_none() {
            return None;
        }
        let mut config = self.kubernetes.clone().unwrap_or_default();
        if let Some(path) = &self.kubeconfig_path {
            config.kubeconfig = Some(path.clone());
        }
        Some(config)
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.scrape_interval_ms < 100 {
            return Err(invalid(
                "PROMETHEUS_SCRAPE_INTERVAL",
                "must be at least 100 ms",
            ));
        }
        if let Some(url) = &self.prometheus_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "PROMETHEUS_URL",
                "must be an http:// or https:// URL",
            ));
        }
        if let Some(url) = &self.database_url {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(invalid(
                    "DATABASE_URL",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 16
        {
            return Err(invalid("JWT_SECRET", "must be at least 16 bytes"));
        }
        for (i, token) in self.tokens.iter().enumerate() {
            match (&token.sha256, &token.token) {
                (Some(hash), None) => {
                    TokenHash::from_hex(hash)
                        .map_err(|e| invalid(&format!("tokens[{i}].sha256"), e))?;
                }
                (None, Some(t)) if t.len() >= 16 => {}
                (None, Some(_)) => {
                    return Err(invalid(
                        &format!("tokens[{i}].token"),
                        "must be at least 16 characters",
                    ));
                }
                _ => {
                    return Err(invalid(
                        &format!("tokens[{i}]"),
                        "set exactly one of sha256 and token",
                    ));
                }
            }
        }
        if let Some(hash) = &self.webhook_token_sha256 {
            TokenHash::from_hex(hash).map_err(|e| invalid("webhook_token_sha256", e))?;
        }
        for (i, net) in self.webhook_allowlist.iter().enumerate() {
            net.parse::<IpNet>()
                .map_err(|e| invalid(&format!("webhook_allowlist[{i}]"), e))?;
        }
        if self.webhook_rate_per_second == 0 {
            return Err(invalid("webhook_rate_per_second", "must be at least 1"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.retention_days == 0 {
            return Err(invalid("retention_days", "must be at least 1"));
        }
        if self.lease_renew_seconds == 0 {
            return Err(invalid("lease_renew_seconds", "must be at least 1"));
        }
        // Two renewals may fail before the lease lapses.
        if self.lease_seconds < 3 * self.lease_renew_seconds {
            return Err(invalid(
                "lease_seconds",
                "must be at least three times lease_renew_seconds",
            ));
        }
        if self.follower_refresh_ms < 100 {
            return Err(invalid("follower_refresh_ms", "must be at least 100"));
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "advertise_url",
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("octrix.db").display()))
    }

    /// The authentication configuration; `generated` is an admin token to
    /// accept as well (the one generated at first start).
    pub fn auth(&self, generated: Option<&str>) -> Result<AuthConfig, ConfigError> {
        let mut builder = AuthConfig::builder().public_metrics(self.public_metrics);
        for (i, token) in self.tokens.iter().enumerate() {
            let hash = match (&token.sha256, &token.token) {
                (Some(hash), _) => TokenHash::from_hex(hash)
                    .map_err(|e| invalid(&format!("tokens[{i}].sha256"), e))?,
                (None, Some(token)) => TokenHash::of(token),
                (None, None) => return Err(invalid(&format!("tokens[{i}]"), "has no token")),
            };
            builder = builder.token_hash(token.name.clone(), token.role, hash);
        }
        if let Some(token) = generated {
            builder = builder.token("admin", Role::Admin, token);
        }
        if let Some(token) = &self.webhook_token {
            builder = builder.webhook_token(token);
        }
        if let Some(hash) = &self.webhook_token_sha256 {
            builder = builder.webhook_token_hash(
                TokenHash::from_hex(hash).map_err(|e| invalid("webhook_token_sha256", e))?,
            );
        }
        if let Some(secret) = &self.jwt_secret {
            builder = builder.jwt_secret(secret.as_bytes());
        }
        let allowlist = self
            .webhook_allowlist
            .iter()
            .enumerate()
            .map(|(i, n)| {
                n.parse()
                    .map_err(|e: String| invalid(&format!("webhook_allowlist[{i}]"), e))
            })
            .collect::<Result<Vec<IpNet>, _>>()?;
        Ok(builder.webhook_allowlist(allowlist).build())
    }

    /// A one-line description with every secret redacted.
    pub fn summary(&self) -> String {
        format!(
            "listen={}:{} prometheus={} interval={}ms kubernetes={} database={} data_dir={} jwt={} tokens={} webhook_token={} webhook_allowlist={:?} cors={:?} retention_days={}",
            self.host,
            self.port,
            self.prometheus_url
                .as_deref()
                .unwrap_or(if self.kubernetes().is_some() {
                    "(none)"
                } else {
                    "(simulated cluster)"
                }),
            self.scrape_interval_ms,
            self.kubernetes()
                .map_or_else(|| "off".to_owned(), |k| kubernetes_summary(&k)),
            redact_url(&self.database_url()),
            self.data_dir.display(),
            if self.jwt_secret.is_some() {
                "on"
            } else {
                "off"
            },
            self.tokens.len(),
            if self.webhook_token.is_some() || self.webhook_token_sha256.is_some() {
                "set"
            } else {
                "none"
            },
            self.webhook_allowlist,
            self.cors_origins,
            self.retention_days,
        )
    }
}

/// A URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The Kubernetes settings in one phrase.
fn kubernetes_summary(config: &K8sConfig) -> String {
    let kubeconfig = config.kubeconfig.as_ref().map_or_else(
        || "default kubeconfig or in-cluster".to_owned(),
        |p| p.display().to_string(),
    );
    format!(
        "({kubeconfig}, namespace {}, dry_run {}, leader_election {})",
        config.namespace.as_deref().unwrap_or("all"),
        config.dry_run,
        config.leader_election.enabled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn kubernetes_is_on_with_a_section_or_a_kubeconfig_path() {
        assert_eq!(ServerConfig::default().kubernetes(), None);
        assert!(ServerConfig::default().summary().contains("kubernetes=off"));

        let mut config = ServerConfig::default();
        config
            .apply_env(&env(&[("KUBECONFIG_PATH", "/etc/kube/config")]))
            .expect("env");
        let k8s = config.kubernetes().expect("on");
        assert_eq!(k8s.kubeconfig, Some(PathBuf::from("/etc/kube/config")));
        assert!(
            config
                .summary()
                .contains("kubernetes=(/etc/kube/config, namespace all")
        );
        assert!(config.summary().contains("prometheus=(none)"));

        let config: ServerConfig =
            toml::from_str("[kubernetes]\nnamespace = \"shop\"\ndry_run = true\n").expect("toml");
        let k8s = config.kubernetes().expect("on");
        assert_eq!(
            (k8s.namespace.as_deref(), k8s.dry_run, k8s.kubeconfig),
            (Some("shop"), true, None)
        );

        let error = toml::from_str::<ServerConfig>("[kubernetes]\nnamespaces = \"shop\"\n")
            .expect_err("unknown key");
        assert!(error.to_string().contains("namespaces"), "{error}");
    }

    /// The ConfigMap of `docs/deploy/` is a configuration `octrix serve` accepts.
    #[test]
    fn the_deployed_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/configmap.yaml");
        let manifest: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).expect("configmap"))
                .expect("yaml");
        let file = manifest["data"]["octrix.toml"]
            .as_str()
            .expect("octrix.toml");
        let config: ServerConfig = toml::from_str(file).expect("a valid server configuration");
        config.validate().expect("valid");
        let k8s = config.kubernetes().expect("the Kubernetes adapter is on");
        // The PostgreSQL lease elects the leader of the two replicas; a
        // Kubernetes Lease election could pick the other one.
        assert!(!k8s.leader_election.enabled);
        assert_eq!(config.lease_seconds, 15);
        assert_eq!(
            config.host, "0.0.0.0",
            "probes and the Service reach the pod"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn defaults_run_on_the_simulator_on_port_3001() {
        let config = ServerConfig::load(None, &env(&[])).unwrap();
        assert_eq!(config.port, 3001);
        assert_eq!(config.prometheus_url, None);
        assert_eq!(config.scrape_interval_ms, 15_000);
        assert_eq!(config.database_url(), "sqlite://octrix-data/octrix.db");
    }

    #[test]
    fn the_environment_overrides_and_is_validated() {
        let config = ServerConfig::load(
            None,
            &env(&[
                ("PORT", "8080"),
                ("PROMETHEUS_URL", "http://127.0.0.1:19090"),
                ("PROMETHEUS_SCRAPE_INTERVAL", "5000"),
                ("CORS_ORIGIN", "https://a.example, https://b.example"),
                ("OCTRIX_OPERATOR_TOKEN", "an-operator-token-long-enough"),
            ]),
        )
        .unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.scrape_interval_ms, 5000);
        assert_eq!(config.cors_origins.len(), 2);
        assert_eq!(config.tokens[0].role, Role::Operator);
        let auth = config.auth(None).unwrap();
        assert_eq!(
            auth.identify("an-operator-token-long-enough").unwrap().role,
            Role::Operator
        );

        let error = ServerConfig::load(None, &env(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(error.field, "PORT");
        let error = ServerConfig::load(None, &env(&[("JWT_SECRET", "short")])).unwrap_err();
        assert_eq!(error.field, "JWT_SECRET");
        let error = ServerConfig::load(None, &env(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(error.field, "DATABASE_URL");
    }

    #[test]
    fn secrets_stay_out_of_the_summary() {
        let config = ServerConfig::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://octrix:hunter2@db:5432/octrix"),
                ("JWT_SECRET", "a-jwt-secret-of-some-length"),
                ("OCTRIX_ADMIN_TOKEN", "an-admin-token-long-enough"),
            ]),
        )
        .unwrap();
        let summary = format!("{config:?}");
        for secret in [
            "hunter2",
            "a-jwt-secret-of-some-length",
            "an-admin-token-long-enough",
        ] {
            assert!(!summary.contains(secret), "{summary}");
        }
        assert!(
            summary.contains("postgres://octrix:***@db:5432/octrix"),
            "{summary}"
        );
    }

    #[test]
    fn files_in_toml_and_yaml() {
        let dir = std::env::temp_dir().join(format!("octrix-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("octrix.toml");
        std::fs::write(
            &toml_path,
            "port = 4000\n[[tokens]]\nname = \"ci\"\nrole = \"viewer\"\nsha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(Some(&toml_path), &env(&[])).unwrap();
        assert_eq!(config.port, 4000);
        let auth = config.auth(None).unwrap();
        assert_eq!(auth.identify("abc").unwrap().name, "ci");

        let yaml_path = dir.join("octrix.yaml");
        std::fs::write(
            &yaml_path,
            "port: 4001\nwebhook_allowlist: [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(
            ServerConfig::load(Some(&yaml_path), &env(&[]))
                .unwrap()
                .port,
            4001
        );

        std::fs::write(&yaml_path, "webhook_allowlist: [\"ten\"]\n").unwrap();
        let error = ServerConfig::load(Some(&yaml_path), &env(&[])).unwrap_err();
        assert_eq!(error.field, "webhook_allowlist[0]");
        std::fs::write(&yaml_path, "prot: 1\n").unwrap();
        assert!(ServerConfig::load(Some(&yaml_path), &env(&[])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
