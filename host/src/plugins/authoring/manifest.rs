//! `grantpool-plugin.toml`: what a plugin project is, so `grantpool plugin
//! build` knows how to build it and what the policy line says.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugins::PluginKind;

/// The manifest's file name, at the root of a plugin project.
pub const MANIFEST: &str = "grantpool-plugin.toml";

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// A cdylib crate built with cargo for `wasm32-wasip2`.
    Rust,
    /// An `app.py` module built with componentize-py.
    Python,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" => Ok(Lang::Python),
            other => Err(format!("unknown language `{other}`: rust or python")),
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        })
    }
}

/// A plugin project's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name (a Rust project's package name; a Python
    /// project's `.wasm` is `build/<name with _>.wasm`).
    pub name: String,
    /// `selector` or `classifier`.
    #[serde(with = "kind_text")]
    pub kind: PluginKind,
    /// `rust` or `python`.
    pub lang: Lang,
    /// Python: the folder holding the WIT (default `wit`).
    #[serde(default = "default_wit", skip_serializing_if = "is_default_wit")]
    pub wit: PathBuf,
    /// Python: where the app module and the SDK are (default `["src", "lib"]`).
    #[serde(default = "default_python_path", skip_serializing_if = "is_default_python_path")]
    pub python_path: Vec<PathBuf>,
    /// Python: the module that defines the export (default `app`).
    #[serde(default = "default_app", skip_serializing_if = "is_default_app")]
    pub app: String,
}

fn default_wit() -> PathBuf {
    "wit".into()
}
fn is_default_wit(p: &Path) -> bool {
    p == Path::new("wit")
}
fn default_python_path() -> Vec<PathBuf> {
    vec!["src".into(), "lib".into()]
}
fn is_default_python_path(p: &[PathBuf]) -> bool {
    p == default_python_path().as_slice()
}
fn default_app() -> String {
    "app".into()
}
fn is_default_app(a: &str) -> bool {
    a == "app"
}

mod kind_text {
    use crate::plugins::PluginKind;

    pub fn serialize<S: serde::Serializer>(kind: &PluginKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kind.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PluginKind, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Manifest {
    /// A manifest with the defaults for `lang`.
    pub fn new(name: &str, kind: PluginKind, lang: Lang) -> Manifest {
        Manifest { name: name.to_string(), kind, lang, wit: default_wit(), python_path: default_python_path(), app: default_app() }
    }

    /// Read `<dir>/grantpool-plugin.toml`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "{} has no {MANIFEST}: it is not a plugin project. `grantpool plugin new NAME --kind selector|classifier [--lang rust|python]` writes one",
                dir.display()
            ),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim()))
    }

    /// The manifest as written into a new project, with a comment.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).expect("a manifest serialises");
        format!("# What `grantpool plugin build` builds (written by `grantpool plugin new`).\n{body}")
    }

    /// The name as a file stem: `my-plugin` → `my_plugin`.
    pub fn stem(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// Check a plugin name: it names a crate, a Python module's output and a
/// folder, so lowercase ASCII letters, digits, `-` and `_`, starting with
/// a letter.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!(
            "plugin name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter (it names the crate and the .wasm file), e.g. `my-selector`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_defaults() {
        let m = Manifest::new("my-sel", PluginKind::Selector, Lang::Python);
        let text = m.render();
        assert!(!text.contains("python_path"), "defaults are left out: {text}");
        assert_eq!(toml::from_str::<Manifest>(&text).unwrap(), m);
        let m: Manifest = toml::from_str("name = \"x\"\nkind = \"classifier\"\nlang = \"rust\"\n").unwrap();
        assert_eq!(m.kind, PluginKind::Classifier);
        assert!(toml::from_str::<Manifest>("name = \"x\"\nkind = \"chooser\"\nlang = \"rust\"\n").unwrap_err().to_string().contains("selector"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("my-selector_2").is_ok());
        for bad in ["", "My", "1x", "a b", "a/b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
