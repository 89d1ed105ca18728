use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = platformctl::cli::Cli::parse();
    platformctl::main(cli)
}
