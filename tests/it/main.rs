//! Integration tests, compiled as one binary: one module per area of brief.

mod feeds;
