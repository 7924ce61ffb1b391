//! Logging into the host's log. Lines are tagged with the plugin's name by
//! the host; keep them short and never log anything secret.

use crate::bindings::selector::grantpool::plugin::host;
use crate::bindings::selector::grantpool::plugin::types::LogLevel;

/// Log at `debug`.
pub fn debug(message: &str) {
    host::log(LogLevel::Debug, message)
}
/// Log at `info`.
pub fn info(message: &str) {
    host::log(LogLevel::Info, message)
}
/// Log at `warn`.
pub fn warn(message: &str) {
    host::log(LogLevel::Warn, message)
}
/// Log at `error`.
pub fn error(message: &str) {
    host::log(LogLevel::Error, message)
}
