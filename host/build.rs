//! Builds the bundled plugins (the `plugins/` workspace, for
//! `wasm32-wasip2`) and embeds them in the binary, so `grantpool` alone runs
//! on the bundled policy.
//!
//! Each plugin crate says what it is in its Cargo.toml:
//! `[package.metadata.grantpool] kind = "selector" | "classifier"`.
//! Crates without that table (the SDK, the template) are not bundled.
//! Set `GRANTPOOL_PREBUILT_PLUGINS=DIR` to embed `.wasm` files built elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-env-changed=GRANTPOOL_PREBUILT_PLUGINS");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", plugins.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", plugins.join("Cargo.lock").display());

    // Only members of the plugins workspace are built, so only they can be
    // bundled (a crate being drafted in plugins/ is left alone).
    let members = workspace_members(&plugins.join("Cargo.toml"));
    let mut bundled = Vec::new();
    for entry in fs::read_dir(&plugins).expect("read plugins/") {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        // Every crate (the SDK too) is an input of the plugin build.
        println!("cargo:rerun-if-changed={}", manifest.display());
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        let Some(kind) = metadata_kind(&manifest) else { continue };
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if !members.contains(&name) {
            println!("cargo:warning=plugins/{name} is not a member of plugins/Cargo.toml: not bundled");
            continue;
        }
        bundled.push((name, kind));
    }
    bundled.sort();

    let wasm_dir = match env::var_os("GRANTPOOL_PREBUILT_PLUGINS") {
        Some(dir) => PathBuf::from(dir),
        None => build_plugins(&plugins),
    };

    let mut code = String::from(
        "/// The plugins carried inside the binary: (name, kind, component bytes).\n\
         pub static BUNDLED: &[(&str, PluginKind, &[u8])] = &[\n",
    );
    for (name, kind) in &bundled {
        let file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        if !file.is_file() {
            panic!("bundled plugin `{name}` was not built: {} is missing", file.display());
        }
        let kind = if kind == "selector" { "Selector" } else { "Classifier" };
        code.push_str(&format!(
            "    ({name:?}, PluginKind::{kind}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    fs::write(out.join("bundled_plugins.rs"), code).unwrap();
}

fn read_toml(path: &Path) -> toml::Table {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

/// `workspace.members` of the plugins workspace.
fn workspace_members(manifest: &Path) -> Vec<String> {
    let table = read_toml(manifest);
    let members = table.get("workspace").and_then(|w| w.get("members")).and_then(|m| m.as_array());
    members.into_iter().flatten().filter_map(|m| m.as_str().map(str::to_string)).collect()
}

/// `[package.metadata.grantpool] kind` of a plugin crate, when it is one.
fn metadata_kind(manifest: &Path) -> Option<String> {
    let table = read_toml(manifest);
    let kind = table.get("package")?.get("metadata")?.get("grantpool")?.get("kind")?.as_str()?;
    match kind {
        "selector" | "classifier" => Some(kind.to_string()),
        other => panic!("{}: [package.metadata.grantpool] kind = {other:?}: expected \"selector\" or \"classifier\"", manifest.display()),
    }
}

fn build_plugins(plugins: &Path) -> PathBuf {
    let target_dir = plugins.join("target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--workspace"])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Settings meant for the host build must not leak into the guest build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_PROFILE_RELEASE_LTO"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the bundled plugins");
    if !status.success() {
        panic!(
            "building the bundled plugins failed (see above). Is the wasm32-wasip2 target \
             installed? Run `rustup target add wasm32-wasip2`, or use ./dev which does it."
        );
    }
    target_dir.join("wasm32-wasip2").join("release")
}
