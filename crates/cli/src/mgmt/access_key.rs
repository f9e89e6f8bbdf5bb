//! `strongroom access-key …`: administrator AccessKeys of the management API.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{ConnectArgs, Failure, PageArgs, Session, list, print_paging, text};

/// `strongroom access-key …`.
#[derive(Debug, Args)]
#[command(after_help = super::CONNECTION_HELP)]
pub struct AccessKeyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: AccessKeyCommand,
}

#[derive(Debug, Subcommand)]
enum AccessKeyCommand {
    /// Make an AccessKey; its secret is shown this once.
    Create {
        /// What the key is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List AccessKeys (without secrets).
    List(PageArgs),
    /// Disable an AccessKey (refused for the last active one).
    Disable {
        /// The AccessKey id.
        id: String,
    },
    /// Enable a disabled AccessKey.
    Enable {
        /// The AccessKey id.
        id: String,
    },
    /// Delete an AccessKey (refused for the last active one).
    Delete {
        /// The AccessKey id.
        id: String,
    },
}

/// Runs `strongroom access-key …`.
pub fn run(args: AccessKeyArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        AccessKeyCommand::Create { description } => {
            let answer = s.call(
                "CreateAccessKey",
                &[("Description", description.as_deref().unwrap_or(""))],
            )?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            println!(
                "AccessKeyId      {}",
                text(&answer, &["AccessKey", "AccessKeyId"])
            );
            println!(
                "AccessKeySecret  {}",
                text(&answer, &["AccessKey", "AccessKeySecret"])
            );
            println!("WARNING: the secret is shown only now and never again; store it safely.");
            Ok(())
        }
        AccessKeyCommand::List(page) => {
            let answer = s.call_owned("ListAccessKeys", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let keys = list(&answer, &["AccessKeys", "AccessKey"]);
            for key in keys {
                println!(
                    "{}  {:<8}  {}  {}",
                    text(key, &["AccessKeyId"]),
                    text(key, &["Status"]),
                    text(key, &["CreateDate"]),
                    text(key, &["Description"])
                );
            }
            print_paging(&answer, keys.len());
            Ok(())
        }
        AccessKeyCommand::Disable { id } => set_status(s, id, "Inactive", "disabled"),
        AccessKeyCommand::Enable { id } => set_status(s, id, "Active", "enabled"),
        AccessKeyCommand::Delete { id } => {
            let answer = s.call("DeleteAccessKey", &[("UserAccessKeyId", id.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{id} deleted");
            }
            Ok(())
        }
    })
}

fn set_status(s: &Session, id: &str, status: &str, done: &str) -> Result<(), Failure> {
    let answer = s.call(
        "UpdateAccessKey",
        &[("UserAccessKeyId", id), ("Status", status)],
    )?;
    if !s.printed_json(&answer) {
        println!("{id} {done}");
    }
    Ok(())
}
