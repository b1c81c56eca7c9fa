//! # octrix-py
//!
//! Python bindings of `octrix-core`, built by maturin into the private
//! native module `octrix._octrix`; the pure-Python package `octrix`
//! (`python/octrix`) re-exports it and adds the str enums.
//!
//! The wrappers are thin: every decision is the core's. What lives here is
//! conversion (Python values in and out, see [`convert`]) and the one
//! exception hierarchy with its one conversion from core errors (see
//! [`errors`]). Batch work (`observe_many`) runs with the GIL released.

pub mod chaos;
pub mod classify;
pub mod convert;
pub mod detect;
pub mod errors;
pub mod healing;
pub mod incident;
pub mod resilience;
pub mod routing;

use pyo3::prelude::*;

/// Octrix's core for Python (native module; import `octrix` instead).
#[pymodule]
fn _octrix(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(module)?;
    detect::register(module)?;
    classify::register(module)?;
    incident::register(module)?;
    healing::register(module)?;
    routing::register(module)?;
    resilience::register(module)?;
    chaos::register(module)?;
    Ok(())
}
