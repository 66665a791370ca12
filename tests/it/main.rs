//! The integration tests, compiled as one binary around a shared support harness.

mod smtp;
// The harness serves every test module; not each of them uses every helper.
#[allow(dead_code)]
mod support;
