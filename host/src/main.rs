//! The `grantpool` binary: see `grantpool --help`.

fn main() -> std::process::ExitCode {
    grantpool::cli::main()
}
