//! Host-side bindings of `wit/grantpool-plugin.wit`, and the host imports
//! every plugin gets (logging into `tracing`, a clock).

use wasmtime::component::{HasSelf, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) mod selector_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "selector",
        additional_derives: [PartialEq],
    });
}

pub(crate) mod classifier_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "classifier",
        additional_derives: [PartialEq],
        with: {
            "grantpool:plugin/types": crate::plugins::bindings::selector_world::grantpool::plugin::types,
            "grantpool:plugin/host": crate::plugins::bindings::selector_world::grantpool::plugin::host,
        },
    });
}

pub use selector_world::exports::grantpool::plugin::selection as selector_types;
pub use classifier_world::exports::grantpool::plugin::classification as classifier_types;
pub use selector_world::grantpool::plugin::types::{LogLevel, Protocol};

/// What a plugin's store holds: its name (for log lines), an empty WASI
/// context (no files, no network, no environment) and its memory limits.
pub(crate) struct HostState {
    pub plugin: std::sync::Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
}

impl HostState {
    pub fn new(plugin: std::sync::Arc<str>, memory_limit: usize) -> Self {
        HostState {
            plugin,
            // Nothing inherited: no args, env, preopened dirs, sockets or stdio.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Longest plugin log line kept; the rest is cut so a plugin cannot flood
/// the log with one call.
const MAX_LOG_LINE: usize = 2048;

impl selector_world::grantpool::plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        crate::util::now_ms()
    }
}

impl selector_world::grantpool::plugin::types::Host for HostState {}

/// The `wasi:io/streams` version wasmtime-wasi 48 defines (components
/// importing an older 0.2 release are matched to it).
const WASI_IO_STREAMS: &str = "wasi:io/streams@0.2.12";

/// wasmtime-wasi's synchronous `blocking-write-and-flush` / `blocking-flush`
/// run the stream's async code with `block_on` on the current tokio
/// runtime, which panics on a thread that is already driving one — every
/// serving thread of the proxy. A guest reaches them by writing to stdout or
/// stderr: a Rust panic message, a Python traceback. In the sandbox stdio is
/// a sink, so these write what the stream takes now and never wait.
fn stdio_without_blocking(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::bindings::sync::io::streams::StreamError as WitStreamError;
    use wasmtime_wasi::p2::DynOutputStream;

    linker.allow_shadowing(true);
    let mut streams = linker.instance(WASI_IO_STREAMS)?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: wasmtime::StoreContextMut<'_, HostState>, (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let s = store.data_mut().table.get_mut(&stream)?;
            if let Ok(room) = s.check_write() {
                let n = room.min(bytes.len());
                let _ = s.write(bytes::Bytes::copy_from_slice(&bytes[..n])).and_then(|()| s.flush());
            }
            Ok((Ok::<(), WitStreamError>(()),))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: wasmtime::StoreContextMut<'_, HostState>, (stream,): (Resource<DynOutputStream>,)| {
            let _ = store.data_mut().table.get_mut(&stream)?.flush();
            Ok((Ok::<(), WitStreamError>(()),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A linker with WASI (empty context) and the host imports.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<wasmtime::component::Linker<HostState>> {
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    stdio_without_blocking(&mut linker)?;
    selector_world::grantpool::plugin::host::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    selector_world::grantpool::plugin::types::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}
