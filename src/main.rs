use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match platformctl::cli::Cli::try_parse() {
        Ok(cli) => platformctl::main(cli),
        Err(e) => platformctl::parse_failed(e, std::env::args_os()),
    }
}
