//! Benchmarks for Octrix; see the `[[bench]]` entries in this crate's manifest.
