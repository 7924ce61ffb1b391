//! The command line: `serve`, `accounts …`, `policy check`, `plugin new |
//! build | test`.
//! Thin: each command calls into the library and prints what happened.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::store::{NewAccount, Store};

/// grantpool: one local API over a pool of Google OAuth accounts.
#[derive(Parser, Debug)]
#[command(name = "grantpool", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Config file (else $GRANTPOOL_CONFIG, else <data_dir>/grantpool.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (else $GRANTPOOL_DATA_DIR, else the config's data_dir, else ~/.grantpool).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the proxy.
    Serve {
        /// Address to listen on (default 127.0.0.1:8045).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage the accounts of the pool.
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Plugin authoring tools.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Named client keys: each with its own models, limits and expiry
    /// (only a hash of a key is kept).
    #[command(subcommand)]
    Keys(crate::keys::cli::KeysCmd),
    /// Usage of the proxy (tokens, requests) from the usage database; in
    /// cluster mode the whole cluster's, from Redis (hour granularity).
    Usage(crate::usage::UsageArgs),
}

/// `grantpool accounts …`.
#[derive(Subcommand, Debug)]
pub enum AccountsCmd {
    /// List accounts and their state (never a token).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add or update an account from a refresh token (upsert by email).
    Add {
        /// The refresh token.
        #[arg(long)]
        refresh_token: String,
        /// The email you expect (checked: the account is always the one
        /// Google's userinfo names for the token).
        #[arg(long)]
        email: Option<String>,
        /// The OAuth client that issued the token: `antigravity`,
        /// `gemini-cli`, or one in [oauth.clients] (default: [oauth] client).
        #[arg(long, alias = "oauth-client")]
        client: Option<String>,
        /// The egress proxy its calls go through (a name in [egress.proxies]).
        #[arg(long)]
        egress: Option<String>,
    },
    /// Add an account by signing in with Google in a browser.
    Login {
        /// The OAuth client to sign in with: `antigravity`, `gemini-cli`, or
        /// one in [oauth.clients] (default: [oauth] client).
        #[arg(long)]
        client: Option<String>,
        /// Print the URL only; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// The egress proxy its calls go through (a name in [egress.proxies]).
        #[arg(long)]
        egress: Option<String>,
    },
    /// Import accounts: a folder of account files, an Antigravity-Manager
    /// data directory (in cluster mode this seeds the cluster), or the
    /// Antigravity CLI's sign-in: `agy` (its keyring entry, else
    /// ~/.gemini/antigravity-cli/antigravity-oauth-token) or that token file.
    Import {
        /// The directory (holding accounts/*.json, or the files themselves),
        /// agy's token file, or `agy` (a folder named agy: `./agy`).
        path: PathBuf,
        /// The egress proxy the imported accounts' calls go through (a name in [egress.proxies]).
        #[arg(long)]
        egress: Option<String>,
    },
    /// Change an account's settings.
    Edit {
        /// Id or email.
        account: String,
        /// The egress proxy its calls go through (a name in
        /// [egress.proxies]), or `none` for the pool's default.
        #[arg(long)]
        egress: Option<String>,
    },
    /// Write every account as an account file (`DIR/<id>.json`), from any
    /// store (in cluster mode: the cluster's records).
    Export {
        /// The directory to write to (created if missing).
        dir: PathBuf,
    },
    /// Put an account back on the proxy (clears proxy_disabled).
    Enable {
        /// Id or email.
        account: String,
    },
    /// Keep an account from the proxy (sets proxy_disabled).
    Disable {
        /// Id or email.
        account: String,
    },
    /// Delete an account's file.
    Remove {
        /// Id or email.
        account: String,
    },
}

/// `grantpool policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Validate a policy: parse, load every plugin, run its configure.
    Check {
        /// The policy file (else the configured one, else the bundled default).
        file: Option<PathBuf>,
    },
}

