//! Stable identities for signals: [`Fingerprint`] and FNV-1a 64.
//!
//! Deduplication compares fingerprints across restarts and machines, so the
//! hash must never change: std's `DefaultHasher` is explicitly allowed to, and
//! FNV-1a is fully specified by two constants.

use std::fmt;

use serde::{Deserialize, Serialize};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit, of `bytes`.
///
/// ```
/// use octrix_core::classify::fnv1a_64;
///
/// assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The identity of what an alert or a signal is about, stable across
/// deliveries: Alertmanager's `fingerprint`, or for internal signals
/// [`Fingerprint::of_parts`] of category, resource and metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Wraps a fingerprint computed elsewhere (for example by Alertmanager).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// FNV-1a 64 of `parts`, as 16 lowercase hex digits (the shape of an
    /// Alertmanager fingerprint).
    ///
    /// Each part is followed by the byte 0xFF, which never occurs in UTF-8,
    /// so `["ab", "c"]` and `["a", "bc"]` hash differently.
    ///
    /// ```
    /// use octrix_core::classify::Fingerprint;
    ///
    /// let a = Fingerprint::of_parts(["high-cpu", "pod", "shop", "cart-1"]);
    /// assert_eq!(a.as_str().len(), 16);
    /// assert_eq!(a, Fingerprint::of_parts(["high-cpu", "pod", "shop", "cart-1"]));
    /// assert_ne!(a, Fingerprint::of_parts(["high-cpu", "pod", "shopc", "art-1"]));
    /// ```
    pub fn of_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut bytes = Vec::new();
        for part in parts {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0xFF);
        }
        Self(format!("{:016x}", fnv1a_64(&bytes)))
    }

    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn fingerprint_of_parts_is_pinned() {
        // Pinned literals (computed independently) so that a change to the
        // encoding, which would split every stored incident from its future
        // signals, fails loudly.
        assert_eq!(
            Fingerprint::of_parts(["a", "b"]).as_str(),
            "d2b371819297f98a"
        );
        assert_eq!(
            Fingerprint::of_parts(["high-cpu", "pod", "shop", "cart-1"]).as_str(),
            "cc5268c451a0063d"
        );
        assert_ne!(
            Fingerprint::of_parts(["ab", ""]),
            Fingerprint::of_parts(["a", "b"])
        );
    }
}
