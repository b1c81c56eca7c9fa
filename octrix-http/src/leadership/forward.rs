//! [`forward_writes`]: a follower forwards writes to the leader; the
//! leader trusts the client address of a forwarded write only with the
//! forwarding token it published in its lease.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{FORWARDED_BY, Leadership, WriteRoute};
use crate::error::ApiError;
use crate::state::AppState;

/// Seconds a client is told to wait when no leader can take a write.
const RETRY_AFTER_SECONDS: u64 = 2;

/// The header carrying the leader's forwarding token on a forwarded write.
pub const FORWARD_TOKEN: &str = "x-octrix-forward-token";

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_stream(path: &str) -> bool {
    path.starts_with("/api/v1/events/")
}

fn unavailable(message: String) -> Response {
    let mut response = ApiError::Unavailable(message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Middleware: a follower forwards writes to the leader and refuses event
/// streams (they are the leader's); everything else is served here.
///
/// A write forwarded by a follower carries the client's address
/// (`X-Forwarded-For`) and the leader's forwarding token: with the right
/// token the leader takes that address as the client's, so that the
/// webhook's allowlist and rate limit apply to the client, not to the
/// follower. Without it the address is the follower's.
pub async fn forward_writes(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(client) = forwarded_client(state.leadership(), request.headers()) {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 0)));
    }
    let path = request.uri().path();
    if is_read(request.method()) && !is_stream(path) {
        return next.run(request).await;
    }
    let leadership = state.leadership().clone();
    match leadership.route() {
        WriteRoute::Here => next.run(request).await,
        WriteRoute::Unavailable(reason) => unavailable(reason),
        WriteRoute::Forward { url, leader, .. } if is_stream(path) => unavailable(format!(
            "live events are served by the leader {leader} at {url}; this replica follows it"
        )),
        WriteRoute::Forward {
            url,
            leader,
            replica,
            token,
        } => {
            if request.headers().contains_key(FORWARDED_BY) {
                return unavailable(format!(
                    "a forwarded write reached {replica}, which does not lead either (leadership is changing)"
                ));
            }
            let answer = forward(&leadership, &url, &replica, &token, request).await;
            match answer {
                Ok(response) => {
                    if response.status().is_success() {
                        leadership.nudge_mirror();
                    }
                    response
                }
                Err(reason) => unavailable(format!(
                    "the leader {leader} at {url} cannot be reached: {reason}"
                )),
            }
        }
    }
}