/// `grantpool plugin …`.
#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Write a new plugin project (standalone: the SDK and the WIT are copied in).
    New {
        /// The plugin's name (lowercase letters, digits, `-`), e.g. `my-selector`.
        name: String,
        /// Which decision it makes.
        #[arg(long, value_parser = parse_kind)]
        kind: crate::plugins::PluginKind,
        /// The language to write it in.
        #[arg(long, default_value = "rust", value_parser = parse_lang)]
        lang: crate::plugins::authoring::Lang,
        /// The project folder (default: ./NAME); created, must be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin project; prints the .wasm path and the policy line.
    Build {
        /// The project folder (default: the current one).
        dir: Option<PathBuf>,
    },
    /// Run one decision of a plugin and print the answer.
    Test {
        /// The plugin: a .wasm file or a bundled name.
        plugin: String,
        /// The case (JSON): {"config": {...}, "select": {...}} or {"config": {...}, "classify": {...}}.
        #[arg(long)]
        input: PathBuf,
    },
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let over = Overrides {
        config: cli.global.config.clone(),
        data_dir: cli.global.data_dir.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            _ => None,
        },
    };
    let config = Config::load(&over)?;
    match cli.command {
        Command::Serve { .. } => serve(config),
        Command::Accounts(cmd) => {
            let _log = crate::logging::init(&config.log.level, None, 0);
            accounts(config, cmd)
        }
        Command::Policy(PolicyCmd::Check { file }) => {
            let _log = crate::logging::init("warn", None, 0);
            policy_check(&config, file.as_deref().or(config.policy.as_deref()))
        }
        Command::Plugin(PluginCmd::New { name, kind, lang, dir }) => plugin_new(&name, kind, lang, dir),
        Command::Plugin(PluginCmd::Build { dir }) => {
            let _log = crate::logging::init("warn", None, 0);
            plugin_build(dir.as_deref().unwrap_or(Path::new(".")))
        }
        Command::Plugin(PluginCmd::Test { plugin, input }) => {
            let _log = crate::logging::init("info", None, 0);
            crate::plugins::cli_test::run(&config, &plugin, &input)
        }
        Command::Keys(cmd) => {
            let _log = crate::logging::init("warn", None, 0);
            crate::keys::cli::run(&config, cmd)
        }
        Command::Usage(args) => {
            let _log = crate::logging::init("warn", None, 0);
            crate::usage::cli_run(&config, &args)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let _log = crate::logging::init(&config.log.level, Some(&config.log_dir()), config.log.keep_files);
    // The main runtime runs start-up, accepts, and background work; the
    // requests run on the serving threads (proxy::listener).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let listen = config.server.listen.clone();
        let app = tokio::task::spawn_blocking(move || crate::app::App::build(config)).await??;
        let _background = app.start_background()?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (in use? change server.listen or pass --listen)"))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            accounts = app.proxy.dispatcher.pool.len(),
            data_dir = %app.proxy.config.data_dir.display(),
            startup_ms = started.elapsed().as_millis() as u64,
            "grantpool {} listening on http://{addr}",
            env!("CARGO_PKG_VERSION")
        );
        let server = &app.proxy.config.server;
        let fds = crate::proxy::listener::raise_fd_limit();
        let options = crate::proxy::listener::ServeOptions {
            lanes: app.proxy.dispatcher.upstream.lanes(),
            grace: std::time::Duration::from_secs(server.shutdown_grace_secs),
            max_connections: if server.max_connections > 0 { server.max_connections } else { crate::proxy::listener::connections_for(fds) },
        };
        tracing::debug!(open_files = fds, max_connections = options.max_connections, "connection limit");
        if app.ui.access() == crate::ui::Access::Closed {
            tracing::warn!("the accounts page (/ui) is off: no admin key is set and {addr} can be reached from other machines; set server.admin_key to use it");
        } else {
            tracing::info!("accounts page: http://{addr}/ui");
        }
        let router = crate::proxy::router::router(app.proxy.clone(), app.ui.clone());
        let front = crate::proxy::front::Front::new(router, app.proxy.clone());
        let ui = app.ui.clone();
        // The page's event streams end first, so the drain waits only on requests.
        let shutdown = async move {
            shutdown_signal().await;
            ui.close_streams();
        };
        crate::proxy::listener::serve(listener, front, options, shutdown).await?;
        // The usage rows of the last requests reach the database before exit.
        let usage = app.proxy.usage.clone();
        let _ = tokio::task::spawn_blocking(move || usage.flush()).await;
        tracing::info!("grantpool stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn policy_check(config: &Config, file: Option<&Path>) -> anyhow::Result<()> {
    let engine = crate::plugins::PluginEngine::for_config(config)?;
    match crate::policy::Policy::load_file(&engine, file) {
        Ok(p) => {
            println!("policy {} is valid; it runs:", file.map(|f| f.display().to_string()).unwrap_or_else(|| "(bundled default)".into()));
            println!("{}", p.describe());
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}

fn parse_kind(s: &str) -> Result<crate::plugins::PluginKind, String> {
    s.parse()
}

fn parse_lang(s: &str) -> Result<crate::plugins::authoring::Lang, String> {
    s.parse()
}

fn plugin_new(name: &str, kind: crate::plugins::PluginKind, lang: crate::plugins::authoring::Lang, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let shown = dir.display().to_string();
    let p = crate::plugins::authoring::write_project(name, kind, lang, &dir, &shown)?;
    println!("wrote {} ({lang} {kind} `{name}`):", p.dir.display());
    let mut sdk_shown = false;
    for f in &p.files {
        if f.starts_with("sdk/") || f.starts_with("lib/") {
            if !sdk_shown {
                let sdk = if lang == crate::plugins::authoring::Lang::Rust { "sdk/" } else { "lib/grantpool_plugin/" };
                println!("  {sdk:<24} the guest SDK and its WIT, vendored");
                sdk_shown = true;
            }
            continue;
        }
        let note = match f.as_str() {
            s if s == p.source => "the decision: edit this",
            "case.json" => "a case for `grantpool plugin test`",
            "policy-snippet.toml" => "the lines for policy.toml",
            "grantpool-plugin.toml" => "what `grantpool plugin build` builds",
            "Cargo.lock" => "the crate versions, pinned",
            "README.md" => "build, try, use; what a plugin may do",
            _ => "",
        };
        println!("  {f:<24} {note}");
    }
    println!("next:\n  grantpool plugin build {shown}\n  grantpool plugin test <the .wasm it prints> --input {shown}/case.json");
    Ok(())
}

fn plugin_build(dir: &Path) -> anyhow::Result<()> {
    let built = crate::plugins::authoring::build(dir)?;
    eprintln!(
        "==> {} {} in {:.1} s",
        if built.rebuilt { "built" } else { "kept" },
        built.wasm.display(),
        built.took.as_secs_f64()
    );
    println!("{}", built.wasm.display());
    println!();
    println!("# policy.toml:");
    print!("{}", crate::plugins::authoring::policy_snippet(built.manifest.kind, &built.wasm));
    Ok(())
}

fn fmt_time(secs: i64) -> String {
    let ago = crate::util::now_secs() - secs;
    if ago < 0 {
        return format!("in {}", crate::util::span(-ago));
    }
    match ago {
        0..=119 => format!("{ago}s ago"),
        120..=7199 => format!("{}m ago", ago / 60),
        7200..=172_799 => format!("{}h ago", ago / 3600),
        _ => format!("{}d ago", ago / 86400),
    }
}

fn accounts(config: Config, cmd: AccountsCmd) -> anyhow::Result<()> {
    let store = crate::app::open_store(&config, crate::store::cluster::Role::Tool)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        AccountsCmd::List { json } => {
            let report = store.load_all();
            let pool = crate::pool::Pool::new();
            pool.load(crate::store::LoadReport { accounts: report.accounts, skipped: Vec::new() });
            let views = pool.views();
            if json {
                let skipped: Vec<_> = report.skipped.iter().map(|s| serde_json::json!({"file": s.path, "cause": s.cause})).collect();
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"accounts": views, "unreadable": skipped}))?);
                return Ok(());
            }
            // Each proxy the accounts use, checked once now (a tunnel to the
            // first upstream host), so that the list says which work.
            let egress = crate::egress::Egress::new(&config.egress).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(target) = crate::app::egress_check_target(&config) {
                let timeout = std::time::Duration::from_secs(config.upstream.connect_timeout_secs.clamp(1, 5));
                let used: Vec<_> = egress.entries().into_iter().filter(|e| views.iter().any(|v| v.egress.as_deref() == Some(&*e.name)) || egress.of_account(None).is_some_and(|d| d.name == *e.name)).collect();
                rt.block_on(futures::future::join_all(used.iter().map(|e| e.check(&target, timeout))));
            }
            if views.is_empty() && report.skipped.is_empty() {
                println!("no accounts in the {} — add one with `grantpool accounts add --refresh-token …` or `grantpool accounts login`", store.location());
            }
            for v in &views {
                use crate::pool::AccountState::*;
                let state = match &v.state {
                    Active => "active".to_string(),
                    Disabled { reason, at } => format!(
                        "DISABLED {}: {}",
                        at.map(fmt_time).unwrap_or_default(),
                        reason.as_deref().unwrap_or("no reason recorded")
                    ),
                    ProxyDisabled { reason, at } => format!(
                        "off the proxy {}: {}",
                        at.map(fmt_time).unwrap_or_default(),
                        reason.as_deref().unwrap_or("no reason recorded")
                    ),
                    CoolingDown { reason, until_ms } => format!("cooling down until {}: {reason}", fmt_time((*until_ms / 1000) as i64)),
                };
                println!("{:<36} {:<32} {state}", v.id, v.email);
                if let Some(p) = egress.of_account(v.egress.as_deref()) {
                    let health = match (&p.error, p.healthy) {
                        (None, _) if p.checked_at == 0 => "not checked".to_string(),
                        (None, true) => "healthy".to_string(),
                        (e, _) => format!("UNREACHABLE: {}", e.as_deref().unwrap_or("")),
                    };
                    println!("{:<36} {:<32}   egress {} ({}): {health}", "", "", p.name, if p.endpoint.is_empty() { "not configured" } else { &p.endpoint });
                }
                for b in &v.model_cooldowns {
                    println!("{:<36} {:<32}   {} cooling down until {}: {}", "", "", b.model, fmt_time((b.until_ms / 1000) as i64), b.reason);
                }
                for (model, q) in &v.quota {
                    println!("{:<36} {:<32}   quota {model}: {:.0}% left", "", "", q.remaining_fraction * 100.0);
                }
                for line in crate::quota::describe_windows(&v.quota_windows) {
                    println!("{:<36} {:<32}   windows {line}", "", "");
                }
            }
            for s in &report.skipped {
                println!("UNREADABLE {}: {}", s.path.display(), s.cause);
            }
            Ok(())
        }
        AccountsCmd::Add { refresh_token, email, client, egress } => rt.block_on(async {
            check_egress(&config, egress.as_deref())?;
            let oauth = oauth_of(&config)?;
            let new = oauth.verify_refresh_token(client.as_deref(), &refresh_token, egress.as_deref()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(given) = email.filter(|e| !e.trim().eq_ignore_ascii_case(new.email.trim())) {
                bail!("the token belongs to {}, not {given}; nothing was written (drop --email, or add the other account's token)", new.email);
            }
            let id = upsert_and_report(&store, new)?;
            set_egress(&store, &id, egress.as_deref())
        }),
        AccountsCmd::Login { client, no_browser, egress } => {
            check_egress(&config, egress.as_deref())?;
            let id = rt.block_on(login(&config, &store, client.as_deref(), no_browser, egress.as_deref()))?;
            set_egress(&store, &id, egress.as_deref())
        }
        AccountsCmd::Edit { account, egress } => {
            let file = find(&store, &account)?;
            let Some(egress) = egress else { bail!("nothing to change: give --egress NAME (or --egress none)") };
            let egress = (!egress.eq_ignore_ascii_case("none")).then_some(egress);
            check_egress(&config, egress.as_deref())?;
            let file = store.update(&file.id, |f| f.egress = egress.clone())?;
            match &file.egress {
                Some(name) => println!("{} ({}): its calls go through egress proxy `{name}`", file.id, file.email),
                None => println!("{} ({}): its calls take the pool's default way out", file.id, file.email),
            }
            Ok(())
        }
        AccountsCmd::Import { path, egress } => {
            check_egress(&config, egress.as_deref())?;
            // The Antigravity CLI's sign-in: `agy`, or its token file by content.
            let agy = if path.as_os_str() == "agy" {
                Some(crate::agy::find_here()?)
            } else {
                crate::agy::read_token_file(&path)?.map(|t| (crate::agy::AgySource::File(path.clone()), t))
            };
            if let Some((source, token)) = agy {
                let id = rt.block_on(import_agy(&config, &store, source, token, egress.as_deref()))?;
                return set_egress(&store, &id, egress.as_deref());
            }
            let report = store.import_antigravity(&path);
            for e in &report.imported {
                let what = if e.created {
                    "added"
                } else if e.changed {
                    "updated"
                } else {
                    "unchanged"
                };
                println!("{what:<9} {} {}", e.id, e.email);
                set_egress(&store, &e.id, egress.as_deref())?;
            }
            for f in &report.failed {
                eprintln!("skipped   {}: {}", f.path.display(), f.cause);
            }
            println!(
                "imported from {}: {} added, {} updated, {} unchanged, {} skipped",
                path.display(),
                report.created(),
                report.updated(),
                report.unchanged(),
                report.failed.len()
            );
            Ok(())
        }
        AccountsCmd::Export { dir } => {
            let report = store.export(&dir)?;
            for a in &report.accounts {
                println!("exported {} {}", a.id, a.email);
            }
            for s in &report.skipped {
                eprintln!("skipped  {}: {}", s.path.display(), s.cause);
            }
            println!("exported {} accounts from the {} to {}", report.accounts.len(), store.location(), dir.display());
            Ok(())
        }
        AccountsCmd::Enable { account } => {
            let file = find(&store, &account)?;
            let file = store.update(&file.id, |f| f.clear_proxy_disabled())?;
            println!("enabled {} ({}): back on the proxy", file.id, file.email);
            if file.disabled {
                println!(
                    "note: the account is still DISABLED ({}): a dead refresh token is recovered only by a new one — run `grantpool accounts add --refresh-token NEW` or `grantpool accounts login`",
                    file.disabled_reason.as_deref().unwrap_or("no reason recorded")
                );
            }
            Ok(())
        }
        AccountsCmd::Disable { account } => {
            let file = find(&store, &account)?;
            let now = crate::util::now_secs();
            let file = store.update(&file.id, |f| f.proxy_disable("disabled by hand (CLI)", now))?;
            println!("{} ({}) is off the proxy; `grantpool accounts enable {}` puts it back", file.id, file.email, file.id);
            Ok(())
        }
        AccountsCmd::Remove { account } => {
            let file = find(&store, &account)?;
            store.remove(&file.id)?;
            println!("removed {} ({})", file.id, file.email);
            Ok(())
        }
    }
}

