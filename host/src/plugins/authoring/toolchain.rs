//! The tools `grantpool plugin build` runs, found on `PATH` and installed
//! when missing: the `wasm32-wasip2` target (with rustup, into the
//! toolchain) and componentize-py (with pip, into the project's own
//! `.venv`, never system-wide).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The componentize-py release Python plugins are built with (pinned: its
/// bundled CPython and bindings generator are part of the component).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The Rust target of a plugin.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// What to do when a program is missing from `PATH`.
fn install_hint(program: &str) -> &'static str {
    match program {
        "cargo" | "rustup" => "install Rust with rustup (https://rustup.rs), then open a new shell so ~/.cargo/bin is on PATH",
        "python3" => "install Python 3.10 or newer with its venv module (Debian/Ubuntu: apt install python3 python3-venv)",
        _ => "install it, or put it on PATH",
    }
}

/// Run `cmd` (its output goes to stderr: stdout is kept for what `plugin
/// build` prints); `what` says what it was for.
pub fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    tracing::debug!(%program, args = ?cmd.get_args().collect::<Vec<_>>(), "running");
    let status = cmd.stdout(std::io::stderr()).stdin(Stdio::null()).status().map_err(|e| spawn_error(&program, e))?;
    if !status.success() {
        anyhow::bail!("{what} failed ({program} exited with {status}); its output is above");
    }
    Ok(())
}

/// A readable error for a program that could not be started.
pub fn spawn_error(program: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let name = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        anyhow::anyhow!("`{program}` was not found: {}", install_hint(&name))
    } else {
        anyhow::anyhow!("cannot run `{program}`: {e}")
    }
}

/// Cargo links the build scripts and proc macros of the SDK's dependencies
/// for the machine itself, with the C linker `cc` on Linux: say so before
/// cargo fails on it.
pub fn ensure_host_linker() -> anyhow::Result<()> {
    if !cfg!(target_os = "linux") || std::env::var_os("RUSTFLAGS").is_some() {
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join("cc").is_file()) {
        return Ok(());
    }
    anyhow::bail!(
        "no C linker (`cc`) on PATH: cargo needs one to link the build scripts of the SDK's dependencies; install gcc (Debian/Ubuntu: apt install gcc) or put its folder on PATH"
    )
}

/// Make sure rustup has the `wasm32-wasip2` target for the toolchain that
/// builds `dir` (a `rust-toolchain.toml` there is honoured). Without rustup
/// on PATH nothing is checked: cargo's own error then names the target.
pub fn ensure_wasm_target(dir: &Path) -> anyhow::Result<()> {
    let listed = match Command::new("rustup").current_dir(dir).args(["target", "list", "--installed"]).stderr(Stdio::inherit()).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(_) => anyhow::bail!("`rustup target list --installed` failed in {} (output above)", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!("rustup not on PATH; assuming the {WASM_TARGET} target is there");
            return Ok(());
        }
        Err(e) => return Err(spawn_error("rustup", e)),
    };
    if listed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("==> rustup target add {WASM_TARGET}");
    let mut cmd = Command::new("rustup");
    cmd.current_dir(dir).args(["target", "add", WASM_TARGET]);
    run(cmd, &format!("installing the {WASM_TARGET} target"))
}

/// The project's componentize-py (`<dir>/.venv/bin/componentize-py`),
/// after creating the venv and installing the pinned release when it is
/// missing or another version.
pub fn ensure_componentize_py(dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join(".venv");
    let tool = venv.join("bin").join("componentize-py");
    if tool_version(&tool).as_deref() == Some(COMPONENTIZE_PY_VERSION) {
        return Ok(tool);
    }
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        eprintln!("==> python3 -m venv {}", venv.display());
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run(cmd, "creating the project's Python venv (on Debian/Ubuntu `apt install python3-venv` gives python3 its venv module)")?;
    }
    eprintln!("==> pip install componentize-py=={COMPONENTIZE_PY_VERSION} (into {})", venv.display());
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
        .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}"))
        .env_remove("PYTHONPATH")
        .env_remove("PIP_REQUIRE_VIRTUALENV");
    run(cmd, &format!("installing componentize-py {COMPONENTIZE_PY_VERSION} from PyPI (is PyPI reachable?)"))?;
    match tool_version(&tool) {
        Some(v) if v == COMPONENTIZE_PY_VERSION => Ok(tool),
        other => anyhow::bail!(
            "{} reports version {:?} after installing {COMPONENTIZE_PY_VERSION}; remove {} and build again",
            tool.display(),
            other,
            venv.display()
        ),
    }
}

/// `componentize-py --version` → `0.25.1`.
fn tool_version(tool: &Path) -> Option<String> {
    let out = Command::new(tool).arg("--version").stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_string)
}
