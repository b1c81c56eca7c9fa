//! Placeholder module doc: filled in by its work stream.
