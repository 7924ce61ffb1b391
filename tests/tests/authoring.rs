//! Plugin authoring as a newcomer does it: from an empty folder with only
//! the `grantpool` binary (and the toolchains `plugin build` runs) on PATH,
//! `plugin new` in Rust and Python, `plugin build`, `plugin test`, then a
//! proxy whose policy names the built plugins and acts on their verdicts.
//! Also the Python examples of `plugins/examples/` in the real proxy, and
//! the causes `policy check` names for a component that does not fit.
//!
//! PATH in the newcomer's shell: a folder holding only `grantpool`, then
//! the folders of `cargo`/`rustup` (e.g. `~/.cargo/bin`) and of `python3`
//! and of the C linker `cc` that cargo links build scripts with (both
//! usually `/usr/bin`). HOME is an empty folder; RUSTUP_HOME and CARGO_HOME
//! point at the installed toolchains. Nothing else is inherited.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use common::Env;
use grantpool_tests::fake::{Endpoint, FaultSpec, RevokeSpec};
use serde_json::Value;

const MODEL: &str = "gemini-2.5-flash";

/// A shell as a newcomer has it: an empty work folder, an empty HOME, and a
/// PATH with the binary and the toolchains only.
struct Newcomer {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    path: String,
    cargo_home: PathBuf,
    rustup_home: PathBuf,
}

/// The folder holding `program` on the current PATH.
fn dir_of(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join(program).is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH: the authoring tests need it"))
}

impl Newcomer {
    fn new() -> Newcomer {
        let tmp = tempfile::tempdir().unwrap();
        let (work, home, bin) = (tmp.path().join("work"), tmp.path().join("home"), tmp.path().join("bin"));
        for d in [&work, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(common::binary().canonicalize().unwrap(), bin.join("grantpool")).unwrap();
        let mut dirs = vec![bin];
        for tool in ["cargo", "rustup", "python3", "cc"] {
            let d = dir_of(tool);
            assert!(!d.join("grantpool").exists(), "{} holds another grantpool", d.display());
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        let real_home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
        let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| real_home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME").map(PathBuf::from).unwrap_or_else(|| real_home.join(".rustup"));
        let path = std::env::join_paths(&dirs).unwrap().into_string().unwrap();
        Newcomer { _tmp: tmp, work, home, path, cargo_home, rustup_home }
    }

    /// Run `grantpool ARGS` in the work folder; (ok, stdout, stderr).
    async fn grantpool(&self, args: &[&str]) -> (bool, String, String) {
        let started = Instant::now();
        let out = tokio::process::Command::new("grantpool")
            .args(args)
            .current_dir(&self.work)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("CARGO_HOME", &self.cargo_home)
            .env("RUSTUP_HOME", &self.rustup_home)
            .output()
            .await
            .expect("grantpool runs from PATH");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        eprintln!("$ grantpool {} ({:.1} s)\n{stderr}{stdout}", args.join(" "), started.elapsed().as_secs_f64());
        (out.status.success(), stdout, stderr)
    }

    /// `grantpool plugin build DIR`: the .wasm it printed first.
    async fn build(&self, dir: &str) -> PathBuf {
        let (ok, out, err) = self.grantpool(&["plugin", "build", dir]).await;
        assert!(ok, "plugin build {dir}:\n{err}");
        let wasm = PathBuf::from(out.lines().next().unwrap_or_default());
        assert!(wasm.is_absolute() && wasm.is_file(), "first line is the .wasm: {out}");
        assert!(out.contains("# policy.toml:") && out.contains(&format!("plugin = \"{}\"", wasm.display())), "{out}");
        wasm
    }
}

/// Build a project of `plugins/examples/` with the real `plugin build`,
/// once per test binary (the build itself skips an unchanged project).
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let map = BUILT.get_or_init(Default::default);
    let mut map = map.lock().unwrap();
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    let dir = common::root().join("plugins/examples").join(name);
    let started = Instant::now();
    let out = std::process::Command::new(common::binary()).args(["plugin", "build"]).arg(&dir).output().expect("run grantpool plugin build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plugin build {}:\n{stderr}", dir.display());
    eprintln!("built {name} in {:.1} s:\n{stderr}", started.elapsed().as_secs_f64());
    let wasm = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().next().unwrap());
    warm_compile_cache(&wasm, &dir.join("case.json"));
    map.insert(name.into(), wasm.clone());
    wasm
}

