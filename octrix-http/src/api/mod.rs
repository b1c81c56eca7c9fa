//! The REST API's handlers, one module per endpoint group.

pub mod alerts;
pub mod healing;
pub mod incidents;
pub mod metrics;
pub mod resilience;
pub mod routing;
pub mod simulator;
pub mod system;

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a wire name (`pod-crash`, `critical`) into a serde enum, naming
/// `field` and the accepted values on error.
pub(crate) fn parse_enum<T: DeserializeOwned>(
    field: &str,
    text: &str,
    accepted: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| ApiError::bad_request(field, format!("{text:?} is not one of {accepted}")))
}
