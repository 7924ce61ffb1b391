//! `fake-google`: the fake Google upstream as a process, for tests in other
//! languages and the load harness. Prints `listening on http://HOST:PORT`
//! on stdout (and writes the base URL to `--addr-file`), then serves until
//! killed; script it through `/_fake/*`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use grantpool_tests::fake::{FakeGoogle, FakeOptions};

/// A fake Google OAuth + Code Assist (v1internal) server on loopback.
#[derive(Parser, Debug)]
#[command(name = "fake-google", version)]
struct Cli {
    /// Address to listen on (port 0 = a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Also write the base URL (`http://HOST:PORT`) to this file, atomically.
    #[arg(long, value_name = "PATH")]
    addr_file: Option<PathBuf>,
    /// Fast mode: fixed small answers, any token accepted (for benchmarks).
    #[arg(long)]
    fast: bool,
}

fn write_addr_file(path: &PathBuf, url: &str) -> std::io::Result<()> {
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, path)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let fake = match FakeGoogle::start_with(FakeOptions {
        listen: cli.listen,
        fast: cli.fast,
    })
    .await
    {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-google: cannot listen on {}: {e}", cli.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.addr_file {
        if let Err(e) = write_addr_file(path, fake.base_url()) {
            eprintln!("fake-google: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", fake.base_url());
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