/// Compile `wasm` into the compile cache every test proxy shares (as a
/// user's own `plugin test` does for their proxy), so a proxy starts in
/// moments instead of compiling CPython while the test waits.
fn warm_compile_cache(wasm: &Path, case: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("grantpool.toml");
    let cache = common::root().join("target/test-plugin-cache");
    std::fs::write(&config, format!("data_dir = {}\n[plugins]\ncache_dir = {}\n", toml_path(tmp.path()), toml_path(&cache))).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(common::binary())
        .arg("--config")
        .arg(&config)
        .args(["plugin", "test"])
        .arg(wasm)
        .arg("--input")
        .arg(case)
        .output()
        .expect("run grantpool plugin test");
    assert!(out.status.success(), "plugin test {}: {}", wasm.display(), String::from_utf8_lossy(&out.stderr));
    eprintln!("first load of {} (compile, cached after) {:.1} s", wasm.display(), started.elapsed().as_secs_f64());
}

fn toml_path(p: &Path) -> String {
    toml_string(&p.display().to_string())
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

async fn label(env: &Env, email: &str, token: &str, tier: &str) -> String {
    let id = env.add_account(email, token).await;
    env.edit_account(&id, |v| v["labels"] = serde_json::json!({ "tier": tier }));
    id
}

/// Revoke `token` at the fake so a refresh answers `token_revoked`, and
/// make the account's access token due.
async fn revoke_with_token_revoked(env: &Env, id: &str, token: &str) {
    env.fake
        .revoke(RevokeSpec::new(token).answer(400, r#"{"error":"token_revoked","error_description":"The grant was revoked by the provider."}"#))
        .await
        .unwrap();
    env.expire_token(id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_writes_builds_tests_and_runs_plugins_from_an_empty_folder() {
    let me = Newcomer::new();
    // The proxy's world (fake Google, data dir, grantpool.toml) is made
    // first: the newcomer's `plugin test` uses its config, so the compile
    // cache it fills is the one the proxy starts with.
    let env = Env::new().await;
    let config = env.config_path();
    let config = config.to_str().unwrap();

    // plugin new, both languages; the folder is refused once it is full.
    let (ok, out, err) = me.grantpool(&["plugin", "new", "paid-first", "--kind", "selector"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("src/lib.rs") && out.contains("the decision: edit this") && out.contains("grantpool plugin build paid-first"), "{out}");
    let (ok, out, err) = me.grantpool(&["plugin", "new", "revoked", "--kind", "classifier", "--lang", "python"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("src/app.py") && out.contains("case.json"), "{out}");
    let (ok, _, err) = me.grantpool(&["plugin", "new", "revoked", "--kind", "classifier", "--lang", "python"]).await;
    assert!(!ok && err.contains("not empty") && err.contains("nothing was written"), "{err}");
    for f in ["paid-first/Cargo.lock", "paid-first/sdk/wit/grantpool-plugin.wit", "paid-first/policy-snippet.toml", "revoked/lib/grantpool_plugin/classifier.py", "revoked/README.md"] {
        assert!(me.work.join(f).is_file(), "{f}");
    }

    // plugin build: the Rust target and a project-local componentize-py.
    let selector = me.build("paid-first").await;
    let classifier = me.build("revoked").await;
    assert!(me.work.join("revoked/.venv/bin/componentize-py").is_file(), "the Python tool lives in the project");
    assert_eq!(selector.file_name().unwrap(), "paid_first.wasm");
    assert_eq!(classifier, me.work.join("revoked/build/revoked.wasm").canonicalize().unwrap());
    let (ok, _, err) = me.grantpool(&["plugin", "build", "revoked"]).await;
    assert!(ok && err.contains("up to date"), "an unchanged Python project is not rebuilt: {err}");

    // plugin test with the case.json each project came with.
    let (ok, out, err) = me.grantpool(&["--config", config, "plugin", "test", selector.to_str().unwrap(), "--input", "paid-first/case.json"]).await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let picks: Vec<&str> = v["picks"].as_array().unwrap().iter().map(|p| p["picked"].as_str().unwrap()).collect();
    assert_eq!(picks, ["paid-1", "paid-2", "paid-1"], "{out}");
    let (ok, out, err) = me.grantpool(&["--config", config, "plugin", "test", classifier.to_str().unwrap(), "--input", "revoked/case.json"]).await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"]["action"], "disable", "{out}");
    assert_eq!(v["verdict"]["reason"], "token_revoked: The grant was revoked by the provider.", "{out}");

    // A proxy whose policy is the two snippets.
    let snippets = ["paid-first", "revoked"].map(|p| std::fs::read_to_string(me.work.join(p).join("policy-snippet.toml")).unwrap());
    env.use_policy(&snippets.join("\n"));
    let free = label(&env, "free@example.com", "rt-free", "free").await;
    let paid = label(&env, "paid@example.com", "rt-paid", "paid").await;
    let proxy = env.start().await;
    let logs = proxy.logs();
    assert!(logs.contains("selector: paid_first") && logs.contains("classifier 1: revoked"), "{logs}");
    for _ in 0..3 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!((status, account.as_deref()), (200, Some(paid.as_str())), "the selector prefers paid: {body}");
    }
    // The provider revokes the paid account's grant: the Python classifier
    // disables it, and the request is served by the other account.
    revoke_with_token_revoked(&env, &paid, "rt-paid").await;
    let (status, account, body) = proxy.gemini(MODEL, "after the revocation").await;
    assert_eq!((status, account.as_deref()), (200, Some(free.as_str())), "{body}\n{}", proxy.logs());
    let f = env.account_file(&paid);
    assert_eq!(f["disabled"], true, "{f}");
    assert_eq!(f["disabled_reason"], "token_revoked: The grant was revoked by the provider.", "{f}");
    proxy.stop().await;

    // A component that does not fit says why, in the same words for either
    // language: a Rust plugin built against another version of the WIT…
    let wit = me.work.join("paid-first/sdk/wit/grantpool-plugin.wit");
    std::fs::write(&wit, std::fs::read_to_string(&wit).unwrap().replace("package grantpool:plugin@0.1.0;", "package grantpool:plugin@0.2.0;")).unwrap();
    me.build("paid-first").await;
    std::fs::write(me.work.join("policy.toml"), &snippets[0]).unwrap();
    let (ok, _, err) = me.grantpool(&["policy", "check", "policy.toml"]).await;
    assert!(!ok, "{err}");
    assert!(err.contains("paid_first.wasm") && err.contains("built against grantpool:plugin@0.2.0") && err.contains("speaks grantpool:plugin@0.1.0"), "{err}");
    // …and a Python plugin whose WIT lost `classify`.
    let wit = me.work.join("revoked/wit/grantpool-plugin.wit");
    let text = std::fs::read_to_string(&wit).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("classify: func")).unwrap().to_string();
    std::fs::write(&wit, text.replace(&line, "")).unwrap();
    me.build("revoked").await;
    std::fs::write(me.work.join("policy.toml"), &snippets[1]).unwrap();
    let (ok, _, err) = me.grantpool(&["policy", "check", "policy.toml"]).await;
    assert!(!ok, "{err}");
    assert!(err.contains("revoked.wasm") && err.contains("without `classify`") && err.contains("missing export"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_examples_act_inside_the_proxy() {
    let (selector, classifier) = (example("python-selector"), example("python-classifier"));
    let env = Env::new().await;
    env.use_policy(&format!(
        "[selector]\nplugin = {}\n\n[[classifier]]\nplugin = {}\n\n[[classifier]]\nplugin = \"default\"\n",
        toml_path(&selector),
        toml_path(&classifier)
    ));
    let free = label(&env, "free@example.com", "rt-free", "free").await;
    let paid = [label(&env, "pa@example.com", "rt-pa", "paid").await, label(&env, "pb@example.com", "rt-pb", "paid").await];
    let proxy = env.start().await;

    // The selector: paid accounts only, least recently used first.
    let mut served = Vec::new();
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        served.push(account.unwrap());
    }
    assert!(paid.contains(&served[0]) && paid.contains(&served[1]) && served[0] != served[1], "{served:?}");
    assert_eq!(served[2..], served[..2], "least recently used first: {served:?}");
    let (next, then) = (served[0].clone(), served[1].clone());
    let (next_email, then_token) = if next == paid[0] { ("pa@example.com", "rt-pb") } else { ("pb@example.com", "rt-pa") };

    // The classifier: a 429 RATE_LIMIT_EXCEEDED cools the next one down for
    // Google's delay…
    let mut fault = FaultSpec::rate_limit_exceeded(Endpoint::Generate, "20s");
    fault.email = Some(next_email.into());
    env.fake.push_fault(fault).await.unwrap();
    let (status, account, body) = proxy.gemini(MODEL, "rate limited").await;
    assert_eq!((status, account.as_deref()), (200, Some(then.as_str())), "{body}\n{}", proxy.logs());
    let view = proxy.admin_account(&next).await;
    assert_eq!(view["state"], "cooling_down", "{view}");
    assert!(view["reason"].as_str().unwrap_or_default().starts_with("rate limited:"), "the Python verdict's reason: {view}");

    // …and `token_revoked` on a refresh disables the other: only `free` is left.
    revoke_with_token_revoked(&env, &then, then_token).await;
    let (status, account, body) = proxy.gemini(MODEL, "revoked").await;
    assert_eq!((status, account.as_deref()), (200, Some(free.as_str())), "{body}\n{}", proxy.logs());
    let f = env.account_file(&then);
    assert_eq!(f["disabled"], true, "{f}");
    assert!(f["disabled_reason"].as_str().unwrap().starts_with("token_revoked:"), "{f}");
    let logs = proxy.logs();
    assert!(!logs.contains("rt-pa") && !logs.contains("rt-pb") && !logs.contains("ya29."), "no token in a log line");
    proxy.stop().await;
}

/// `policy check` names the cause of a refusal in words that hold for a
/// Python component as for a Rust one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_names_the_cause_for_python_and_rust_plugins() {
    let classifier = example("python-classifier");
    let selector = example("python-selector");
    let env = Env::new().await;
    let env = &env;
    let check = |policy: String| {
        env.write_policy(&policy);
        let path = env.policy_path();
        async move { env.cli(&["policy", "check", path.to_str().unwrap()]).await }
    };

    // Another world: a classifier named as the selector, and the other way round.
    let (ok, _, err) = check(format!("[selector]\nplugin = {}\n", toml_path(&classifier))).await;
    assert!(!ok);
    assert!(err.contains("line 2") && err.contains("python_classifier.wasm") && err.contains("it is a classifier") && err.contains("[[classifier]]"), "{err}");
    let (ok, _, err) = check(format!("[[classifier]]\nplugin = {}\n", toml_path(&selector))).await;
    assert!(!ok && err.contains("it is a selector") && err.contains("[selector]"), "{err}");
    let (ok, _, err) = check("[[classifier]]\nplugin = \"round-robin\"\n".into()).await;
    assert!(!ok && err.contains("it is a selector"), "the same words for a Rust plugin: {err}");

    // Config refused, with the plugin's own words and the config's line.
    let (ok, _, err) = check(format!("[selector]\nplugin = {}\nconfig = {{ prefer = 3 }}\n", toml_path(&selector))).await;
    assert!(!ok && err.contains("line 3") && err.contains("rejected its config") && err.contains("`prefer` must be a string"), "{err}");
    let (ok, _, err) = check(format!("[[classifier]]\nplugin = {}\nconfig = {{ eror = [] }}\n", toml_path(&classifier))).await;
    assert!(!ok && err.contains("unknown field `eror`"), "{err}");

    // And a policy that fits says what it runs.
    let (ok, out, err) = check(format!("[selector]\nplugin = {}\n\n[[classifier]]\nplugin = {}\n", toml_path(&selector), toml_path(&classifier))).await;
    assert!(ok, "{err}");
    assert!(out.contains("selector: python_selector") && out.contains("it asks for nothing beyond the pool"), "{out}");
}

/// `plugin build` and `plugin new` say what went wrong, where, and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authoring_errors_say_what_to_do() {
    let me = Newcomer::new();
    let (ok, _, err) = me.grantpool(&["plugin", "build"]).await;
    assert!(!ok && err.contains("not a plugin project") && err.contains("grantpool plugin new"), "{err}");
    let (ok, _, err) = me.grantpool(&["plugin", "new", "My Plugin", "--kind", "selector"]).await;
    assert!(!ok && err.contains("lowercase letters"), "{err}");
    let (ok, _, err) = me.grantpool(&["plugin", "new", "x", "--kind", "chooser"]).await;
    assert!(!ok && err.contains("selector or classifier"), "{err}");
    let (ok, _, err) = me.grantpool(&["plugin", "new", "x", "--kind", "selector", "--lang", "go"]).await;
    assert!(!ok && err.contains("rust or python"), "{err}");
    let (ok, _, err) = me.grantpool(&["plugin", "test", "nowhere.wasm", "--input", "case.json"]).await;
    assert!(!ok && err.contains("case.json"), "{err}");
}
