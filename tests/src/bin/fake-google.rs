//! `fake-google`: the fake Google upstream as a process, for tests in other
//! languages and the load harness. Prints `listening on http://HOST:PORT`
//! (the default listener) and one `host <label> http://HOST:PORT` line per
//! listener on stdout (and writes the default base URL to `--addr-file`,
//! every listener to `--hosts-file`), then serves until killed; script it
//! through `/_fake/*`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use grantpool_tests::fake::{FakeGoogle, FakeOptions};

/// A fake Google OAuth + Code Assist (v1internal) server on loopback.
#[derive(Parser, Debug)]
#[command(name = "fake-google", version)]
struct Cli {
    /// Address of the default listener (port 0 = a free port); the other
    /// hosts listen on free ports of the same address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Also write the default base URL (`http://HOST:PORT`) to this file, atomically.
    #[arg(long, value_name = "PATH")]
    addr_file: Option<PathBuf>,
    /// Host labels to listen as, comma-separated, default first
    /// (e.g. `daily,prod,sandbox`); default one listener, `prod`.
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    hosts: Vec<String>,
    /// Also write `{"<label>": "http://HOST:PORT", …}` to this file, atomically.
    #[arg(long, value_name = "PATH")]
    hosts_file: Option<PathBuf>,
    /// Start with envelope / profile strictness off (`strict_envelope`
    /// false); unknown fields, schemas, projects, signatures and model
    /// access are checked either way.
    #[arg(long)]
    lenient_envelope: bool,
    /// Accept any OAuth client id and secret (`accept_any_client`).
    #[arg(long)]
    any_client: bool,
    /// Fast mode: fixed small answers, any token accepted (for benchmarks).
    #[arg(long)]
    fast: bool,
}

fn write_atomically(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let fake = match FakeGoogle::start_with(FakeOptions {
        listen: cli.listen,
        fast: cli.fast,
        hosts: cli.hosts.clone(),
        strict_envelope: !cli.lenient_envelope,
        accept_any_client: cli.any_client,
    })
    .await
    {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-google: cannot listen on {}: {e}", cli.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.hosts_file {
        let map: serde_json::Map<String, serde_json::Value> = fake
            .hosts()
            .into_iter()
            .map(|h| (h.label, serde_json::Value::String(h.url)))
            .collect();
        if let Err(e) = write_atomically(path, &format!("{}\n", serde_json::Value::Object(map))) {
            eprintln!("fake-google: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Some(path) = &cli.addr_file {
        if let Err(e) = write_atomically(path, &format!("{}\n", fake.base_url())) {
            eprintln!("fake-google: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", fake.base_url());
    for h in fake.hosts() {
        let _ = writeln!(out, "host {} {}", h.label, h.url);
    }
    let _ = out.flush();

    let term = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    fake.shutdown().await;
    std::process::ExitCode::SUCCESS
}
