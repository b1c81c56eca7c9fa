//! # octrix-http
//!
//! The Octrix server: REST API, Alertmanager webhook, live events,
//! authentication and durable storage, and the `octrix` binary.
//!
//! * [`storage`]: the [`storage::Storage`] port (incidents plus the server's
//!   documents: healing rules, chaos runs, traffic rules, action history).

pub mod storage;