/// Hop-by-hop headers (RFC 9110 7.6.1) and those the client recomputes.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The client a forwarded write came from, when it carries this replica's
/// forwarding token (compared in constant time).
fn forwarded_client(leadership: &Leadership, headers: &HeaderMap) -> Option<IpAddr> {
    let own = leadership.forward_token()?;
    headers.get(FORWARDED_BY)?;
    let presented = headers.get(FORWARD_TOKEN)?.as_bytes();
    if !bool::from(presented.ct_eq(own.as_bytes())) {
        return None;
    }
    // Our followers add exactly one address: the client's.
    headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn forward(
    leadership: &Leadership,
    leader_url: &str,
    replica: &str,
    token: &str,
    request: Request,
) -> Result<Response, String> {
    let client = leadership.client()?;
    let (parts, body) = request.into_parts();
    let target = format!(
        "{}{}",
        leader_url.trim_end_matches('/'),
        parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str())
    );
    // The body limit layer ran before this one: the body is bounded.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        // The client's own X-Forwarded-For is not trusted: replaced below.
        if passes(name) && name != "x-forwarded-for" && name != FORWARD_TOKEN {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        && let Ok(value) = HeaderValue::from_str(&peer.ip().to_string())
    {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    if let Ok(value) = HeaderValue::from_str(replica) {
        headers.insert(HeaderName::from_static(FORWARDED_BY), value);
    }
    if let Ok(value) = HeaderValue::from_str(token) {
        headers.insert(HeaderName::from_static(FORWARD_TOKEN), value);
    }
    let answer = client
        .request(parts.method, &target)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if passes(name) {
            response_headers.append(name.clone(), value.clone());
        }
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| format!("the answer was cut: {}", e.without_url()))?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use octrix_core::{ManualClock, Timestamp};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{AuthConfig, Role};
    use crate::{MemoryStorage, app};

    const TOKEN: &str = "the-leaders-forwarding-token";

    /// A leader whose webhook only takes deliveries from 10.0.0.0/8.
    fn leader() -> AppState {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let auth = AuthConfig::builder()
            .token("ops", Role::Operator, "operator-token-0123456789")
            .webhook_allowlist(vec!["10.0.0.0/8".parse().unwrap()])
            .build();
        let state = AppState::simulated(Arc::new(MemoryStorage::new()), clock, auth).unwrap();
        state.leadership().set_forward_token(TOKEN.to_owned());
        state
    }

    /// A delivery reaching the leader from the follower at 192.168.1.5,
    /// for the client `client`, with the forwarding token `token`.
    fn forwarded(client: &str, token: Option<&str>) -> Request {
        let body = serde_json::json!({
            "receiver": "octrix", "status": "firing", "alerts": [{
                "status": "firing", "labels": {"alertname": "Forwarded"},
                "annotations": {}, "startsAt": "2026-11-23T09:06:35Z",
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "fp-forwarded"}],
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager", "version": "4", "groupKey": "{}:{}",
            "truncatedAlerts": 0
        });
        let mut request = axum::http::Request::post("/api/v1/alerts")
            .header(header::AUTHORIZATION, "Bearer operator-token-0123456789")
            .header(header::CONTENT_TYPE, "application/json")
            .header(FORWARDED_BY, "follower-1")
            .header("x-forwarded-for", client);
        if let Some(token) = token {
            request = request.header(FORWARD_TOKEN, token);
        }
        let mut request = request.body(Body::from(body.to_string())).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 168, 1, 5], 40_000))));
        request
    }

    #[tokio::test]
    async fn the_leader_checks_the_forwarded_client_only_with_its_token() {
        let state = leader();
        let allowed = app(state.clone())
            .oneshot(forwarded("10.1.2.3", Some(TOKEN)))
            .await
            .unwrap();
        assert!(allowed.status().is_success(), "{}", allowed.status());
        // A client outside the allowlist is refused, though the follower's
        // own address does not matter.
        let outside = app(state.clone())
            .oneshot(forwarded("172.16.0.9", Some(TOKEN)))
            .await
            .unwrap();
        assert_eq!(outside.status(), StatusCode::FORBIDDEN);
        // Without the right token the claimed address is ignored: the
        // delivery is judged by the address it came from (the follower's).
        for token in [Some("a-guessed-token"), None] {
            let forged = app(state.clone())
                .oneshot(forwarded("10.1.2.3", token))
                .await
                .unwrap();
            assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{token:?}");
        }
    }

    #[test]
    fn the_forwarded_client_needs_the_token_and_one_address() {
        let leadership = Leadership::single(None);
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_BY, HeaderValue::from_static("b"));
        headers.insert(FORWARD_TOKEN, HeaderValue::from_static("t"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        // No token of its own: it never competed for a lease.
        assert_eq!(forwarded_client(&leadership, &headers), None);
        leadership.set_forward_token("t".to_owned());
        assert_eq!(
            forwarded_client(&leadership, &headers),
            Some("10.0.0.1".parse().unwrap())
        );
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 10.0.0.2"),
        );
        assert_eq!(forwarded_client(&leadership, &headers), None);
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        assert!(passes(&header::AUTHORIZATION));
        assert!(passes(&header::CONTENT_TYPE));
        assert!(!passes(&header::HOST));
        assert!(!passes(&header::CONNECTION));
        assert!(!passes(&header::CONTENT_LENGTH));
    }
}
