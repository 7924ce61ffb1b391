//! One warm instance of a plugin, for either world: loaded and configured
//! once, kept behind a short lock, recycled after many calls (linear memory
//! never shrinks), and rebuilt after a trap (a trap poisons an instance).
//! Every call into it runs under the engine's epoch deadline.

use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::component::InstancePre;
use wasmtime::Store;

use super::bindings::HostState;
use super::engine::{describe_trap, PluginEngine, PluginError, PluginSource};
use super::kind::PluginKind;

/// What differs between the two worlds: how their bindings are made and
/// configured.
pub(super) trait World {
    /// The world's pre-instantiated component (`SelectorPre`, …).
    type Pre;
    /// The world's bindings (`Selector`, …).
    type Bindings;
    /// What `configure` answers on success.
    type Configured: Clone;
    /// Per-instance host state (e.g. how far the instance has seen events).
    type State: Default;
    /// The world.
    const KIND: PluginKind;

    /// Typed pre-instance of a linked component.
    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    /// A new instance.
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings>;
    /// Its `configure` call.
    fn configure(
        bindings: &Self::Bindings,
        store: &mut Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<Self::Configured, String>>;
}

/// Implements [`World`] for a world's generated bindings: the world type,
/// its kind, `Pre` and bindings types, what `configure` answers, the
/// per-instance state, and the exported interface's accessor.
macro_rules! world {
    ($world:ident, $kind:expr, $pre:ident, $bindings:ty, $configured:ty, $state:ty, $iface:ident) => {
        impl $crate::plugins::warm::World for $world {
            type Pre = $pre<$crate::plugins::bindings::HostState>;
            type Bindings = $bindings;
            type Configured = $configured;
            type State = $state;
            const KIND: $crate::plugins::kind::PluginKind = $kind;

            fn pre(pre: wasmtime::component::InstancePre<$crate::plugins::bindings::HostState>) -> wasmtime::Result<Self::Pre> {
                $pre::new(pre)
            }
            fn instantiate(pre: &Self::Pre, store: &mut wasmtime::Store<$crate::plugins::bindings::HostState>) -> wasmtime::Result<$bindings> {
                pre.instantiate(store)
            }
            fn configure(
                b: &$bindings,
                store: &mut wasmtime::Store<$crate::plugins::bindings::HostState>,
                config: &str,
            ) -> wasmtime::Result<Result<$configured, String>> {
                b.$iface().call_configure(store, config)
            }
        }
    };
}
pub(super) use world;

/// A live instance of a plugin.
pub(super) struct Instance<W: World> {
    store: Store<HostState>,
    bindings: W::Bindings,
    /// The host's state for this instance.
    pub state: W::State,
    calls: u64,
    deadline_ticks: u64,
}

impl<W: World> Instance<W> {
    /// The store with a fresh call deadline, and the bindings: what one
    /// call into the guest takes.
    pub fn arm(&mut self) -> (&mut Store<HostState>, &W::Bindings) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        (&mut self.store, &self.bindings)
    }
}

/// Why a call did not come back with an answer (already logged by the caller).
#[derive(Debug)]
pub(super) enum CallFailed {
    /// The instance could not be rebuilt.
    Restart(PluginError),
    /// The guest trapped or timed out during `during` (`select`, …); the
    /// instance was dropped and is rebuilt on the next call.
    Trapped {
        /// The export that was running.
        during: &'static str,
        /// What happened.
        cause: String,
    },
}

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailed::Restart(e) => write!(f, "cannot restart: {e}"),
            CallFailed::Trapped { during, cause } => write!(f, "failed in {during}: {cause}"),
        }
    }
}

/// A loaded, configured plugin with one warm instance.
pub(super) struct Warm<W: World> {
    name: Arc<str>,
    source: PluginSource,
    engine: Arc<PluginEngine>,
    pre: W::Pre,
    config: String,
    configured: W::Configured,
    slot: Mutex<Option<Instance<W>>>,
}

impl<W: World> Warm<W> {
    /// Load `source` as a plugin of world `W` and run its `configure` with
    /// `config` (a JSON object). Fails with a message naming the plugin when
    /// it is missing, of another world, or refuses the config.
    pub fn load(engine: &Arc<PluginEngine>, source: &PluginSource, config: &str) -> Result<Self, PluginError> {
        let pre = engine.prepare(source, W::KIND)?;
        let component = pre.component().clone();
        let pre = W::pre(pre).map_err(|e| engine.wrong_world(source, &component, W::KIND, &e))?;
        let name: Arc<str> = source.name().into();
        let (instance, configured) = instantiate::<W>(engine, &name, source, &pre, config)?;
        Ok(Warm {
            name,
            source: source.clone(),
            engine: engine.clone(),
            pre,
            config: config.to_string(),
            configured,
            slot: Mutex::new(Some(instance)),
        })
    }

    /// The plugin's short name (bundled name or file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    /// What its `configure` answered (a rebuilt instance runs the same code
    /// on the same config: the first answer is kept).
    pub fn configured(&self) -> &W::Configured {
        &self.configured
    }

    /// Run `f` on the warm instance (built first when there is none, or
    /// when it is due for recycling). `f` returns the export that trapped
    /// with its error; the instance is then dropped.
    pub fn call<R>(
        &self,
        f: impl FnOnce(&mut Instance<W>) -> Result<R, (&'static str, wasmtime::Error)>,
    ) -> Result<R, CallFailed> {
        let mut slot = self.slot.lock();
        let recycle = slot.as_ref().is_some_and(|i| i.calls >= self.engine.options.recycle_after_calls);
        if slot.is_none() || recycle {
            let (instance, _) = instantiate::<W>(&self.engine, &self.name, &self.source, &self.pre, &self.config)
                .map_err(CallFailed::Restart)?;
            *slot = Some(instance);
        }
        let instance = slot.as_mut().expect("instance present");
        instance.calls += 1;
        f(instance).map_err(|(during, e)| {
            *slot = None;
            CallFailed::Trapped { during, cause: describe_trap(&e) }
        })
    }
}

/// A configured instance and what `configure` answered.
fn instantiate<W: World>(
    engine: &PluginEngine,
    name: &Arc<str>,
    source: &PluginSource,
    pre: &W::Pre,
    config: &str,
) -> Result<(Instance<W>, W::Configured), PluginError> {
    let start = |cause: String| PluginError::Start { source_desc: source.describe(), cause };
    let mut store = engine.store(name.clone());
    let bindings = W::instantiate(pre, &mut store).map_err(|e| start(describe_trap(&e)))?;
    store.set_epoch_deadline(engine.deadline_ticks);
    match W::configure(&bindings, &mut store, config) {
        Ok(Ok(configured)) => Ok((
            Instance { store, bindings, state: W::State::default(), calls: 0, deadline_ticks: engine.deadline_ticks },
            configured,
        )),
        Ok(Err(message)) => Err(PluginError::ConfigRejected { source_desc: source.describe(), message }),
        Err(e) => Err(start(describe_trap(&e))),
    }
}
