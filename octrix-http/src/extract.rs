//! Extractors whose rejections are [`ApiError`]s naming the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; a malformed one is a 400 naming the field
/// (`rules[0].actions[1].channel: missing field`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Parses `body` as JSON, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(path, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(".", e.to_string()))?;
    Ok(value)
}

/// Reads a request body, turning a body over the limit into a 413.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: crate::state::DEFAULT_BODY_LIMIT,
            }
        } else {
            ApiError::bad_request(".", rejection.body_text())
        }
    })
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read_body(req, state).await?;
        if body.is_empty() {
            return Err(ApiError::bad_request(".", "a JSON body is required"));
        }
        parse_json(&body).map(ApiJson)
    }
}

/// An optional JSON body: empty means `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read_body(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&body).map(OptionalJson)
    }
}

/// A query string; a malformed one is a 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::bad_request(path, e.into_inner().to_string())
            })
    }
}

/// Splits a comma-separated query value into its non-empty items.
pub fn list(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Parses a timestamp given as RFC 3339 or as Unix seconds (fractions allowed).
pub fn parse_time(field: &str, text: &str) -> Result<jiff::Timestamp, ApiError> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let seconds: f64 = text.parse().map_err(|_| {
        ApiError::bad_request(
            field,
            format!("{text:?} is neither RFC 3339 nor Unix seconds"),
        )
    })?;
    if !seconds.is_finite() {
        return Err(ApiError::bad_request(field, "must be finite"));
    }
    jiff::Timestamp::from_nanosecond((seconds * 1e9) as i128)
        .map_err(|e| ApiError::bad_request(field, e.to_string()))
}

/// Parses a duration given as seconds (`15`, `0.5`) or with a unit
/// (`500ms`, `15s`, `5m`, `1h`, `1d`), as Prometheus accepts for `step`.
pub fn parse_duration(field: &str, text: &str) -> Result<std::time::Duration, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            field,
            format!("{text:?} is not a duration such as 15, 15s, 500ms, 5m, 1h or 1d"),
        )
    };
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let factor = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(invalid()),
    };
    let seconds = value * factor;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(ApiError::bad_request(field, "must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_and_without_units() {
        assert_eq!(parse_duration("step", "15").unwrap().as_secs(), 15);
        assert_eq!(parse_duration("step", "500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("step", "5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("step", "1d").unwrap().as_secs(), 86_400);
        let error = parse_duration("step", "5y").unwrap_err();
        assert_eq!(error.body().error.field.as_deref(), Some("step"));
        assert!(parse_duration("step", "0").is_err());
    }

    #[test]
    fn times_as_rfc3339_or_unix_seconds() {
        assert_eq!(
            parse_time("start", "2026-01-01T00:00:00Z")
                .unwrap()
                .as_second(),
            1_767_225_600
        );
        assert_eq!(
            parse_time("start", "1767225600.5")
                .unwrap()
                .as_millisecond(),
            1_767_225_600_500
        );
        assert!(parse_time("start", "tomorrow").is_err());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<Item>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            count: u32,
        }
        let error =
            parse_json::<Body>(br#"{"items": [{"count": 1}, {"count": "x"}]}"#).unwrap_err();
        assert_eq!(error.body().error.field.as_deref(), Some("items[1].count"));
    }
}
