//! One wasmtime engine for every plugin: epoch ticker, compile cache, load.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{linker, HostState};
use super::kind::PluginKind;

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A plugin carried inside the binary, by name (`round-robin`, `default`, …).
    Bundled(String),
    /// A `.wasm` component on disk.
    File(PathBuf),
}

impl PluginSource {
    /// Read a policy's `plugin = "…"`: a bundled name, or else a path
    /// (relative paths against `base_dir`, the policy file's folder).
    pub fn parse(spec: &str, base_dir: &Path) -> PluginSource {
        if super::kind::bundled_plugin(spec).is_some() {
            return PluginSource::Bundled(spec.to_string());
        }
        let path = Path::new(spec);
        PluginSource::File(if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) })
    }

    /// A short name for log lines: the bundled name or the file stem.
    pub fn name(&self) -> String {
        match self {
            PluginSource::Bundled(n) => n.clone(),
            PluginSource::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        }
    }

    /// How a user recognises it in a message.
    pub fn describe(&self) -> String {
        match self {
            PluginSource::Bundled(n) => format!("bundled plugin `{n}`"),
            PluginSource::File(p) => format!("plugin file {}", p.display()),
        }
    }
}

/// Why a plugin could not be loaded or configured.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No bundled plugin by that name and no such file.
    #[error("{source_desc}: not found (bundled plugins are: {bundled}); give a bundled name or a path to a .wasm component")]
    NotFound {
        /// The plugin as named.
        source_desc: String,
        /// The bundled names.
        bundled: String,
    },
    /// The file could not be read.
    #[error("{source_desc}: cannot read it: {cause}")]
    Read {
        /// The plugin as named.
        source_desc: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The bytes are not a WebAssembly component wasmtime can compile.
    #[error("{source_desc}: not a valid WebAssembly component: {cause}")]
    Compile {
        /// The plugin as named.
        source_desc: String,
        /// wasmtime's message.
        cause: String,
    },
    /// A component, but not one of the world it is used as (another world,
    /// another version, a missing export, an import the sandbox lacks).
    #[error("{source_desc} does not fit the world {expected}: {cause}")]
    WrongWorld {
        /// The plugin as named.
        source_desc: String,
        /// The world it had to implement.
        expected: &'static str,
        /// The world's short name.
        kind: PluginKind,
        /// What did not match.
        cause: String,
    },
    /// The plugin's `configure` refused its table from the policy.
    #[error("{source_desc} rejected its config: {message}")]
    ConfigRejected {
        /// The plugin as named.
        source_desc: String,
        /// The plugin's own message.
        message: String,
    },
    /// The plugin trapped or timed out while starting or configuring.
    #[error("{source_desc} failed while starting: {cause}")]
    Start {
        /// The plugin as named.
        source_desc: String,
        /// The trap or error.
        cause: String,
    },
}

/// Limits and places for the runtime.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Folder for compiled components (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Longest a single plugin call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Largest linear memory a plugin instance may have, bytes.
    pub memory_limit: usize,
    /// Calls after which a warm instance is replaced by a fresh one
    /// (linear memory never shrinks).
    pub recycle_after_calls: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            call_timeout: Duration::from_millis(100),
            memory_limit: 64 << 20,
            recycle_after_calls: 1_000_000,
        }
    }
}

/// Epoch tick period: the granularity of call deadlines.
const TICK: Duration = Duration::from_millis(5);

/// The shared wasmtime engine and everything plugins have in common.
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) options: EngineOptions,
    /// Deadline of one call, in epoch ticks.
    pub(crate) deadline_ticks: u64,
}

