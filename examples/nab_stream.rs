//! Streams a NAB series through the detector (written with the detect module).
fn main() {}
