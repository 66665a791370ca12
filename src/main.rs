//! The `brief` binary.
fn main() {}
