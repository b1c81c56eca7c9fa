//! Runnable examples for Octrix; see the `[[example]]` entries in this crate's manifest.
