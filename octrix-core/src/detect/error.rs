//! The detection module's one error type.

use super::SeriesId;

/// Everything that can go wrong in [`crate::detect`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its allowed range.
    #[error("invalid detector configuration: `{field}` {reason}")]
    InvalidConfig {
        /// Path of the offending field, e.g. `metrics.http_latency.window`.
        field: String,
        /// What is wrong with it, including the value found.
        reason: String,
    },

    /// A sample was NaN or infinite; it was counted and skipped.
    #[error("rejected sample: value {value} is not finite")]
    NonFiniteValue {
        /// The rejected value.
        value: f64,
    },

    /// A sample's magnitude exceeds [`super::MAX_ABS_VALUE`]; it was counted
    /// and skipped.
    #[error("rejected sample: value {value:e} exceeds the limit of ±{limit:e}")]
    ValueOutOfRange {
        /// The rejected value.
        value: f64,
        /// The largest accepted magnitude.
        limit: f64,
    },

    /// A [`super::DetectorBank`] already holds `max_series` series and
    /// refused to create another.
    #[error("series limit reached: max_series = {max_series}, refusing new series `{series}`")]
    SeriesLimitReached {
        /// The bank's configured cap.
        max_series: usize,
        /// The series that was refused, rendered as a [`super::SeriesKey`].
        series: String,
    },

    /// Two inputs that go together differ in length.
    #[error("length mismatch: `{field}` holds {got} items, expected {expected}")]
    LengthMismatch {
        /// The argument of the wrong length.
        field: String,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },

    /// A [`SeriesId`] that the bank does not know: its series was evicted,
    /// or it comes from another bank.
    #[error("unknown series: id {id} was evicted or belongs to another bank")]
    UnknownSeries {
        /// The stale or foreign id.
        id: SeriesId,
    },
}

impl Error {
    /// An [`Error::InvalidConfig`] for `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_their_fields() {
        let error = Error::invalid("metrics.cpu.window", "must be at least 2, got 1");
        assert_eq!(
            error.to_string(),
            "invalid detector configuration: `metrics.cpu.window` must be at least 2, got 1"
        );
        let error = Error::SeriesLimitReached {
            max_series: 3,
            series: "up{job=\"api\"}".into(),
        };
        assert_eq!(
            error.to_string(),
            "series limit reached: max_series = 3, refusing new series `up{job=\"api\"}`"
        );
        assert_eq!(
            Error::NonFiniteValue { value: f64::NAN }.to_string(),
            "rejected sample: value NaN is not finite"
        );
    }
}
