//! Who may call what: bearer tokens with roles, optional JWT, the webhook's
//! own token and address allowlist.
//!
//! * Roles are ordered: **viewer** reads; **operator** also acknowledges and
//!   resolves incidents, starts and stops chaos runs and load tests, deploys
//!   routes, switches healing's dry run, resets circuit breakers and scales;
//!   **admin** also changes rules and configuration (healing rules, traffic
//!   rules, scenarios, services, the load-balancing algorithm).
//! * Static tokens are kept only as SHA-256 hashes and compared in constant
//!   time; the plain token is never stored nor logged.
//! * With a `JWT_SECRET`, HS256 tokens carrying `sub`, `role` and `exp` are
//!   accepted as well.
//! * The Alertmanager webhook takes its own token (or an operator's or
//!   admin's), and can be limited to an address allowlist.
//! * No credentials, or credentials that are not valid: **401** with
//!   `WWW-Authenticate: Bearer`. Valid credentials without the role: **403**.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::ApiError;

/// What a caller may do; each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Acts: acknowledges, resolves, starts and stops runs, deploys routes.
    Operator,
    /// Changes rules and configuration.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, operator or admin"
            )),
        }
    }
}

/// A SHA-256 digest of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even the hash is not printed in full.
        write!(f, "TokenHash({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

impl TokenHash {
    /// The hash of a plain token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A hash given as 64 hexadecimal digits (to keep only hashes in
    /// configuration files).
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a token hash is 64 hexadecimal digits (SHA-256)".to_owned());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| format!("invalid hexadecimal digit: {e}"))?;
        }
        Ok(Self(bytes))
    }

    /// The hash as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A static token: a name for the logs and timelines, a role, its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// Who holds it (shown as the actor of what they do).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its hash.
    pub hash: TokenHash,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    /// The token's name, or the JWT's `sub`.
    pub name: String,
    /// The role.
    pub role: Role,
}

/// Claims of an accepted JWT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtClaims {
    /// The subject, used as the actor.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`); a
/// bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { address, prefix })
    }
}

impl IpNet {
    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as
    /// IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (net, addr, bits) = match (self.address, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(n) as u128, u32::from(a) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = bits - u32::from(self.prefix);
        (net >> shift) == (addr >> shift)
    }
}

/// How callers are authenticated. Cheap to clone.
#[derive(Clone, Default)]
pub struct AuthConfig {
    inner: Arc<AuthInner>,
}

#[derive(Default)]
struct AuthInner {
    tokens: Vec<TokenEntry>,
    webhook_tokens: Vec<TokenHash>,
    jwt: Option<jsonwebtoken::DecodingKey>,
    webhook_allowlist: Vec<IpNet>,
    public_metrics: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("tokens", &self.inner.tokens.len())
            .field("webhook_tokens", &self.inner.webhook_tokens.len())
            .field("jwt", &self.inner.jwt.is_some())
            .field("webhook_allowlist", &self.inner.webhook_allowlist)
            .field("public_metrics", &self.inner.public_metrics)
            .finish()
    }
}

/// Builds an [`AuthConfig`].
#[derive(Default)]
pub struct AuthConfigBuilder {
    inner: AuthInner,
}

impl AuthConfigBuilder {
    /// Accepts `token` (kept only as its hash) with `role`, named `name`.
    pub fn token(self, name: impl Into<String>, role: Role, token: &str) -> Self {
        self.token_hash(name, role, TokenHash::of(token))
    }

    /// Accepts the token whose SHA-256 is `hash`.
    pub fn token_hash(mut self, name: impl Into<String>, role: Role, hash: TokenHash) -> Self {
        self.inner.tokens.push(TokenEntry {
            name: name.into(),
            role,
            hash,
        });
        self
    }

    /// Accepts `token` on the Alertmanager webhook only.
    pub fn webhook_token(self, token: &str) -> Self {
        self.webhook_token_hash(TokenHash::of(token))
    }

    /// Accepts the webhook token whose SHA-256 is `hash`.
    pub fn webhook_token_hash(mut self, hash: TokenHash) -> Self {
        self.inner.webhook_tokens.push(hash);
        self
    }

    /// Accepts HS256 JWTs signed with `secret`.
    pub fn jwt_secret(mut self, secret: &[u8]) -> Self {
        self.inner.jwt = Some(jsonwebtoken::DecodingKey::from_secret(secret));
        self
    }

    /// Only these networks may call the webhook (empty: any).
    pub fn webhook_allowlist(mut self, networks: Vec<IpNet>) -> Self {
        self.inner.webhook_allowlist = networks;
        self
    }

    /// Serves `/metrics` without credentials (for Prometheus scrapes).
    pub fn public_metrics(mut self, public: bool) -> Self {
        self.inner.public_metrics = public;
        self
    }

    /// The configuration.
    pub fn build(self) -> AuthConfig {
        AuthConfig {
            inner: Arc::new(self.inner),
        }
    }
}

