//! `grantpool plugin new`: write a standalone plugin project from the
//! templates and SDKs carried in the binary. Nothing in it points back at a
//! grantpool checkout: a Rust project vendors the SDK and pins every crate
//! in its `Cargo.lock`; a Python project vendors the Python SDK and the WIT.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::embedded as e;
use super::manifest::{check_name, Lang, Manifest, MANIFEST};
use super::toolchain::COMPONENTIZE_PY_VERSION;
use crate::plugins::PluginKind;

/// A project just written.
#[derive(Debug)]
pub struct NewProject {
    /// Its folder (absolute).
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The file to edit (the decision), relative to `dir`.
    pub source: &'static str,
    /// Every file written, relative to `dir`, in order.
    pub files: Vec<String>,
}

/// Write a new `kind` plugin in `lang` named `name` into `dir` (created;
/// it must be absent or empty). `shown_dir` is the folder as the user
/// typed it, for the README's commands.
pub fn write_project(name: &str, kind: PluginKind, lang: Lang, dir: &Path, shown_dir: &str) -> anyhow::Result<NewProject> {
    check_name(name)?;
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            anyhow::bail!("{} exists and is not empty; nothing was written (give another --dir, or remove it)", dir.display());
        }
    } else if dir.exists() {
        anyhow::bail!("{} exists and is not a folder; nothing was written (give another --dir)", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let manifest = Manifest::new(name, kind, lang);
    let wasm = match lang {
        Lang::Rust => dir.join("target/wasm32-wasip2/release").join(format!("{}.wasm", manifest.stem())),
        Lang::Python => dir.join("build").join(format!("{}.wasm", manifest.stem())),
    };
    let vars = Vars::new(&manifest, &wasm, shown_dir);
    let mut files: Vec<(String, String)> = vec![(MANIFEST.into(), manifest.render())];
    let source = match lang {
        Lang::Rust => {
            let lib = match kind {
                PluginKind::Selector => e::RUST_SELECTOR,
                PluginKind::Classifier => e::RUST_CLASSIFIER,
            };
            files.push(("src/lib.rs".into(), lib.into()));
            files.push(("Cargo.toml".into(), vars.fill(e::CARGO_TOML)));
            files.push(("Cargo.lock".into(), cargo_lock(&manifest.name)?));
            files.push(("sdk/Cargo.toml".into(), vars.fill(e::SDK_CARGO_TOML)));
            for (path, text) in e::RUST_SDK {
                let text = if *path == "src/lib.rs" { vendored_sdk_lib(text)? } else { text.to_string() };
                files.push((format!("sdk/{path}"), text));
            }
            files.push(("sdk/wit/grantpool-plugin.wit".into(), e::WIT.into()));
            files.push(("README.md".into(), vars.fill(e::README_RUST)));
            files.push((".gitignore".into(), e::GITIGNORE_RUST.into()));
            "src/lib.rs"
        }
        Lang::Python => {
            let app = match kind {
                PluginKind::Selector => e::PYTHON_SELECTOR,
                PluginKind::Classifier => e::PYTHON_CLASSIFIER,
            };
            files.push(("src/app.py".into(), app.into()));
            for (path, text) in e::PYTHON_SDK {
                files.push((format!("lib/{path}"), text.to_string()));
            }
            files.push(("wit/grantpool-plugin.wit".into(), e::WIT.into()));
            files.push(("README.md".into(), vars.fill(e::README_PYTHON)));
            files.push((".gitignore".into(), e::GITIGNORE_PYTHON.into()));
            "src/app.py"
        }
    };
    let case = match kind {
        PluginKind::Selector => e::CASE_SELECTOR,
        PluginKind::Classifier => e::CASE_CLASSIFIER,
    };
    files.push(("case.json".into(), case.into()));
    files.push(("policy-snippet.toml".into(), policy_snippet(kind, &wasm)));
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&full, text).with_context(|| format!("cannot write {}", full.display()))?;
    }
    tracing::debug!(dir = %dir.display(), %lang, %kind, files = files.len(), "plugin project written");
    Ok(NewProject { dir, manifest, source, files: files.into_iter().map(|(p, _)| p).collect() })
}

/// The lines that name a built plugin in `policy.toml`.
pub fn policy_snippet(kind: PluginKind, wasm: &Path) -> String {
    let path = toml::Value::String(wasm.display().to_string());
    match kind {
        PluginKind::Selector => format!("[selector]\nplugin = {path}\n"),
        PluginKind::Classifier => format!(
            "[[classifier]]\nplugin = {path}\n\n# What the plugin leaves unanswered goes on to the bundled rules.\n[[classifier]]\nplugin = \"default\"\n"
        ),
    }
}

