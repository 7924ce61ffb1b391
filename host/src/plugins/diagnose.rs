//! Why a component does not fit the world it is named for, in words that
//! hold whatever language built it: another world, another version of
//! `grantpool:plugin`, a missing export, or an import the sandbox does not
//! offer. Read from the component's own imports and exports.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

use super::kind::PluginKind;

/// The WIT package and version this host speaks.
pub const PACKAGE: &str = "grantpool:plugin";
/// Its version.
pub const VERSION: &str = "0.1.0";

/// The exported interface of a world and the functions it must have.
fn interface(kind: PluginKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        PluginKind::Selector => ("selection", &["configure", "observe", "select"]),
        PluginKind::Classifier => ("classification", &["configure", "classify"]),
    }
}

fn other(kind: PluginKind) -> PluginKind {
    match kind {
        PluginKind::Selector => PluginKind::Classifier,
        PluginKind::Classifier => PluginKind::Selector,
    }
}

/// `grantpool:plugin/selection@0.2.0` → `("selection", Some("0.2.0"))`.
fn grantpool_item(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (rest, None),
    })
}

/// The cause, for a component that `kind`'s bindings (or the linker)
/// refused with `wasmtime_says`.
pub fn mismatch(engine: &Engine, component: &Component, kind: PluginKind, wasmtime_says: &str) -> String {
    let ty = component.component_type();
    let (want, funcs) = interface(kind);
    let (other_iface, _) = interface(other(kind));
    let exports: Vec<(String, ComponentItem)> = ty.exports(engine).map(|(n, e)| (n.to_string(), e.ty)).collect();
    for (name, item) in &exports {
        let Some((iface, version)) = grantpool_item(name) else { continue };
        if iface == other_iface {
            return format!(
                "it is a {} (it exports {name}), not a {kind}: name it in {} instead",
                other(kind),
                match other(kind) {
                    PluginKind::Selector => "the [selector] table",
                    PluginKind::Classifier => "a [[classifier]] entry",
                }
            );
        }
        if iface != want {
            continue;
        }
        if version != Some(VERSION) {
            return format!(
                "it was built against {PACKAGE}@{} (it exports {name}); this grantpool speaks {PACKAGE}@{VERSION}: rebuild it with this grantpool's WIT and SDK (`grantpool plugin new` writes a project with both)",
                version.unwrap_or("(no version)")
            );
        }
        if let ComponentItem::ComponentInstance(inst) = item {
            let has: Vec<String> = inst.exports(engine).map(|(n, _)| n.to_string()).collect();
            let missing: Vec<&str> = funcs.iter().copied().filter(|f| !has.iter().any(|h| h == f)).collect();
            if !missing.is_empty() {
                return format!(
                    "it exports {name} without {}: a missing export (build it from wit/grantpool-plugin.wit's world `{kind}` unchanged)",
                    missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    // The imports: another version of the host interface, or something the
    // sandbox does not offer (named in wasmtime's message).
    for (name, _) in ty.imports(engine) {
        if let Some(("host" | "types", Some(v))) = grantpool_item(name) {
            if v != VERSION {
                return format!(
                    "it was built against {PACKAGE}@{v} (it imports {name}); this grantpool speaks {PACKAGE}@{VERSION}: rebuild it with this grantpool's WIT and SDK"
                );
            }
        }
    }
    if let Some(import) = wasmtime_says.split('`').nth(1).filter(|_| wasmtime_says.contains("import")) {
        return format!(
            "it imports {import}, which the sandbox does not offer (a plugin gets {PACKAGE}/host and an empty WASI: no files, network or environment): {wasmtime_says}"
        );
    }
    if !exports.iter().any(|(n, _)| grantpool_item(n).is_some()) {
        let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
        return format!(
            "it exports none of {PACKAGE}'s interfaces (its exports: {}); build it for wit/grantpool-plugin.wit's world `{kind}`",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
    }
    format!("its exports do not match the world `{kind}` of {PACKAGE}@{VERSION} (a changed signature?): {wasmtime_says}")
}
