//! `grantpool-tests`: the end-to-end tests of grantpool (in `tests/`) and
//! the fake Google upstream they run against ([`fake`]), also shipped as
//! the `fake-google` binary for tests in other languages and the load
//! harness.

#![warn(missing_docs)]

pub mod fake;