/// Where a bearer token may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenFrom {
    /// The `Authorization` header only.
    Header,
    /// The header, or the `access_token` query parameter (browsers cannot
    /// set headers on `EventSource` and `WebSocket`).
    HeaderOrQuery,
}

impl AuthConfig {
    /// A builder.
    pub fn builder() -> AuthConfigBuilder {
        AuthConfigBuilder::default()
    }

    /// Whether `/metrics` is served without credentials.
    pub fn public_metrics(&self) -> bool {
        self.inner.public_metrics
    }

    /// Whether any credential at all is configured.
    pub fn has_credentials(&self) -> bool {
        !self.inner.tokens.is_empty() || self.inner.jwt.is_some()
    }

    /// The static tokens (hashes only).
    pub fn tokens(&self) -> &[TokenEntry] {
        &self.inner.tokens
    }

    fn bearer<'a>(
        headers: &'a HeaderMap,
        query: Option<&'a str>,
        from: TokenFrom,
    ) -> Result<Option<std::borrow::Cow<'a, str>>, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value
                .to_str()
                .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
            let (scheme, token) = value.split_once(' ').ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <token>`".into(),
                ));
            }
            return Ok(Some(std::borrow::Cow::Borrowed(token.trim())));
        }
        if from == TokenFrom::HeaderOrQuery
            && let Some(query) = query
        {
            for (name, value) in form_urlencoded::parse(query.as_bytes()) {
                if name == "access_token" && !value.is_empty() {
                    return Ok(Some(std::borrow::Cow::Owned(value.into_owned())));
                }
            }
        }
        Ok(None)
    }

    /// Identifies the holder of `token`: a static token (constant-time over
    /// every entry) or a valid JWT.
    pub fn identify(&self, token: &str) -> Result<Principal, ApiError> {
        let hash = TokenHash::of(token);
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.inner.tokens {
            // Compare against every entry, without stopping at the first match.
            if entry.hash.matches(&hash) && found.is_none() {
                found = Some(entry);
            }
        }
        if let Some(entry) = found {
            return Ok(Principal {
                name: entry.name.clone(),
                role: entry.role,
            });
        }
        if let Some(key) = &self.inner.jwt
            && token.matches('.').count() == 2
        {
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_required_spec_claims(&["exp", "sub"]);
            return match jsonwebtoken::decode::<JwtClaims>(token, key, &validation) {
                Ok(data) => Ok(Principal {
                    name: data.claims.sub,
                    role: data.claims.role,
                }),
                Err(error) => Err(ApiError::Unauthorized(format!(
                    "the JWT is not valid: {}",
                    jwt_reason(&error)
                ))),
            };
        }
        Err(ApiError::Unauthorized("unknown token".into()))
    }

    fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        from: TokenFrom,
    ) -> Result<Principal, ApiError> {
        match Self::bearer(headers, query, from)? {
            Some(token) => self.identify(&token),
            None => Err(ApiError::Unauthorized(
                "credentials are required: send `Authorization: Bearer <token>`".into(),
            )),
        }
    }

    /// Authorises a webhook delivery from `peer`.
    fn authorize_webhook(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        if !self.inner.webhook_allowlist.is_empty() {
            let allowed = peer.is_some_and(|ip| {
                self.inner
                    .webhook_allowlist
                    .iter()
                    .any(|net| net.contains(ip))
            });
            if !allowed {
                return Err(ApiError::AddressNotAllowed(
                    peer.map_or_else(|| "(unknown)".to_owned(), |ip| ip.to_string()),
                ));
            }
        }
        let token = Self::bearer(headers, None, TokenFrom::Header)?.ok_or_else(|| {
            ApiError::Unauthorized(
                "credentials are required: send `Authorization: Bearer <token>` (the webhook token)"
                    .into(),
            )
        })?;
        let hash = TokenHash::of(&token);
        let mut webhook = false;
        for candidate in &self.inner.webhook_tokens {
            webhook |= candidate.matches(&hash);
        }
        if webhook {
            return Ok(Principal {
                name: "alertmanager".to_owned(),
                role: Role::Operator,
            });
        }
        let principal = self.identify(&token)?;
        if principal.role < Role::Operator {
            return Err(ApiError::Forbidden {
                needed: Role::Operator,
                have: principal.role,
            });
        }
        Ok(principal)
    }
}

fn jwt_reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match error.kind() {
        K::ExpiredSignature => "it has expired",
        K::InvalidSignature => "the signature does not match",
        K::InvalidAlgorithm => "only HS256 is accepted",
        K::MissingRequiredClaim(_) => "it lacks a required claim (sub, exp)",
        K::Json(_) => "its claims are malformed (sub, role, exp)",
        _ => "it cannot be decoded",
    }
}

/// State of a role gate: the configuration and the role needed.
#[derive(Debug, Clone)]
pub struct Gate {
    /// How to authenticate.
    pub auth: AuthConfig,
    /// The least role allowed through.
    pub role: Role,
}

fn peer_of(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Middleware: lets through callers with at least `gate.role`, adding their
/// [`Principal`] to the request's extensions.
pub async fn require_role(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    match gate
        .auth
        .authenticate(request.headers(), None, TokenFrom::Header)
    {
        Ok(principal) if principal.role >= gate.role => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(principal) => ApiError::Forbidden {
            needed: gate.role,
            have: principal.role,
        }
        .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Middleware for the event streams: like [`require_role`], also reading
/// the token from the `access_token` query parameter.
pub async fn require_role_stream(
    State(gate): State<Gate>,
    mut request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query().map(str::to_owned);
    match gate.auth.authenticate(
        request.headers(),
        query.as_deref(),
        TokenFrom::HeaderOrQuery,
    ) {
        Ok(principal) if principal.role >= gate.role => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(principal) => ApiError::Forbidden {
            needed: gate.role,
            have: principal.role,
        }
        .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Middleware for the Alertmanager webhook: the address allowlist, then the
/// webhook token or an operator's or admin's.
pub async fn require_webhook(
    State(auth): State<AuthConfig>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = peer_of(&request);
    match auth.authorize_webhook(request.headers(), peer) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// A new random token: 32 bytes from the operating system, hex-encoded.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn static_tokens_map_to_their_role() {
        let auth = AuthConfig::builder()
            .token("ops", Role::Operator, "op-token")
            .token("boss", Role::Admin, "admin-token")
            .build();
        let who = auth
            .authenticate(&headers("op-token"), None, TokenFrom::Header)
            .unwrap();
        assert_eq!(who.name, "ops");
        assert_eq!(who.role, Role::Operator);
        assert_eq!(
            auth.authenticate(&headers("admin-token"), None, TokenFrom::Header)
                .unwrap()
                .role,
            Role::Admin
        );
        let error = auth
            .authenticate(&headers("nope"), None, TokenFrom::Header)
            .unwrap_err();
        assert!(matches!(error, ApiError::Unauthorized(_)));
        let error = auth
            .authenticate(&HeaderMap::new(), None, TokenFrom::Header)
            .unwrap_err();
        assert!(matches!(error, ApiError::Unauthorized(_)));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = TokenHash::of("abc");
        // SHA-256("abc"), from FIPS 180-2.
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert!(TokenHash::from_hex("abc").is_err());
        assert!(!format!("{hash:?}").contains(&hash.to_hex()));
    }

    #[test]
    fn query_tokens_only_where_allowed() {
        let auth = AuthConfig::builder()
            .token("v", Role::Viewer, "t0k")
            .build();
        let empty = HeaderMap::new();
        assert!(
            auth.authenticate(&empty, Some("access_token=t0k"), TokenFrom::Header)
                .is_err()
        );
        assert_eq!(
            auth.authenticate(
                &empty,
                Some("topics=cluster&access_token=t0k"),
                TokenFrom::HeaderOrQuery
            )
            .unwrap()
            .name,
            "v"
        );
    }

    #[test]
    fn jwts_signed_with_the_secret_are_accepted() {
        let secret = b"a-long-enough-test-secret";
        let auth = AuthConfig::builder().jwt_secret(secret).build();
        let claims = JwtClaims {
            sub: "alice".into(),
            role: Role::Operator,
            exp: jsonwebtoken::get_current_timestamp() + 600,
        };
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let who = auth.identify(&token).unwrap();
        assert_eq!((who.name.as_str(), who.role), ("alice", Role::Operator));

        let expired = JwtClaims {
            exp: jsonwebtoken::get_current_timestamp() - 3600,
            ..claims.clone()
        };
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &expired, &key).unwrap();
        let ApiError::Unauthorized(message) = auth.identify(&token).unwrap_err() else {
            panic!("an expired JWT is a 401");
        };
        assert!(message.contains("expired"), "{message}");

        let other = jsonwebtoken::EncodingKey::from_secret(b"another-secret-entirely");
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &other).unwrap();
        assert!(auth.identify(&token).is_err());
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host: IpNet = "127.0.0.1".parse().unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let v6: IpNet = "::1/128".parse().unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("any".parse::<IpNet>().is_err());
    }

    #[test]
    fn webhook_takes_its_token_or_an_operator() {
        let auth = AuthConfig::builder()
            .token("v", Role::Viewer, "viewer")
            .token("o", Role::Operator, "operator")
            .webhook_token("hook")
            .webhook_allowlist(vec!["127.0.0.0/8".parse().unwrap()])
            .build();
        let local = Some("127.0.0.1".parse().unwrap());
        assert_eq!(
            auth.authorize_webhook(&headers("hook"), local)
                .unwrap()
                .name,
            "alertmanager"
        );
        assert!(auth.authorize_webhook(&headers("operator"), local).is_ok());
        assert!(matches!(
            auth.authorize_webhook(&headers("viewer"), local),
            Err(ApiError::Forbidden { .. })
        ));
        assert!(matches!(
            auth.authorize_webhook(&HeaderMap::new(), local),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            auth.authorize_webhook(&headers("hook"), Some("192.0.2.1".parse().unwrap())),
            Err(ApiError::AddressNotAllowed(_))
        ));
    }
}
