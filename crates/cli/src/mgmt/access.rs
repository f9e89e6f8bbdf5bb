//! `strongroom network-rule …` and `strongroom policy …`: who may reach an instance's
//! keys and secrets, and from where (`docs/access.md`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{ConnectArgs, Failure, PageArgs, Session, field, list, print_paging, text};

/// `RbacPermission/Template/CryptoServiceKeyUser`.
pub const KEY_USER: &str = "RbacPermission/Template/CryptoServiceKeyUser";
/// `RbacPermission/Template/CryptoServiceSecretUser`.
pub const SECRET_USER: &str = "RbacPermission/Template/CryptoServiceSecretUser";

const ACCESS_HELP: &str = "\
Lists (--sources, --resources, --network-rules, --permissions) are comma-separated.
Sources are IPv4/IPv6 addresses or CIDR blocks (10.0.0.0/8, 192.168.1.10, fd00::/8).
Resources are key/<key id>, key/*, secret/<name> or secret/*; a trailing * is a prefix.
Permissions are `key` (CryptoServiceKeyUser: cryptographic operations with keys) and
`secret` (CryptoServiceSecretUser: reading secrets), or the full template names; the
default is what the resources need.

Connection and credentials are those of every client command (see `strongroom vpc
--help`). API errors print `Code: Message (request id)` on stderr and exit with status 1.";

/// `strongroom network-rule …`.
#[derive(Debug, Args)]
#[command(after_help = ACCESS_HELP)]
pub struct NetworkRuleArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: NetworkRuleCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkRuleCommand {
    /// Make a network rule: the source addresses a policy admits.
    Create {
        /// The rule's name (letters, digits, `_`, `-`, `.`; at most 64).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Addresses and CIDR blocks, comma-separated.
        #[arg(long, value_name = "LIST")]
        sources: String,
        /// A description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Change a rule's sources or description (policies naming it follow at once).
    Update {
        /// The rule.
        name: String,
        /// The new addresses and CIDR blocks, comma-separated.
        #[arg(long, value_name = "LIST")]
        sources: Option<String>,
        /// The new description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Show one rule.
    Get {
        /// The rule.
        name: String,
    },
    /// List rules.
    List(PageArgs),
    /// Delete a rule (refused while a policy names it).
    Delete {
        /// The rule.
        name: String,
    },
}

/// `strongroom policy …`.
#[derive(Debug, Args)]
#[command(after_help = ACCESS_HELP)]
pub struct PolicyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Make a policy: permissions on resources of one instance, from the networks of
    /// some network rules.
    Create {
        /// The policy's name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The instance it applies to, `kst-…`.
        #[arg(long, value_name = "ID")]
        instance: String,
        /// Resources, comma-separated (`key/*`, `secret/db-*`, …).
        #[arg(long, value_name = "LIST")]
        resources: String,
        /// Network rules whose sources may call, comma-separated.
        #[arg(long, value_name = "LIST")]
        network_rules: String,
        /// `key`, `secret` or both, comma-separated (default: what the resources need).
        #[arg(long, value_name = "LIST")]
        permissions: Option<String>,
        /// A description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Change a policy (access points using it follow at once).
    Update {
        /// The policy.
        name: String,
        /// The new resources.
        #[arg(long, value_name = "LIST")]
        resources: Option<String>,
        /// The new network rules.
        #[arg(long, value_name = "LIST")]
        network_rules: Option<String>,
        /// The new permissions.
        #[arg(long, value_name = "LIST")]
        permissions: Option<String>,
        /// The new description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Show one policy.
    Get {
        /// The policy.
        name: String,
    },
    /// List policies.
    List(PageArgs),
    /// Delete a policy (refused while an access point names it).
    Delete {
        /// The policy.
        name: String,
    },
}

/// A comma-separated list as the JSON array text the API takes.
pub fn json_list(list: &str) -> String {
    let items: Vec<&str> = split(list);
    json!(items).to_string()
}

fn split(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The permission templates for `--permissions` (`key`, `secret` or full names), or,
/// without it, those the resources need.
pub fn permissions(given: Option<&str>, resources: &str) -> Result<String, Failure> {
    let mut out: Vec<&str> = Vec::new();
    match given {
        Some(list) => {
            for item in split(list) {
                let full = match item {
                    "key" => KEY_USER,
                    "secret" => SECRET_USER,
                    full if full == KEY_USER || full == SECRET_USER => full,
                    other => {
                        return Err(Failure::Other(format!(
                            "--permissions: {other:?} is not `key`, `secret` or a template name"
                        )));
                    }
                };
                if !out.contains(&full) {
                    out.push(full);
                }
            }
        }
        None => {
            let resources = split(resources);
            if resources.iter().any(|r| r.starts_with("key/")) {
                out.push(KEY_USER);
            }
            if resources.iter().any(|r| r.starts_with("secret/")) {
                out.push(SECRET_USER);
            }
            // Resources of neither kind: the node refuses them, naming `Resources`.
            if out.is_empty() {
                out.push(KEY_USER);
            }
        }
    }
    Ok(json!(out).to_string())
}

/// `{"NetworkRules": [...]}` for a comma-separated list of rule names.
pub fn control_rules(list: &str) -> String {
    json!({ "NetworkRules": split(list) }).to_string()
}

/// A JSON-text field of an answer (`SourcePrivateIp`, `Resources`, …) shown as a
/// comma-separated list.
pub fn json_field(answer: &Value, key: &str) -> String {
    let raw = text(answer, &[key]);
    match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Ok(Value::Object(map)) => map
            .get("NetworkRules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or(raw),
        _ => raw,
    }
}

/// Runs `strongroom network-rule …`.
pub fn run_network_rule(args: NetworkRuleArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        NetworkRuleCommand::Create {
            name,
            sources,
            description,
        } => {
            let answer = create_network_rule(s, name, sources, description.as_deref())?;
            if !s.printed_json(&answer) {
                show_network_rule(&answer);
            }
            Ok(())
        }
        NetworkRuleCommand::Update {
            name,
            sources,
            description,
        } => {
            let mut params = vec![("Name", name.clone())];
            if let Some(sources) = sources {
                params.push(("SourcePrivateIp", json_list(sources)));
            }
            if let Some(description) = description {
                params.push(("Description", description.clone()));
            }
            done(
                s,
                &s.call_owned("UpdateNetworkRule", &params)?,
                name,
                "updated",
            )
        }
        NetworkRuleCommand::Get { name } => {
            let answer = s.call("DescribeNetworkRule", &[("Name", name.as_str())])?;
            if !s.printed_json(&answer) {
                show_network_rule(&answer);
            }
            Ok(())
        }
        NetworkRuleCommand::List(page) => {
            let answer = s.call_owned("ListNetworkRules", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let rules = list(&answer, &["NetworkRules", "NetworkRule"]);
            for rule in rules {
                println!("{}  {}", text(rule, &["Name"]), text(rule, &["Type"]));
            }
            print_paging(&answer, rules.len());
            Ok(())
        }
        NetworkRuleCommand::Delete { name } => done(
            s,
            &s.call("DeleteNetworkRule", &[("Name", name.as_str())])?,
            name,
            "deleted",
        ),
    })
}

/// `CreateNetworkRule` of type `Private`.
pub fn create_network_rule(
    s: &Session,
    name: &str,
    sources: &str,
    description: Option<&str>,
) -> Result<Value, Failure> {
    let mut params = vec![
        ("Name", name.to_owned()),
        ("Type", "Private".to_owned()),
        ("SourcePrivateIp", json_list(sources)),
    ];
    if let Some(description) = description {
        params.push(("Description", description.to_owned()));
    }
    s.call_owned("CreateNetworkRule", &params)
}

fn show_network_rule(answer: &Value) {
    field(answer, "Name", &["Name"]);
    field(answer, "Arn", &["Arn"]);
    field(answer, "Type", &["Type"]);
    println!(
        "{:<22}{}",
        "SourcePrivateIp",
        json_field(answer, "SourcePrivateIp")
    );
    field(answer, "Description", &["Description"]);
}

/// `<name> <what>`, or the answer with `--json`.
fn done(s: &Session, answer: &Value, name: &str, what: &str) -> Result<(), Failure> {
    if !s.printed_json(answer) {
        println!("{name} {what}");
    }
    Ok(())
}

/// What `CreatePolicy` takes.
pub struct NewPolicy<'a> {
    /// `Name`.
    pub name: &'a str,
    /// `KmsInstance`.
    pub instance: &'a str,
    /// Comma-separated resources.
    pub resources: &'a str,
    /// Comma-separated network rule names.
    pub network_rules: &'a str,
    /// `--permissions`, if given.
    pub permissions: Option<&'a str>,
    /// `Description`, if given.
    pub description: Option<&'a str>,
}

/// `CreatePolicy`.
pub fn create_policy(s: &Session, policy: &NewPolicy<'_>) -> Result<Value, Failure> {
    let mut params = vec![
        ("Name", policy.name.to_owned()),
        ("KmsInstance", policy.instance.to_owned()),
        (
            "Permissions",
            permissions(policy.permissions, policy.resources)?,
        ),
        ("Resources", json_list(policy.resources)),
        ("AccessControlRules", control_rules(policy.network_rules)),
    ];
    if let Some(description) = policy.description {
        params.push(("Description", description.to_owned()));
    }
    s.call_owned("CreatePolicy", &params)
}

/// Runs `strongroom policy …`.
pub fn run_policy(args: PolicyArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        PolicyCommand::Create {
            name,
            instance,
            resources,
            network_rules,
            permissions,
            description,
        } => {
            let answer = create_policy(
                s,
                &NewPolicy {
                    name,
                    instance,
                    resources,
                    network_rules,
                    permissions: permissions.as_deref(),
                    description: description.as_deref(),
                },
            )?;
            if !s.printed_json(&answer) {
                show_policy(&answer);
            }
            Ok(())
        }
        PolicyCommand::Update {
            name,
            resources,
            network_rules,
            permissions: given,
            description,
        } => {
            let mut params = vec![("Name", name.clone())];
            if let Some(resources) = resources {
                params.push(("Resources", json_list(resources)));
            }
            if given.is_some() || resources.is_some() {
                params.push((
                    "Permissions",
                    permissions(given.as_deref(), resources.as_deref().unwrap_or_default())?,
                ));
            }
            if let Some(rules) = network_rules {
                params.push(("AccessControlRules", control_rules(rules)));
            }
            if let Some(description) = description {
                params.push(("Description", description.clone()));
            }
            done(s, &s.call_owned("UpdatePolicy", &params)?, name, "updated")
        }
        PolicyCommand::Get { name } => {
            let answer = s.call("DescribePolicy", &[("Name", name.as_str())])?;
            if !s.printed_json(&answer) {
                show_policy(&answer);
            }
            Ok(())
        }
        PolicyCommand::List(page) => {
            let answer = s.call_owned("ListPolicies", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let policies = list(&answer, &["Policies", "Policy"]);
            for policy in policies {
                println!("{}", text(policy, &["Name"]));
            }
            print_paging(&answer, policies.len());
            Ok(())
        }
        PolicyCommand::Delete { name } => done(
            s,
            &s.call("DeletePolicy", &[("Name", name.as_str())])?,
            name,
            "deleted",
        ),
    })
}

fn show_policy(answer: &Value) {
    field(answer, "Name", &["Name"]);
    field(answer, "Arn", &["Arn"]);
    field(answer, "KmsInstance", &["KmsInstance"]);
    for key in ["Permissions", "Resources", "AccessControlRules"] {
        let label = if key == "AccessControlRules" {
            "NetworkRules"
        } else {
            key
        };
        println!("{label:<22}{}", json_field(answer, key));
    }
    field(answer, "Description", &["Description"]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn lists_become_the_json_the_api_takes() {
        assert_eq!(
            json_list("10.0.0.0/8, 192.168.1.10,,"),
            r#"["10.0.0.0/8","192.168.1.10"]"#
        );
        assert_eq!(control_rules("a,b"), r#"{"NetworkRules":["a","b"]}"#);
    }

    #[test]
    fn permissions_follow_the_resources_unless_given() {
        assert_eq!(
            permissions(None, "key/*").unwrap(),
            json!([KEY_USER]).to_string()
        );
        assert_eq!(
            permissions(None, "key/*,secret/db").unwrap(),
            json!([KEY_USER, SECRET_USER]).to_string()
        );
        assert_eq!(
            permissions(Some("secret,key,secret"), "key/*").unwrap(),
            json!([SECRET_USER, KEY_USER]).to_string()
        );
        assert!(permissions(Some("admin"), "key/*").is_err());
    }

    #[test]
    fn json_fields_are_shown_as_lists() {
        let answer = json!({
            "SourcePrivateIp": r#"["10.0.0.0/8","::1"]"#,
            "AccessControlRules": r#"{"NetworkRules":["a","b"]}"#,
            "Description": "plain",
        });
        assert_eq!(json_field(&answer, "SourcePrivateIp"), "10.0.0.0/8,::1");
        assert_eq!(json_field(&answer, "AccessControlRules"), "a,b");
        assert_eq!(json_field(&answer, "Description"), "plain");
    }
}
