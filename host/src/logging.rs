//! Logs to stderr and to daily files under `<data_dir>/logs/`; the level
//! from `RUST_LOG`, else `[log] level`.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Log lines queued for the file writer at most; beyond, lines are dropped
/// rather than block a request (a burst of 8,192 lines is rare).
const LOG_LINES_BUFFERED: usize = 8_192;

/// Keeps the file writer flushing; hold it for the life of the process.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Install the global subscriber. With `log_dir`, also daily files there
/// (`grantpool.log.YYYY-MM-DD`, `keep` of them kept).
pub fn init(level: &str, log_dir: Option<&Path>, keep: usize) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let mut guard = None;
    let file_layer = log_dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("grantpool")
            .filename_suffix("log")
            .max_log_files(keep.max(1))
            .build(dir)
            .ok()?;
        // Lines waiting for the disk at most (lossy beyond): the default,
        // 128,000, preallocates 4 MiB.
        let (writer, g) = tracing_appender::non_blocking::NonBlockingBuilder::default().buffered_lines_limit(LOG_LINES_BUFFERED).finish(appender);
        guard = Some(g);
        Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_target(false))
    });
    let _ = tracing_subscriber::registry().with(filter).with(stderr).with(file_layer).try_init();
    LogGuard(guard)
}