/// `accounts import agy` / `accounts import <agy token file>`: agy's
/// refresh token is refreshed with Antigravity's client and upserted by the
/// email Google's userinfo names (as `accounts add` does).
async fn import_agy(config: &Config, store: &Store, source: crate::agy::AgySource, token: crate::agy::AgyToken, egress: Option<&str>) -> anyhow::Result<String> {
    println!("agy sign-in found in {source}");
    let oauth = oauth_of(config)?;
    let new = oauth
        .verify_refresh_token(Some(crate::agy::OAUTH_CLIENT), &token.refresh_token, egress)
        .await
        .map_err(|e| anyhow::anyhow!("agy's sign-in from {source}: {e}; if agy's token is stale, sign in with `agy` again and re-run this, or add the account with `grantpool accounts login`"))?;
    let id = upsert_and_report(store, new).with_context(|| format!("importing agy's sign-in from {source}"))?;
    println!("imported from agy: an Antigravity account (OAuth client `{}`)", crate::agy::OAUTH_CLIENT);
    Ok(id)
}

/// The OAuth client of a CLI command, its calls routed as the server's.
fn oauth_of(config: &Config) -> anyhow::Result<crate::oauth::OAuth> {
    let egress = crate::egress::Egress::new(&config.egress).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::oauth::OAuth::with_egress(config.oauth.clone(), egress)
}

