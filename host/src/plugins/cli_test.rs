//! `grantpool plugin test`: run one decision of a plugin on a JSON case.

use std::path::Path;

use crate::config::Config;

/// Run the case in `input` through `plugin` and print the answer.
pub fn run(_config: &Config, _plugin: &str, _input: &Path) -> anyhow::Result<()> {
    anyhow::bail!("plugin test is not available yet")
}
