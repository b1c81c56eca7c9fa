//! TEMPORARY for compiling healing before merge.
mod category;
mod severity;
pub use category::*;
pub use severity::*;
