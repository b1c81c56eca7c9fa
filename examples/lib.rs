//! Runnable examples for Octrix; see the `[[example]]` entries in this
//! crate's manifest. Stories that tests assert on live here as functions.

pub mod story;
