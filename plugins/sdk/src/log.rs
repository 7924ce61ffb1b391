//! Logging into the host's log. Lines are tagged with the plugin's name by
//! the host; keep them short and never log anything secret.

use crate::bindings::selector::grantpool::plugin::types::LogLevel;

/// Into the host's log; outside a component (a plugin's native tests, the
/// fuzz targets in plugins/fuzz) there is no host, so to stderr.
fn line(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::selector::grantpool::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
}

/// Log at `debug`.
pub fn debug(message: &str) {
    line(LogLevel::Debug, message)
}
/// Log at `info`.
pub fn info(message: &str) {
    line(LogLevel::Info, message)
}
/// Log at `warn`.
pub fn warn(message: &str) {
    line(LogLevel::Warn, message)
}
/// Log at `error`.
pub fn error(message: &str) {
    line(LogLevel::Error, message)
}
