//! The `thptrace` binary: a thin front over the library.
use std::process::ExitCode;

use clap::Parser;
use thptrace::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Trace(args)) => args,
        Some(Command::Explain(args)) => {
            thptrace::logging::init(0);
            return exit(thptrace::explain_cmd::run(&args));
        }
        Some(Command::Check(args)) => {
            thptrace::logging::init(args.verbose);
            return exit(runtime().and_then(|rt| rt.block_on(thptrace::check::run(&args))));
        }
        Some(Command::Record(args)) => {
            thptrace::logging::init(args.run.verbose);
            return exit(runtime().and_then(|rt| rt.block_on(thptrace::record::run(args))));
        }
        Some(Command::Report(args)) => {
            thptrace::logging::init(0);
            return exit(thptrace::report::run(&args));
        }
        None => cli.trace,
    };
    thptrace::logging::init(args.run.verbose);
    exit(runtime().and_then(|rt| rt.block_on(thptrace::trace::run(args))))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

fn exit(result: anyhow::Result<i32>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("thptrace: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
