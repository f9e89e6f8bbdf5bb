//! `strongroom vpc …`: VPCs, named sets of CIDR blocks an instance may be bound to.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{ConnectArgs, PageArgs, field, list, print_paging, text};

/// `strongroom vpc …`.
#[derive(Debug, Args)]
#[command(after_help = super::CONNECTION_HELP)]
pub struct VpcArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: VpcCommand,
}

#[derive(Debug, Subcommand)]
enum VpcCommand {
    /// Make a VPC; prints its id.
    Create {
        /// The VPC's name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// An IPv4 or IPv6 block or address, e.g. 10.0.0.0/8 (repeatable).
        #[arg(long = "cidr", value_name = "CIDR", required = true)]
        cidrs: Vec<String>,
    },
    /// List VPCs.
    List(PageArgs),
    /// Show one VPC.
    Get {
        /// The VPC id, `vpc-…`.
        id: String,
    },
    /// Delete a VPC (refused while bound).
    Delete {
        /// The VPC id.
        id: String,
    },
}

/// Runs `strongroom vpc …`.
pub fn run(args: VpcArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        VpcCommand::Create { name, cidrs } => {
            let blocks = serde_json::json!(cidrs).to_string();
            let answer = s.call(
                "CreateVpc",
                &[("VpcName", name.as_str()), ("CidrBlocks", &blocks)],
            )?;
            if !s.printed_json(&answer) {
                println!("{}", text(&answer, &["VpcId"]));
            }
            Ok(())
        }
        VpcCommand::List(page) => {
            let answer = s.call_owned("ListVpcs", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let vpcs = list(&answer, &["Vpcs", "Vpc"]);
            for vpc in vpcs {
                println!(
                    "{}  {}  {}",
                    text(vpc, &["VpcId"]),
                    text(vpc, &["VpcName"]),
                    text(vpc, &["CidrBlocks", "CidrBlock"])
                );
            }
            print_paging(&answer, vpcs.len());
            Ok(())
        }
        VpcCommand::Get { id } => {
            let answer = s.call("DescribeVpc", &[("VpcId", id.as_str())])?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let vpc = answer.get("Vpc").unwrap_or(&Value::Null);
            field(vpc, "VpcId", &["VpcId"]);
            field(vpc, "VpcName", &["VpcName"]);
            field(vpc, "CidrBlocks", &["CidrBlocks", "CidrBlock"]);
            field(vpc, "CreateTime", &["CreateTime"]);
            Ok(())
        }
        VpcCommand::Delete { id } => {
            let answer = s.call("DeleteVpc", &[("VpcId", id.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{id} deleted");
            }
            Ok(())
        }
    })
}
