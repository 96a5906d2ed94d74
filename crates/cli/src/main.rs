//! The `realip` binary: parses arguments, calls the libraries, maps
//! failures to exit codes (0 ok, 1 rejected input, 2 usage error).

use std::process::ExitCode;

use clap::Parser as _;

mod args;
mod doctor;
mod echo;
mod failure;
mod hex;
mod lab;
mod manifests;
mod migrate;
mod pp;
mod proxy;
mod resolve;

use args::{Cli, Command, MigrateCommand, PpCommand};

/// The proxy allocates per request (headers, log lines); mimalloc's
/// thread-local free lists cost less than glibc malloc here (measured in
/// docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Resolve(a) => resolve::run(&a),
        Command::Pp { command: PpCommand::Decode(a) } => pp::decode(&a),
        Command::Pp { command: PpCommand::Encode(a) } => pp::encode(&a),
        Command::Echo(a) => echo::run(&a),
        Command::Proxy(a) => proxy::run(&a),
        Command::Doctor(a) => doctor::run(&a),
        Command::Lab(a) => lab::run(&a),
        Command::Manifests(a) => manifests::run(&a),
        Command::Migrate { command: MigrateCommand::IngressNginx(a) } => migrate::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}
