//! `grantpool plugin build`: turn a plugin project into a `.wasm`
//! component — cargo for Rust, componentize-py for Python — and say where
//! it is.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::manifest::{Lang, Manifest};
use super::toolchain::{self, COMPONENTIZE_PY_VERSION, WASM_TARGET};
use crate::plugins::PluginKind;

/// A built plugin.
#[derive(Debug)]
pub struct Built {
    /// The component (absolute path).
    pub wasm: PathBuf,
    /// The project's manifest.
    pub manifest: Manifest,
    /// False when the component was already up to date (Python; cargo
    /// decides that itself for Rust).
    pub rebuilt: bool,
    /// How long it took.
    pub took: Duration,
}

/// Build the plugin project in `dir`.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let dir = dir.canonicalize().map_err(|e| anyhow::anyhow!("cannot open the plugin project {}: {e}", dir.display()))?;
    let manifest = Manifest::read(&dir)?;
    let started = Instant::now();
    let (wasm, rebuilt) = match manifest.lang {
        Lang::Rust => (build_rust(&dir, &manifest)?, true),
        Lang::Python => build_python(&dir, &manifest)?,
    };
    let took = started.elapsed();
    tracing::info!(plugin = %manifest.name, lang = %manifest.lang, wasm = %wasm.display(), ms = took.as_millis() as u64, rebuilt, "plugin built");
    Ok(Built { wasm, manifest, rebuilt, took })
}

fn build_rust(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    if !dir.join("Cargo.toml").is_file() {
        anyhow::bail!("{}: a Rust plugin project needs a Cargo.toml there", dir.display());
    }
    toolchain::ensure_host_linker()?;
    toolchain::ensure_wasm_target(dir)?;
    eprintln!("==> cargo build --release --target {WASM_TARGET} (in {})", dir.display());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null());
    // Settings meant for a host build must not reach the guest build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().map_err(|e| toolchain::spawn_error("cargo", e))?;
    let manifest_path = dir.join("Cargo.toml");
    let mut wasm = None;
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if msg["reason"] != "compiler-artifact" || msg["manifest_path"].as_str().map(Path::new) != Some(manifest_path.as_path()) {
            continue;
        }
        let files = msg["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str());
        if let Some(f) = files.into_iter().find(|f| f.ends_with(".wasm")) {
            wasm = Some(PathBuf::from(f));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!("cargo could not build {} (errors above); fix them and run `grantpool plugin build` again", dir.display());
    }
    wasm.ok_or_else(|| {
        anyhow::anyhow!(
            "cargo built {} but no .wasm came out: is `crate-type = [\"cdylib\"]` in its [lib] section? (the package named `{}` in {})",
            dir.display(),
            manifest.name,
            manifest_path.display()
        )
    })
}

fn build_python(dir: &Path, manifest: &Manifest) -> anyhow::Result<(PathBuf, bool)> {
    let wit = dir.join(&manifest.wit);
    if !wit.is_dir() {
        anyhow::bail!("{}: the WIT folder `{}` is missing (grantpool-plugin.toml `wit`); `grantpool plugin new` writes one", dir.display(), manifest.wit.display());
    }
    let python_path: Vec<PathBuf> = manifest.python_path.iter().map(|p| dir.join(p)).collect();
    if let Some(missing) = python_path.iter().find(|p| !p.is_dir()) {
        anyhow::bail!("{}: the folder {} of grantpool-plugin.toml `python_path` is missing", dir.display(), missing.display());
    }
    let module = format!("{}.py", manifest.app);
    if !python_path.iter().any(|p| p.join(&module).is_file()) {
        anyhow::bail!("{}: no {module} in {} (grantpool-plugin.toml `app` names the module that exports the plugin)", dir.display(), manifest.python_path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let out_dir = dir.join("build");
    let wasm = out_dir.join(format!("{}.wasm", manifest.stem()));
    let stamp_file = out_dir.join(format!(".{}.inputs", manifest.stem()));
    let stamp = inputs_digest(manifest, &wit, &python_path)?;
    if wasm.is_file() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        eprintln!("==> {} is up to date", wasm.display());
        return Ok((wasm, false));
    }
    let tool = toolchain::ensure_componentize_py(dir)?;
    std::fs::create_dir_all(&out_dir)?;
    let partial = out_dir.join(format!(".{}.wasm.partial", manifest.stem()));
    let world = manifest.kind.to_string();
    eprintln!("==> componentize-py {COMPONENTIZE_PY_VERSION}: world {world}, module {} (in {})", manifest.app, dir.display());
    let mut cmd = Command::new(&tool);
    cmd.current_dir(dir).arg("-d").arg(&wit).args(["-w", &world, "componentize", &manifest.app]);
    for p in &python_path {
        cmd.arg("-p").arg(p);
    }
    cmd.arg("-o").arg(&partial);
    // Only the project's own folders are bundled, never a surrounding venv.
    for var in ["VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"] {
        cmd.env_remove(var);
    }
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| toolchain::spawn_error(&tool.display().to_string(), e))?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprint!("{said}");
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("componentize-py could not build {}{}", dir.display(), python_hint(manifest, &said));
    }
    // Renamed into place: a running proxy watching the file never reads half of it.
    std::fs::rename(&partial, &wasm)?;
    std::fs::write(&stamp_file, &stamp)?;
    Ok((wasm, true))
}

/// What a componentize-py failure most likely means for the author.
fn python_hint(manifest: &Manifest, said: &str) -> String {
    let export = export_name(manifest.kind);
    if said.contains(&format!("has no attribute '{export}'")) {
        return format!(
            ": {}.py must define `{export}` at its top level, e.g. `{export} = {}.export(MyPlugin)`",
            manifest.app,
            manifest.kind
        );
    }
    if said.contains("ModuleNotFoundError") || said.contains("No module named") {
        return ": a module it imports is missing (only the standard library, the SDK and the folders of grantpool-plugin.toml `python_path` are bundled)".into();
    }
    " (its message is above)".into()
}

/// The name componentize-py looks up in the app module for the world's export.
pub fn export_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Selector => "Selection",
        PluginKind::Classifier => "Classification",
    }
}

/// A digest of everything a Python component is built from: the tool's
/// version, the world, the module name, the WIT and every `.py` file of
/// the Python path.
fn inputs_digest(manifest: &Manifest, wit: &Path, python_path: &[PathBuf]) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(format!("componentize-py {COMPONENTIZE_PY_VERSION}\0{}\0{}\0", manifest.kind, manifest.app));
    for (root, ext) in std::iter::once((wit, "wit")).chain(python_path.iter().map(|p| (p.as_path(), "py"))) {
        let mut files = Vec::new();
        collect(root, ext, &mut files)?;
        files.sort();
        for f in files {
            h.update(f.strip_prefix(root).unwrap_or(&f).to_string_lossy().as_bytes());
            h.update([0]);
            h.update(std::fs::read(&f)?);
            h.update([0]);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect(&path, ext, out)?;
        } else if path.extension().is_some_and(|x| x == ext) {
            out.push(path);
        }
    }
    Ok(())
}