/// Refuses an egress proxy name that `[egress.proxies]` does not hold.
fn check_egress(config: &Config, egress: Option<&str>) -> anyhow::Result<()> {
    match egress {
        Some(name) => config.egress.check_name(name).map_err(|e| anyhow::anyhow!("--egress: {e}")),
        None => Ok(()),
    }
}

/// Records `egress` on account `id` (nothing when not given).
fn set_egress(store: &Store, id: &str, egress: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = egress else { return Ok(()) };
    store.update(id, |f| f.egress = Some(name.to_string())).with_context(|| format!("setting the egress proxy of {id}"))?;
    println!("{id}: its calls go through egress proxy `{name}`");
    Ok(())
}

fn find(store: &Store, account: &str) -> anyhow::Result<crate::store::AccountFile> {
    store
        .find(account)?
        .ok_or_else(|| anyhow::anyhow!("no account with id or email `{account}` in the {}", store.location()))
}

/// Upserts `new` and says what happened; the account's id.
fn upsert_and_report(store: &Store, new: NewAccount) -> anyhow::Result<String> {
    let outcome = store.upsert(new)?;
    let a = &outcome.account;
    if outcome.created {
        println!("added {} ({})", a.id, a.email);
    } else if outcome.recovered {
        println!("updated {} ({}): new token, the account is enabled again (it was disabled)", a.id, a.email);
    } else {
        println!("updated {} ({})", a.id, a.email);
    }
    if a.disabled {
        println!("note: the account is still disabled ({}); the token given is the same as before", a.disabled_reason.as_deref().unwrap_or(""));
    }
    if a.proxy_disabled {
        println!("note: the account is off the proxy ({}); `grantpool accounts enable {}` puts it back", a.proxy_disabled_reason.as_deref().unwrap_or(""), a.id);
    }
    Ok(a.id.clone())
}

