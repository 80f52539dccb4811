//! Shared by the end-to-end tests; each test binary uses a part of it.
#![allow(dead_code)]

pub mod prometheus;
pub mod run;