/// The values the scaffold's `{{…}}` placeholders take.
struct Vars(Vec<(&'static str, String)>);

impl Vars {
    fn new(m: &Manifest, wasm: &Path, shown_dir: &str) -> Vars {
        Vars(vec![
            ("name", m.name.clone()),
            ("crate", m.stem()),
            ("kind", m.kind.to_string()),
            ("wasm", wasm.display().to_string()),
            ("dir", shown_dir.to_string()),
            ("grantpool_version", env!("CARGO_PKG_VERSION").to_string()),
            ("componentize_py_version", COMPONENTIZE_PY_VERSION.to_string()),
            ("serde_version", locked_version("serde")),
            ("serde_json_version", locked_version("serde_json")),
            ("wit_bindgen_version", locked_version("wit-bindgen")),
        ])
    }

    fn fill(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (key, value) in &self.0 {
            out = out.replace(&format!("{{{{{key}}}}}"), value);
        }
        debug_assert!(!out.contains("{{"), "unfilled placeholder in:\n{out}");
        out
    }
}

fn lock_packages() -> Vec<toml::Table> {
    let lock: toml::Table = e::PLUGINS_LOCK.parse().expect("plugins/Cargo.lock is TOML");
    let packages = lock.get("package").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    packages.into_iter().filter_map(|p| p.as_table().cloned()).collect()
}

/// The version of `name` in the plugins workspace's lock.
fn locked_version(name: &str) -> String {
    lock_packages()
        .iter()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .and_then(|p| p.get("version")?.as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("plugins/Cargo.lock has no `{name}`"))
}

/// A `Cargo.lock` for a new project: every registry crate of the plugins
/// workspace's lock (cargo drops the ones the project does not use), the
/// vendored SDK and the project itself.
fn cargo_lock(name: &str) -> anyhow::Result<String> {
    let mut packages: Vec<toml::Value> = Vec::new();
    for p in lock_packages() {
        let pname = p.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        if p.contains_key("source") || pname == "grantpool-plugin-sdk" {
            packages.push(toml::Value::Table(p));
        }
    }
    let mut own = toml::Table::new();
    own.insert("name".into(), name.into());
    own.insert("version".into(), "0.1.0".into());
    own.insert("dependencies".into(), toml::Value::Array(vec!["grantpool-plugin-sdk".into(), "serde".into()]));
    packages.push(toml::Value::Table(own));
    let mut lock = toml::Table::new();
    lock.insert("version".into(), 4.into());
    lock.insert("package".into(), toml::Value::Array(packages));
    Ok(format!(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\n{}",
        toml::to_string(&lock)?
    ))
}

/// The SDK's `lib.rs` reads the WIT from the repository's `wit/`; the
/// vendored copy reads its own `sdk/wit/`.
fn vendored_sdk_lib(text: &str) -> anyhow::Result<String> {
    const REPO: &str = r#"path: "../../wit""#;
    if text.matches(REPO).count() != 2 {
        anyhow::bail!("internal: the SDK's lib.rs no longer names its WIT as {REPO}; grantpool cannot vendor it");
    }
    Ok(text.replace(REPO, r#"path: "wit""#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_sdk_reads_its_own_wit() {
        let lib = e::RUST_SDK.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        let v = vendored_sdk_lib(lib).unwrap();
        assert!(v.contains(r#"path: "wit""#) && !v.contains("../../wit"));
    }

    #[test]
    fn a_project_lock_pins_the_workspace_versions() {
        let lock = cargo_lock("my-plugin").unwrap();
        let t: toml::Table = lock.parse().unwrap();
        let pkgs = t["package"].as_array().unwrap();
        let find = |n: &str| pkgs.iter().find(|p| p["name"].as_str() == Some(n)).cloned();
        assert_eq!(find("wit-bindgen").unwrap()["version"].as_str().unwrap(), locked_version("wit-bindgen"));
        assert!(find("grantpool-plugin-sdk").is_some() && find("my-plugin").is_some());
        assert!(find("round-robin").is_none(), "workspace members are not carried");
    }

    #[test]
    fn writes_a_project_and_refuses_a_full_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let p = write_project("my-sel", PluginKind::Selector, Lang::Python, &dir, "p").unwrap();
        for f in ["src/app.py", "lib/grantpool_plugin/selector.py", "wit/grantpool-plugin.wit", "case.json", "policy-snippet.toml", "README.md", MANIFEST] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        assert_eq!(p.manifest, Manifest::read(&dir).unwrap());
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(!readme.contains("{{") && readme.contains("my-sel"), "{readme}");
        let err = write_project("my-sel", PluginKind::Selector, Lang::Python, &dir, "p").unwrap_err().to_string();
        assert!(err.contains("not empty") && err.contains("nothing was written"), "{err}");

        let dir = tmp.path().join("r");
        write_project("my-cls", PluginKind::Classifier, Lang::Rust, &dir, "r").unwrap();
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-cls\"") && cargo.contains("[workspace]") && !cargo.contains("{{"), "{cargo}");
        let sdk = std::fs::read_to_string(dir.join("sdk/Cargo.toml")).unwrap();
        assert!(sdk.contains(&format!("wit-bindgen = \"={}\"", locked_version("wit-bindgen"))), "{sdk}");
        let snippet = std::fs::read_to_string(dir.join("policy-snippet.toml")).unwrap();
        assert!(snippet.starts_with("[[classifier]]") && snippet.contains("my_cls.wasm"), "{snippet}");
    }
}
