//! `policy.toml` → a running [`Policy`] (selector + classifier chain +
//! guard settings), and the [`PolicyHandle`] that swaps it atomically when
//! the file (or a plugin it names) changes.
//!
//! A policy that fails to parse, or whose plugin fails to load or to accept
//! its config, is refused with file, line and cause; the running policy stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::plugins::{ClassifierPlugin, PluginEngine, PluginError, PluginSource, SelectorPlugin};

pub mod spec;

pub use spec::{ClassifierMode, Entry, GuardSettings, QuotaProtection, SpecError, DEFAULT_POLICY};

/// Why a policy was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("policy {file}: cannot read it: {cause}")]
    Read {
        /// The policy file.
        file: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// Not valid TOML, or an unknown/mistyped key.
    #[error("policy {file}: {cause}")]
    Parse {
        /// The policy file.
        file: String,
        /// toml's message (with line and column).
        cause: String,
    },
    /// A plugin it names could not be loaded or configured.
    #[error("policy {file}, line {line}: {cause}")]
    Plugin {
        /// The policy file.
        file: String,
        /// Line of the `plugin = …` key.
        line: usize,
        /// What went wrong.
        cause: PluginError,
    },
    /// A value is out of range.
    #[error("policy {file}, line {line}: {cause}")]
    Invalid {
        /// The policy file.
        file: String,
        /// Line of the value.
        line: usize,
        /// What is wrong.
        cause: String,
    },
}

impl PolicyError {
    /// The file the error is in.
    pub fn file(&self) -> &str {
        match self {
            PolicyError::Read { file, .. } | PolicyError::Parse { file, .. } | PolicyError::Plugin { file, .. } | PolicyError::Invalid { file, .. } => file,
        }
    }

    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Read { .. } => None,
            // toml says "TOML parse error at line 3, column 5".
            PolicyError::Parse { cause, .. } => {
                let rest = &cause[cause.find("line ")? + 5..];
                rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())].parse().ok()
            }
            PolicyError::Plugin { line, .. } | PolicyError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// How the last reload of the policy went (the accounts page shows it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadRecord {
    /// When, Unix ms.
    pub at_ms: u64,
    /// The new policy is in force.
    pub ok: bool,
    /// Why it was refused (file, line and cause), when it was.
    pub error: Option<String>,
    /// The file the error is in.
    pub file: Option<String>,
    /// The line the error points at.
    pub line: Option<usize>,
}

/// One classifier of the chain.
pub struct ChainLink {
    /// The plugin.
    pub plugin: ClassifierPlugin,
    /// Act or shadow.
    pub mode: ClassifierMode,
}

/// A loaded policy: every plugin instantiated and configured.
pub struct Policy {
    /// Where it came from (`None`: the bundled default).
    pub file: Option<PathBuf>,
    /// The selector.
    pub selector: SelectorPlugin,
    /// The selector's config, as JSON (`{}` when none).
    pub selector_config: String,
    /// The classifier chain, in order: the first answer wins.
    pub classifiers: Vec<ChainLink>,
    /// The disable-storm guard.
    pub guard: GuardSettings,
    /// Quota protection.
    pub quota_protection: QuotaProtection,
    /// Plugin files it uses (watched for changes).
    pub plugin_files: Vec<PathBuf>,
}

impl Policy {
    /// Parse `text` (from `file`, for messages and relative plugin paths)
    /// and load every plugin it names.
    pub fn load(engine: &Arc<PluginEngine>, text: &str, file: Option<&Path>) -> Result<Policy, PolicyError> {
        let file_desc = file.map(|f| f.display().to_string()).unwrap_or_else(|| "(bundled default)".into());
        let base = file.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let spec = spec::parse(text).map_err(|e| match e {
            SpecError::Parse(cause) => PolicyError::Parse { file: file_desc.clone(), cause },
            SpecError::Invalid { line, cause } => PolicyError::Invalid { file: file_desc.clone(), line, cause },
        })?;
        let mut plugin_files = Vec::new();
        let mut source_of = |entry: &Entry| {
            let source = PluginSource::parse(&entry.plugin, &base);
            if let PluginSource::File(p) = &source {
                plugin_files.push(p.clone());
            }
            source
        };
        // A rejected config points at the config's line, anything else at
        // the plugin's.
        let plugin_err = |entry: &Entry, cause: PluginError| {
            let line = if matches!(cause, PluginError::ConfigRejected { .. }) { entry.config_line } else { entry.line };
            PolicyError::Plugin { file: file_desc.clone(), line, cause }
        };
        let selector = SelectorPlugin::load(engine, &source_of(&spec.selector), &spec.selector.config_json).map_err(|e| plugin_err(&spec.selector, e))?;
        let mut classifiers = Vec::new();
        for c in &spec.classifiers {
            let plugin = ClassifierPlugin::load(engine, &source_of(c), &c.config_json).map_err(|e| plugin_err(c, e))?;
            classifiers.push(ChainLink { plugin, mode: c.mode });
        }
        if classifiers.is_empty() {
            // No chain at all would mean no invalid_grant handling: run the
            // bundled default, as a policy without [[classifier]] expects.
            let plugin = ClassifierPlugin::load(engine, &PluginSource::Bundled("default".into()), "{}")
                .map_err(|e| PolicyError::Plugin { file: file_desc.clone(), line: 1, cause: e })?;
            classifiers.push(ChainLink { plugin, mode: ClassifierMode::Act });
        }
        Ok(Policy {
            file: file.map(Path::to_path_buf),
            selector,
            selector_config: spec.selector.config_json.clone(),
            classifiers,
            guard: spec.guard,
            quota_protection: spec.quota_protection,
            plugin_files,
        })
    }

