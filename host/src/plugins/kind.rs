//! The two worlds a plugin can implement, and the plugins carried inside
//! the binary (built and embedded by `host/build.rs`).

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// `grantpool:plugin/selector@0.1.0`.
    Selector,
    /// `grantpool:plugin/classifier@0.1.0`.
    Classifier,
}

impl PluginKind {
    /// The fully qualified world name, as plugin authors build against it.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Selector => "grantpool:plugin/selector@0.1.0",
            PluginKind::Classifier => "grantpool:plugin/classifier@0.1.0",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Selector => "selector",
            PluginKind::Classifier => "classifier",
        })
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "selector" => Ok(PluginKind::Selector),
            "classifier" => Ok(PluginKind::Classifier),
            other => Err(format!("unknown plugin kind `{other}`: selector or classifier")),
        }
    }
}

mod bundled {
    use super::PluginKind;
    include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
}

/// The plugins carried inside the binary.
pub fn bundled() -> &'static [(&'static str, PluginKind, &'static [u8])] {
    bundled::BUNDLED
}

/// The bytes of a bundled plugin, by name.
pub fn bundled_plugin(name: &str) -> Option<(PluginKind, &'static [u8])> {
    bundled::BUNDLED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, b)| (*k, *b))
}