impl PluginEngine {
    /// Start the engine and its epoch ticker thread (which stops when the
    /// engine is dropped).
    pub fn new(options: EngineOptions) -> anyhow::Result<Arc<PluginEngine>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("starting wasmtime: {e}"))?;
        let linker = linker(&engine).map_err(|e| anyhow::anyhow!("linking host imports: {e}"))?;
        let deadline_ticks = (options.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64 + 1;
        let me = Arc::new(PluginEngine { engine, linker, options, deadline_ticks });
        spawn_ticker(Arc::downgrade(&me));
        Ok(me)
    }

    /// The engine for a config: its compile cache, call timeout and memory
    /// limit (`[plugins]`).
    pub fn for_config(config: &crate::config::Config) -> anyhow::Result<Arc<PluginEngine>> {
        PluginEngine::new(EngineOptions {
            cache_dir: Some(config.plugin_cache_dir()),
            call_timeout: Duration::from_millis(config.plugins.call_timeout_ms),
            memory_limit: config.plugins.memory_limit_mib << 20,
            ..EngineOptions::default()
        })
    }

    /// The options in force.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// A fresh store for one plugin instance: its memory limit, and a call
    /// deadline that traps (set again before every call).
    pub(crate) fn store(&self, plugin: Arc<str>) -> wasmtime::Store<HostState> {
        let mut store = wasmtime::Store::new(&self.engine, HostState::new(plugin, self.options.memory_limit));
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        store
    }

    /// Read, compile (or fetch from the cache) and link a component,
    /// checking its imports against what the host offers.
    pub(crate) fn prepare(
        &self,
        source: &PluginSource,
        kind: PluginKind,
    ) -> Result<InstancePre<HostState>, PluginError> {
        let bytes: std::borrow::Cow<'static, [u8]> = match source {
            PluginSource::Bundled(name) => match super::kind::bundled_plugin(name) {
                Some((_, b)) => b.into(),
                None => return Err(not_found(source)),
            },
            PluginSource::File(path) => match std::fs::read(path) {
                Ok(b) => b.into(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(source)),
                Err(cause) => return Err(PluginError::Read { source_desc: source.describe(), cause }),
            },
        };
        let component = self.compile_cached(source, &bytes)?;
        self.linker.instantiate_pre(&component).map_err(|e| self.wrong_world(source, &component, kind, &e))
    }

    /// The error for a component that does not fit `kind`'s world, with the
    /// cause read from the component itself.
    pub(crate) fn wrong_world(&self, source: &PluginSource, component: &Component, kind: PluginKind, e: &wasmtime::Error) -> PluginError {
        let says = format!("{e:#}");
        tracing::debug!(plugin = %source.name(), wasmtime = %says, "component refused");
        PluginError::WrongWorld {
            source_desc: source.describe(),
            expected: kind.world(),
            kind,
            cause: super::diagnose::mismatch(&self.engine, component, kind, &says),
        }
    }

    fn compile_cached(&self, source: &PluginSource, bytes: &[u8]) -> Result<Component, PluginError> {
        let compile = || {
            Component::new(&self.engine, bytes).map_err(|e| PluginError::Compile {
                source_desc: source.describe(),
                cause: format!("{e:#}"),
            })
        };
        let Some(dir) = &self.options.cache_dir else { return compile() };
        let path = dir.join(format!("{}.cwasm", self.cache_key(bytes)));
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (part of the key), in
            // our own data directory.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => {
                    tracing::debug!(plugin = %source.name(), cache = %path.display(), "plugin loaded from compile cache");
                    return Ok(c);
                }
                Err(e) => tracing::warn!(file = %path.display(), "ignoring unusable compile cache entry: {e}"),
            }
        }
        let component = compile()?;
        if let Err(e) = write_cache(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), "cannot write the plugin compile cache: {e}");
        }
        Ok(component)
    }

    /// sha256 of the component and the engine's compatibility hash: a new
    /// wasmtime version or different engine settings never reuse old code.
    fn cache_key(&self, bytes: &[u8]) -> String {
        let digest = Sha256::digest(bytes);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{hex}-{:016x}", h.finish())
    }
}

fn not_found(source: &PluginSource) -> PluginError {
    PluginError::NotFound {
        source_desc: source.describe(),
        bundled: super::kind::bundled().iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", "),
    }
}

fn write_cache(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.persist(path)?;
    Ok(())
}

fn spawn_ticker(engine: Weak<PluginEngine>) {
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match engine.upgrade() {
                Some(e) => e.engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn the plugin epoch thread");
}

/// Turn a wasmtime call error into a short description for logs (the
/// wasm backtrace is left out: it helps nobody reading the proxy's log).
pub(crate) fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => "timed out (call deadline reached)".to_string(),
            wasmtime::Trap::UnreachableCodeReached => {
                "trapped: it panicked, raised an uncaught exception or aborted (unreachable reached; the plugin's own log lines before this one may say why)".to_string()
            }
            other => format!("trapped: {other}"),
        };
    }
    let root = e.root_cause().to_string();
    if root.contains("growing memory") {
        return format!("trapped: went over its memory limit ({root})");
    }
    format!("trapped: {root}")
}
