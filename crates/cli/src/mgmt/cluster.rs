//! `strongroom hsm-cluster …`: HSM clusters known to the KMS.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{ConnectArgs, Failure, PageArgs, Session, field, list, print_paging, text};

/// `strongroom hsm-cluster …`.
#[derive(Debug, Args)]
#[command(after_help = super::CONNECTION_HELP)]
pub struct ClusterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Register a cluster: at least two nodes in at least two zones.
    Register {
        /// The cluster's name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// A node's host port and zone, `HOST:PORT=ZONE` (repeat for each node).
        #[arg(long = "node", value_name = "HOST:PORT=ZONE", value_parser = parse_node, required = true)]
        nodes: Vec<(String, String)>,
    },
    /// List clusters.
    List(PageArgs),
    /// Show one cluster.
    Get {
        /// The cluster id, `hsmc-…`.
        id: String,
    },
    /// Forget a cluster (refused while an instance uses it).
    Deregister {
        /// The cluster id.
        id: String,
    },
}

fn parse_node(text: &str) -> Result<(String, String), String> {
    match text.rsplit_once('=') {
        Some((address, zone)) if !address.is_empty() && !zone.is_empty() => {
            Ok((address.to_owned(), zone.to_owned()))
        }
        _ => Err(format!("{text:?} is not HOST:PORT=ZONE")),
    }
}

/// Runs `strongroom hsm-cluster …`.
pub fn run(args: ClusterArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        ClusterCommand::Register { name, nodes } => register(s, name, nodes),
        ClusterCommand::List(page) => {
            let answer = s.call_owned("ListHsmClusters", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let clusters = list(&answer, &["HsmClusters", "HsmCluster"]);
            for cluster in clusters {
                println!(
                    "{}  {}  nodes {}  instance {}",
                    text(cluster, &["HsmClusterId"]),
                    text(cluster, &["HsmClusterName"]),
                    nodes(cluster),
                    text(cluster, &["KmsInstanceId"])
                );
            }
            print_paging(&answer, clusters.len());
            Ok(())
        }
        ClusterCommand::Get { id } => {
            let answer = s.call("GetHsmCluster", &[("HsmClusterId", id.as_str())])?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let cluster = answer.get("HsmCluster").unwrap_or(&Value::Null);
            field(cluster, "HsmClusterId", &["HsmClusterId"]);
            field(cluster, "HsmClusterName", &["HsmClusterName"]);
            field(cluster, "CreateTime", &["CreateTime"]);
            field(cluster, "KmsInstanceId", &["KmsInstanceId"]);
            for node in list(cluster, &["Nodes", "Node"]) {
                println!(
                    "{:<22}{} (zone {})",
                    "Node",
                    text(node, &["Address"]),
                    text(node, &["ZoneId"])
                );
            }
            Ok(())
        }
        ClusterCommand::Deregister { id } => {
            let answer = s.call("DeregisterHsmCluster", &[("HsmClusterId", id.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{id} deregistered");
            }
            Ok(())
        }
    })
}

fn register(s: &Session, name: &str, nodes: &[(String, String)]) -> Result<(), Failure> {
    let nodes: Vec<Value> = nodes
        .iter()
        .map(|(address, zone)| json!({"Address": address, "ZoneId": zone}))
        .collect();
    let nodes = Value::Array(nodes).to_string();
    let answer = s.call(
        "RegisterHsmCluster",
        &[("HsmClusterName", name), ("Nodes", &nodes)],
    )?;
    if !s.printed_json(&answer) {
        println!("{}", text(&answer, &["HsmClusterId"]));
    }
    Ok(())
}

/// `address=zone,…` of a cluster object.
fn nodes(cluster: &Value) -> String {
    list(cluster, &["Nodes", "Node"])
        .iter()
        .map(|node| format!("{}={}", text(node, &["Address"]), text(node, &["ZoneId"])))
        .collect::<Vec<_>>()
        .join(",")
}
