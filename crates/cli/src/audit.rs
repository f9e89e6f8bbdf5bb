//! `strongroom audit verify FILE`: checks a node's hash-chained audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strongroom_server::audit::{self, Verdict};

/// `strongroom audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that no line of an audit log was removed, reordered or altered; exit
    /// status 0 when intact, 1 at the first broken line.
    Verify {
        /// The audit log, e.g. strongroom-data/audit.log.
        file: PathBuf,
    },
}

/// Runs `strongroom audit …`.
pub fn run(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::Verify { file } => match audit::verify(&file) {
            Ok(Verdict::Intact(lines)) => {
                println!("{}: intact, {lines} lines", file.display());
                ExitCode::SUCCESS
            }
            Ok(Verdict::Broken { line, reason }) => {
                println!("{}: broken at line {line}: {reason}", file.display());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
