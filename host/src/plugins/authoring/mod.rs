//! Writing plugins without a grantpool checkout: `grantpool plugin new`
//! ([`write_project`]) writes a standalone project from the templates, the
//! SDKs and the WIT carried in the binary; `grantpool plugin build`
//! ([`build`]) builds it with cargo (Rust) or componentize-py (Python),
//! installing the `wasm32-wasip2` target or a project-local componentize-py
//! when missing.

mod builder;
mod embedded;
mod manifest;
mod scaffold;
mod toolchain;

pub use builder::{build, export_name, Built};
pub use manifest::{Lang, Manifest, MANIFEST};
pub use scaffold::{policy_snippet, write_project, NewProject};
pub use toolchain::{COMPONENTIZE_PY_VERSION, WASM_TARGET};
