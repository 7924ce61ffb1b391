//! The files `grantpool plugin new` writes, carried inside the binary: the
//! WIT contract, both guest SDKs, the four templates and the scaffold
//! around them (README, case, Cargo manifests). Every path is relative to
//! the folder it is written into.

macro_rules! repo_file {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $path))
    };
}

/// `wit/grantpool-plugin.wit`.
pub const WIT: &str = repo_file!("wit/grantpool-plugin.wit");

/// The plugins workspace's lock: the exact crate versions a generated Rust
/// project pins.
pub const PLUGINS_LOCK: &str = repo_file!("plugins/Cargo.lock");

/// The Rust guest SDK's sources (`plugins/sdk/src`), as `src/…` paths.
pub const RUST_SDK: &[(&str, &str)] = &[
    ("src/lib.rs", repo_file!("plugins/sdk/src/lib.rs")),
    ("src/classifier.rs", repo_file!("plugins/sdk/src/classifier.rs")),
    ("src/config.rs", repo_file!("plugins/sdk/src/config.rs")),
    ("src/duration.rs", repo_file!("plugins/sdk/src/duration.rs")),
    ("src/log.rs", repo_file!("plugins/sdk/src/log.rs")),
    ("src/pick.rs", repo_file!("plugins/sdk/src/pick.rs")),
    ("src/selector.rs", repo_file!("plugins/sdk/src/selector.rs")),
];

/// The Python guest package (`plugins/python/grantpool_plugin`), as
/// `grantpool_plugin/…` paths.
pub const PYTHON_SDK: &[(&str, &str)] = &[
    ("grantpool_plugin/__init__.py", repo_file!("plugins/python/grantpool_plugin/__init__.py")),
    ("grantpool_plugin/classifier.py", repo_file!("plugins/python/grantpool_plugin/classifier.py")),
    ("grantpool_plugin/config.py", repo_file!("plugins/python/grantpool_plugin/config.py")),
    ("grantpool_plugin/duration.py", repo_file!("plugins/python/grantpool_plugin/duration.py")),
    ("grantpool_plugin/log.py", repo_file!("plugins/python/grantpool_plugin/log.py")),
    ("grantpool_plugin/selector.py", repo_file!("plugins/python/grantpool_plugin/selector.py")),
];

/// The Rust selector template's `src/lib.rs` (`plugins/template`).
pub const RUST_SELECTOR: &str = repo_file!("plugins/template/src/lib.rs");
/// The Rust classifier template's `src/lib.rs` (`plugins/template-classifier`).
pub const RUST_CLASSIFIER: &str = repo_file!("plugins/template-classifier/src/lib.rs");
/// The Python selector template's `src/app.py` (`plugins/examples/python-selector`).
pub const PYTHON_SELECTOR: &str = repo_file!("plugins/examples/python-selector/src/app.py");
/// The Python classifier template's `src/app.py` (`plugins/examples/python-classifier`).
pub const PYTHON_CLASSIFIER: &str = repo_file!("plugins/examples/python-classifier/src/app.py");

/// A Rust project's `Cargo.toml`.
pub const CARGO_TOML: &str = repo_file!("plugins/scaffold/Cargo.toml.in");
/// The vendored SDK's `Cargo.toml`.
pub const SDK_CARGO_TOML: &str = repo_file!("plugins/scaffold/sdk-Cargo.toml.in");
/// A Rust project's README.
pub const README_RUST: &str = repo_file!("plugins/scaffold/README-rust.md.in");
/// A Python project's README.
pub const README_PYTHON: &str = repo_file!("plugins/scaffold/README-python.md.in");
/// `case.json` of a selector.
pub const CASE_SELECTOR: &str = repo_file!("plugins/scaffold/case-selector.json");
/// `case.json` of a classifier.
pub const CASE_CLASSIFIER: &str = repo_file!("plugins/scaffold/case-classifier.json");
/// `.gitignore` of a Rust project.
pub const GITIGNORE_RUST: &str = repo_file!("plugins/scaffold/gitignore-rust");
/// `.gitignore` of a Python project.
pub const GITIGNORE_PYTHON: &str = repo_file!("plugins/scaffold/gitignore-python");

#[cfg(test)]
mod tests;
