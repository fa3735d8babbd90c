//! The `thptrace` binary: a thin front over the library.
use std::process::ExitCode;

use clap::Parser;
use thptrace::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Trace(args)) => args,
        None => cli.trace,
    };
    thptrace::logging::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("thptrace: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(thptrace::trace::run(args)) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("thptrace: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
