//! Reading a plugin's table from `policy.toml`.
//!
//! The host hands `configure` the table as a JSON object (`{}` when the
//! policy gives none). Derive `Deserialize` (with `#[serde(default,
//! deny_unknown_fields)]` so typos are refused at load) and call [`parse`].

use serde::de::DeserializeOwned;

/// Parse the plugin's config; an empty string counts as `{}`. The error is a
/// sentence for the user, naming the bad key where serde knows it.
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| {
        // The position is in the host's JSON rendering of the TOML table,
        // which the user never sees: leave it out.
        let text = e.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        format!("invalid plugin config: {text}")
    })
}