/// The OAuth authorization-code flow with PKCE and a loopback redirect.
async fn login(config: &Config, store: &Store, client: Option<&str>, no_browser: bool, egress: Option<&str>) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let oauth = oauth_of(config)?;
    let client = oauth.client_named(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("opening the loopback port for the OAuth redirect")?;
    let redirect_uri = format!("http://127.0.0.1:{}/oauth2callback", listener.local_addr()?.port());
    let (verifier, challenge) = crate::oauth::pkce_pair();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = oauth.authorize_url(&client, &redirect_uri, &challenge, &state)?;
    println!("Open this URL in a browser and sign in with the Google account to add (OAuth client `{}`):\n\n  {url}\n", client.name);
    if !no_browser {
        for opener in ["xdg-open", "open"] {
            if std::process::Command::new(opener).arg(&url).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().is_ok() {
                break;
            }
        }
    }
    println!("Waiting for the redirect on {redirect_uri} …\n(Browser on another machine? Paste here the whole URL it was sent to, then Enter.)");
    let loopback = async {
        loop {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await?;
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            if target.split('?').next() != Some("/oauth2callback") {
                let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                continue;
            }
            let result = crate::oauth::code_from_redirect(&format!("http://127.0.0.1{target}"), &state);
            let (status, text) = match &result {
                Ok(_) => ("200 OK", "Signed in: grantpool is adding the account. You can close this tab.".to_string()),
                Err(e) => ("400 Bad Request", format!("Sign-in failed: {e}. You can close this tab.")),
            };
            let resp = format!("HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}", text.len());
            let _ = sock.write_all(resp.as_bytes()).await;
            return result.map_err(|e| anyhow::anyhow!(e));
        }
    };
    let pasted = async {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match crate::oauth::code_from_redirect(line, &state) {
                Ok(code) => return Ok::<String, anyhow::Error>(code),
                Err(e) => eprintln!("{e}: paste the whole address the browser was sent to (it starts with {redirect_uri})"),
            }
        }
        // No terminal (stdin closed): only the loopback redirect can come.
        std::future::pending().await
    };
    let code = tokio::time::timeout(std::time::Duration::from_secs(600), async {
        tokio::select! {
            r = loopback => r,
            r = pasted => r,
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no sign-in within 10 minutes; run `grantpool accounts login` again"))??;
    let new = oauth.account_from_code(&client, &code, &verifier, &redirect_uri, egress).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    upsert_and_report(store, new)
}

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

