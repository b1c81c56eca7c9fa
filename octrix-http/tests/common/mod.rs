//! Shared test harness: the app over a simulated cluster, a manual clock,
//! in-memory storage and one token per role.

#![allow(dead_code)]

pub mod binary;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use octrix_core::incident::{
    Incident, IncidentId, IncidentPage, IncidentQuery, IncidentStore, StoreError,
};
use octrix_core::time::SignedDuration;
use octrix_core::{ManualClock, Timestamp};
use octrix_http::auth::{AuthConfig, Role};
use octrix_http::storage::{Document, DocumentKind, Storage, StorageError};
use octrix_http::{AppState, Limits, MemoryStorage, app};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

pub const VIEWER: &str = "viewer-token-0123456789";
pub const OPERATOR: &str = "operator-token-0123456789";
pub const ADMIN: &str = "admin-token-0123456789";
pub const WEBHOOK: &str = "webhook-token-0123456789";

pub const FIRING: &[u8] = include_bytes!("../data/alertmanager-webhook-firing.json");
pub const AMTOOL_FIRING: &[u8] = include_bytes!("../data/alertmanager-webhook-amtool-firing.json");
pub const RESOLVED: &[u8] = include_bytes!("../data/alertmanager-webhook-resolved.json");

pub fn auth() -> AuthConfig {
    AuthConfig::builder()
        .token("vera", Role::Viewer, VIEWER)
        .token("otto", Role::Operator, OPERATOR)
        .token("ada", Role::Admin, ADMIN)
        .webhook_token(WEBHOOK)
        .public_metrics(true)
        .build()
}

/// [`MemoryStorage`] with a switch that makes every call fail.
#[derive(Default)]
pub struct TestStorage {
    inner: MemoryStorage,
    failing: AtomicBool,
}

impl TestStorage {
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StorageError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable("injected failure".into()))
        } else {
            Ok(())
        }
    }

    pub async fn export_jsonl(&self) -> String {
        self.inner.export_incidents_jsonl().await.unwrap()
    }

    pub async fn healing_config(&self) -> Option<Value> {
        self.inner
            .get_document(DocumentKind::HealingConfig, "current")
            .await
            .unwrap()
            .map(|d| d.body)
    }
}

fn store_error(e: StorageError) -> StoreError {
    StoreError::Backend {
        message: e.to_string(),
        source: None,
    }
}

#[async_trait]
impl IncidentStore for TestStorage {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.check().map_err(store_error)?;
        self.inner.put(incident).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.check().map_err(store_error)?;
        self.inner.get(id).await
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        self.check().map_err(store_error)?;
        self.inner.list(query).await
    }
}

#[async_trait]
impl Storage for TestStorage {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StorageError> {
        self.check()?;
        self.inner.put_incidents(incidents).await
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StorageError> {
        self.check()?;
        self.inner.active_incidents().await
    }

    async fn resolved_incidents_since(
        &self,
        since: octrix_core::Timestamp,
    ) -> Result<Vec<Incident>, StorageError> {
        self.check()?;
        self.inner.resolved_incidents_since(since).await
    }

    async fn highest_incident_id(&self) -> Result<Option<IncidentId>, StorageError> {
        self.check()?;
        self.inner.highest_incident_id().await
    }

    async fn put_document(&self, document: &Document) -> Result<(), StorageError> {
        self.check()?;
        self.inner.put_document(document).await
    }

    async fn get_document(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StorageError> {
        self.check()?;
        self.inner.get_document(kind, id).await
    }

    async fn list_documents(
        &self,
        kind: DocumentKind,
        limit: usize,
    ) -> Result<Vec<Document>, StorageError> {
        self.check()?;
        self.inner.list_documents(kind, limit).await
    }

    async fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StorageError> {
        self.check()?;
        self.inner.delete_document(kind, id).await
    }

    async fn apply_retention(&self, cutoff: Timestamp) -> Result<u64, StorageError> {
        self.check()?;
        self.inner.apply_retention(cutoff).await
    }

    async fn export_incidents_jsonl(&self) -> Result<String, StorageError> {
        self.check()?;
        self.inner.export_incidents_jsonl().await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.check()
    }
}

pub struct Harness {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub storage: Arc<TestStorage>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let clock = Arc::new(ManualClock::new(
            "2026-11-23T09:06:40Z".parse::<Timestamp>().unwrap(),
        ));
        let storage = Arc::new(TestStorage::default());
        let state = AppState::simulated_with(
            octrix_core::sim::SimConfig::default(),
            storage.clone(),
            clock.clone(),
            auth(),
            limits,
        )
        .unwrap();
        Self {
            state,
            clock,
            storage,
        }
    }

    pub fn app(&self) -> Router {
        app(self.state.clone())
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        call(self.app(), method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(
            Method::POST,
            path,
            Some(token),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    pub async fn deliver(&self, payload: &[u8]) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/alerts",
            Some(WEBHOOK),
            Some(payload.to_vec()),
        )
        .await
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text());
        self
    }
}

pub async fn call(
    app: Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}