    /// Read and load a policy file, or the bundled default when `None`.
    pub fn load_file(engine: &Arc<PluginEngine>, file: Option<&Path>) -> Result<Policy, PolicyError> {
        match file {
            None => Policy::load(engine, DEFAULT_POLICY, None),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|cause| PolicyError::Read { file: path.display().to_string(), cause })?;
                Policy::load(engine, &text, Some(path))
            }
        }
    }

    /// One line per plugin: what this policy runs.
    pub fn describe(&self) -> String {
        let asked: Vec<&str> = [
            (self.selector.wants_outcomes(), "request outcomes"),
            (self.selector.wants_sessions(), "session ids"),
            (self.selector.wants_quota(), "quota"),
        ]
        .into_iter()
        .filter_map(|(wanted, what)| wanted.then_some(what))
        .collect();
        let sent = if asked.is_empty() { "nothing beyond the pool".to_string() } else { asked.join(", ") };
        let config = if self.selector_config == "{}" { String::new() } else { format!(" {}", self.selector_config) };
        let mut out = format!("selector: {}{config} ({}); it asks for {sent}", self.selector.name(), self.selector.source().describe());
        if self.file.is_none() {
            out.push_str("\n(the bundled default: a conversation stays on the account that served its first turn while it can serve, else moves to the least-busy account for good; name another [selector] in a policy file to change it)");
        }
        for (i, c) in self.classifiers.iter().enumerate() {
            let mode = if c.mode == ClassifierMode::Shadow { " [shadow]" } else { "" };
            out.push_str(&format!("\nclassifier {}: {} ({}){mode}", i + 1, c.plugin.name(), c.plugin.source().describe()));
        }
        if self.quota_protection.enabled {
            out.push_str(&format!("\nquota protection: under {:.0}%", self.quota_protection.threshold * 100.0));
        }
        out
    }
}

/// The policy in force, swapped atomically on reload. Readers clone the
/// `Arc` and keep using the policy they got (in-flight requests finish on
/// the old one).
pub struct PolicyHandle {
    current: RwLock<Arc<Policy>>,
    engine: Arc<PluginEngine>,
    file: Option<PathBuf>,
    generation: std::sync::atomic::AtomicU64,
    last_reload: RwLock<Option<ReloadRecord>>,
}

impl PolicyHandle {
    /// Wrap a loaded policy.
    pub fn new(engine: Arc<PluginEngine>, policy: Policy) -> Self {
        let file = policy.file.clone();
        PolicyHandle { current: RwLock::new(Arc::new(policy)), engine, file, generation: 0.into(), last_reload: RwLock::new(None) }
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current.read().clone()
    }

    /// Counts reloads, swapped or refused (a change means: look again).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The policy file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// How the last reload went (`None`: no reload since start).
    pub fn last_reload(&self) -> Option<ReloadRecord> {
        self.last_reload.read().clone()
    }

    /// Re-read the file and swap if it loads; on error the running policy
    /// stays and the error is returned (and logged).
    pub fn reload(&self) -> Result<Arc<Policy>, PolicyError> {
        let at_ms = crate::util::now_ms();
        match Policy::load_file(&self.engine, self.file.as_deref()) {
            Ok(p) => {
                let p = Arc::new(p);
                *self.current.write() = p.clone();
                *self.last_reload.write() = Some(ReloadRecord { at_ms, ok: true, error: None, file: p.file.as_ref().map(|f| f.display().to_string()), line: None });
                self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("policy reloaded:\n{}", p.describe());
                Ok(p)
            }
            Err(e) => {
                tracing::error!("policy refused, the running policy stays: {e}");
                *self.last_reload.write() = Some(ReloadRecord { at_ms, ok: false, error: Some(e.to_string()), file: Some(e.file().to_string()), line: e.line() });
                // Watchers of the policy hear of a refusal too.
                self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Watch the policy file and the plugin files it names; reload on change
    /// (debounced). Runs until the handle is dropped.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watched_file = file.clone();
        let me = Arc::downgrade(self);
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let Some(handle) = me.upgrade() else { return };
            let plugins = handle.current().plugin_files.clone();
            let relevant = event.paths.iter().any(|p| {
                p == &watched_file || p.file_name() == watched_file.file_name() || plugins.iter().any(|w| w == p)
            });
            if relevant {
                let _ = tx.send(());
            }
        })?;
        use notify::Watcher;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        for p in &self.current().plugin_files {
            if let Some(d) = p.parent() {
                if d != dir {
                    let _ = watcher.watch(d, notify::RecursiveMode::NonRecursive);
                }
            }
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let _watcher = watcher;
            while rx.recv().await.is_some() {
                // Debounce: editors write in several steps.
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                while rx.try_recv().is_ok() {}
                let Some(handle) = me.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || handle.reload()).await;
            }
        });
        Ok(())
    }
}
