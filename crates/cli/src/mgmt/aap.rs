//! `strongroom aap …` (application access points, and the one-step quick create of the
//! console) and `strongroom client-key …` (their credentials), `docs/access.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};
use strongroom_certs::client_key;
use strongroom_certs::password::Password;

use super::access::{NewPolicy, create_network_rule, create_policy, json_field, json_list};
use super::{ConnectArgs, Failure, PageArgs, Session, field, list, print_paging, text};

const AAP_HELP: &str = "\
Quick create (the console's one step): with --instance, --resources and --network,
`aap create` makes the network rule <NAME>-network, the policy <NAME>-policy, the access
point NAME and a client key, and writes into --dir (default: the current directory):
  clientKey_<KeyId>.json            the client key (PKCS#12 in base64), mode 0600
  clientKey_<KeyId>_Password.txt    its password, mode 0600
  PrivateKmsCA_<instance>.pem       the instance's CA chain, when it has one
The password is printed once. If a step fails, what the command made is deleted again.
With --policies instead, it makes only the access point.

Connection and credentials are those of every client command (see `strongroom vpc
--help`). API errors print `Code: Message (request id)` on stderr and exit with status 1.";

/// `strongroom aap …`.
#[derive(Debug, Args)]
#[command(after_help = AAP_HELP)]
pub struct AapArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: AapCommand,
}

/// Validity and destination of a new client key.
#[derive(Debug, Args)]
struct KeyOutput {
    /// Where to write the client key files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Start of validity, `yyyy-MM-ddTHH:mm:ssZ` (with --not-after; default now).
    #[arg(long, value_name = "TIME", requires = "not_after")]
    not_before: Option<String>,
    /// End of validity, `yyyy-MM-ddTHH:mm:ssZ` (with --not-before; default 5 years).
    #[arg(long, value_name = "TIME", requires = "not_before")]
    not_after: Option<String>,
    /// Read the password from this file instead of generating one (8–64 characters,
    /// at least two of letters, digits and ~!@#$%^&*?_-).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AapCommand {
    /// Make an access point: with --policies, only it; with --instance, --resources
    /// and --network, also its network rule, policy and a client key (quick create).
    #[command(group(ArgGroup::new("mode").required(true).args(["policies", "instance"])))]
    Create {
        /// The access point's name (letters, digits, `_`, `-`, `.`; at most 64).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Existing policies, comma-separated (1–3).
        #[arg(long, value_name = "LIST", conflicts_with_all = ["instance", "resources", "network"])]
        policies: Option<String>,
        /// Quick create: the instance, `kst-…`.
        #[arg(long, value_name = "ID", requires_all = ["resources", "network"])]
        instance: Option<String>,
        /// Quick create: resources, comma-separated (`key/*`, `secret/*`, `key/key-…`).
        #[arg(long, value_name = "LIST")]
        resources: Option<String>,
        /// Quick create: allowed source addresses and CIDR blocks, comma-separated.
        #[arg(long, value_name = "LIST")]
        network: Option<String>,
        /// A description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        #[command(flatten)]
        key: KeyOutput,
    },
    /// Change an access point's policies or description.
    Update {
        /// The access point.
        name: String,
        /// The new policies, comma-separated (1–3).
        #[arg(long, value_name = "LIST")]
        policies: Option<String>,
        /// The new description.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Show one access point and its client keys.
    Get {
        /// The access point.
        name: String,
    },
    /// List access points.
    List(PageArgs),
    /// Delete an access point (refused while it has client keys).
    Delete {
        /// The access point.
        name: String,
    },
}

/// `strongroom client-key …`.
#[derive(Debug, Args)]
#[command(after_help = super::CONNECTION_HELP)]
pub struct ClientKeyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClientKeyCommand,
}

#[derive(Debug, Subcommand)]
enum ClientKeyCommand {
    /// Make a client key of an access point (at most 3 each) and write its files.
    Create {
        /// The access point.
        #[arg(long, value_name = "NAME")]
        aap: String,
        #[command(flatten)]
        key: KeyOutput,
    },
    /// Show one client key (its certificate with --json).
    Get {
        /// The key id, `KAAP.…`.
        id: String,
    },
    /// List the client keys of an access point.
    List {
        /// The access point.
        #[arg(long, value_name = "NAME")]
        aap: String,
    },
    /// Delete a client key: applications using it are refused from then on.
    Delete {
        /// The key id.
        id: String,
    },
}

/// Runs `strongroom aap …`.
pub fn run_aap(args: AapArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        AapCommand::Create {
            name,
            policies,
            instance,
            resources,
            network,
            description,
            key,
        } => match (policies, instance, resources, network) {
            (Some(policies), ..) => {
                let answer = create_point(s, name, policies, description.as_deref())?;
                if !s.printed_json(&answer) {
                    show_point(&answer);
                }
                Ok(())
            }
            (None, Some(instance), Some(resources), Some(network)) => quick_create(
                s,
                &QuickCreate {
                    name,
                    instance,
                    resources,
                    network,
                    description: description.as_deref(),
                },
                key,
            ),
            _ => Err(Failure::Other(
                "give --policies, or --instance with --resources and --network".into(),
            )),
        },
        AapCommand::Update {
            name,
            policies,
            description,
        } => {
            let mut params = vec![("Name", name.clone())];
            if let Some(policies) = policies {
                params.push(("Policies", json_list(policies)));
            }
            if let Some(description) = description {
                params.push(("Description", description.clone()));
            }
            let answer = s.call_owned("UpdateApplicationAccessPoint", &params)?;
            if !s.printed_json(&answer) {
                println!("{name} updated");
            }
            Ok(())
        }
        AapCommand::Get { name } => {
            let answer = s.call("DescribeApplicationAccessPoint", &[("Name", name.as_str())])?;
            let keys = s.call("ListClientKeys", &[("AapName", name.as_str())])?;
            if s.json {
                super::print_json(&json!({"ApplicationAccessPoint": answer, "ClientKeys": keys}));
                return Ok(());
            }
            show_point(&answer);
            show_client_keys(&keys);
            Ok(())
        }
        AapCommand::List(page) => {
            let answer = s.call_owned("ListApplicationAccessPoints", &page.params())?;
            if s.printed_json(&answer) {
                return Ok(());
            }
            let points = list(
                &answer,
                &["ApplicationAccessPoints", "ApplicationAccessPoint"],
            );
            for point in points {
                println!(
                    "{}  {}",
                    text(point, &["Name"]),
                    text(point, &["AuthenticationMethod"])
                );
            }
            print_paging(&answer, points.len());
            Ok(())
        }
        AapCommand::Delete { name } => {
            let answer = s.call("DeleteApplicationAccessPoint", &[("Name", name.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{name} deleted");
            }
            Ok(())
        }
    })
}

/// Runs `strongroom client-key …`.
pub fn run_client_key(args: ClientKeyArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        ClientKeyCommand::Create { aap, key } => {
            let made = create_client_key(s, aap, key)?;
            if !s.printed_json(&made.summary()) {
                made.print();
            }
            Ok(())
        }
        ClientKeyCommand::Get { id } => {
            let answer = s.call("GetClientKey", &[("ClientKeyId", id.as_str())])?;
            if !s.printed_json(&answer) {
                show_client_key(&answer);
            }
            Ok(())
        }
        ClientKeyCommand::List { aap } => {
            let answer = s.call("ListClientKeys", &[("AapName", aap.as_str())])?;
            if !s.printed_json(&answer) {
                show_client_keys(&answer);
            }
            Ok(())
        }
        ClientKeyCommand::Delete { id } => {
            let answer = s.call("DeleteClientKey", &[("ClientKeyId", id.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{id} deleted");
            }
            Ok(())
        }
    })
}

fn create_point(
    s: &Session,
    name: &str,
    policies: &str,
    description: Option<&str>,
) -> Result<Value, Failure> {
    let mut params = vec![
        ("Name", name.to_owned()),
        ("AuthenticationMethod", "ClientKey".to_owned()),
        ("Policies", json_list(policies)),
    ];
    if let Some(description) = description {
        params.push(("Description", description.to_owned()));
    }
    s.call_owned("CreateApplicationAccessPoint", &params)
}

fn show_point(answer: &Value) {
    field(answer, "Name", &["Name"]);
    field(answer, "Arn", &["Arn"]);
    field(answer, "AuthenticationMethod", &["AuthenticationMethod"]);
    println!("{:<22}{}", "Policies", json_field(answer, "Policies"));
    field(answer, "Description", &["Description"]);
}

fn show_client_key(key: &Value) {
    for name in [
        "ClientKeyId",
        "AapName",
        "KeyAlgorithm",
        "KeyOrigin",
        "CreateTime",
        "NotBefore",
        "NotAfter",
    ] {
        field(key, name, &[name]);
    }
}

fn show_client_keys(answer: &Value) {
    let keys = list(answer, &["ClientKeys"]);
    for key in keys {
        println!(
            "{}  valid {} to {}",
            text(key, &["ClientKeyId"]),
            text(key, &["NotBefore"]),
            text(key, &["NotAfter"])
        );
    }
    println!("({} client keys)", keys.len());
}

/// A client key made and saved.
struct MadeKey {
    answer: Value,
    files: client_key::ClientKeyFiles,
    password: Password,
    generated: bool,
}

impl MadeKey {
    /// What `--json` prints: the answer without `PrivateKeyData` (it is in the file),
    /// and where the files are.
    fn summary(&self) -> Value {
        let mut answer = self.answer.clone();
        if let Some(map) = answer.as_object_mut() {
            map.remove("PrivateKeyData");
        }
        json!({
            "ClientKey": answer,
            "KeyFile": self.files.key_file,
            "PasswordFile": self.files.password_file,
        })
    }

    fn print(&self) {
        println!(
            "client key {}  valid {} to {}",
            text(&self.answer, &["ClientKeyId"]),
            text(&self.answer, &["NotBefore"]),
            text(&self.answer, &["NotAfter"])
        );
        println!("wrote {} (mode 0600)", self.files.key_file.display());
        println!("wrote {} (mode 0600)", self.files.password_file.display());
        if self.generated {
            println!(
                "password: {}   (shown once; it is also in the password file)",
                self.password.expose_secret()
            );
        }
    }
}

/// A generated password that meets the cloud's rules (32 hex characters hold letters
/// and digits but for a chance of about one in three million; then another is drawn).
fn new_password() -> Result<Password, Failure> {
    for _ in 0..16 {
        let password =
            Password::generate().map_err(|e| Failure::Other(format!("password: {e}")))?;
        let text = password.expose_secret();
        if text.chars().any(|c| c.is_ascii_digit()) && text.chars().any(|c| c.is_ascii_alphabetic())
        {
            return Ok(password);
        }
    }
    Err(Failure::Other("could not draw a password".into()))
}

fn create_client_key(s: &Session, aap: &str, out: &KeyOutput) -> Result<MadeKey, Failure> {
    let (password, generated) = match &out.password_file {
        Some(file) => (
            client_key::read_password_file(file)
                .map_err(|e| Failure::Other(format!("{}: {e}", file.display())))?,
            false,
        ),
        None => (new_password()?, true),
    };
    let mut params = vec![
        ("AapName", aap.to_owned()),
        ("Password", password.expose_secret().to_owned()),
    ];
    if let (Some(before), Some(after)) = (&out.not_before, &out.not_after) {
        params.push(("NotBefore", before.clone()));
        params.push(("NotAfter", after.clone()));
    }
    let answer = s.call_owned("CreateClientKey", &params)?;
    let id = answer
        .get("ClientKeyId")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Other("the answer has no ClientKeyId".into()))?;
    let data = answer
        .get("PrivateKeyData")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Other("the answer has no PrivateKeyData".into()))?;
    let files = client_key::write_answer_files(&out.dir, id, data, &password).map_err(|e| {
        Failure::Other(format!(
            "the client key {id} was made but could not be saved ({e}); delete it with \
             `strongroom client-key delete {id}` and try again"
        ))
    })?;
    Ok(MadeKey {
        answer,
        files,
        password,
        generated,
    })
}

/// What the quick create is asked for.
struct QuickCreate<'a> {
    name: &'a str,
    instance: &'a str,
    resources: &'a str,
    network: &'a str,
    description: Option<&'a str>,
}

/// Something the quick create made, to delete again if a later step fails.
enum Made {
    NetworkRule(String),
    Policy(String),
    AccessPoint(String),
}

fn quick_create(s: &Session, ask: &QuickCreate<'_>, key: &KeyOutput) -> Result<(), Failure> {
    let mut made = Vec::new();
    let outcome = quick_steps(s, ask, key, &mut made);
    if outcome.is_err() {
        for step in made.iter().rev() {
            let (action, name) = match step {
                Made::NetworkRule(n) => ("DeleteNetworkRule", n),
                Made::Policy(n) => ("DeletePolicy", n),
                Made::AccessPoint(n) => ("DeleteApplicationAccessPoint", n),
            };
            match s.call(action, &[("Name", name.as_str())]) {
                Ok(_) => eprintln!("undone: {action} {name}"),
                Err(e) => eprintln!("could not undo {name} ({action}): {e:?}"),
            }
        }
    }
    outcome
}

fn quick_steps(
    s: &Session,
    ask: &QuickCreate<'_>,
    key: &KeyOutput,
    made: &mut Vec<Made>,
) -> Result<(), Failure> {
    let rule = format!("{}-network", ask.name);
    let policy = format!("{}-policy", ask.name);
    let rule_answer = create_network_rule(s, &rule, ask.network, ask.description)?;
    made.push(Made::NetworkRule(rule.clone()));
    let policy_answer = create_policy(
        s,
        &NewPolicy {
            name: &policy,
            instance: ask.instance,
            resources: ask.resources,
            network_rules: &rule,
            permissions: None,
            description: ask.description,
        },
    )?;
    made.push(Made::Policy(policy.clone()));
    let point = create_point(s, ask.name, &policy, ask.description)?;
    made.push(Made::AccessPoint(ask.name.to_owned()));
    let client_key = create_client_key(s, ask.name, key)?;
    let ca_file = write_instance_ca(s, ask.instance, &key.dir);
    if s.json {
        let mut summary = client_key.summary();
        if let Some(map) = summary.as_object_mut() {
            map.insert("NetworkRule".into(), rule_answer);
            map.insert("Policy".into(), policy_answer);
            map.insert("ApplicationAccessPoint".into(), point);
            map.insert(
                "CaFile".into(),
                ca_file.as_ref().map_or(Value::Null, |f| json!(f)),
            );
        }
        super::print_json(&summary);
        return Ok(());
    }
    println!(
        "network rule {rule}: {}",
        json_field(&rule_answer, "SourcePrivateIp")
    );
    println!(
        "policy {policy}: {} on {} ({})",
        json_field(&policy_answer, "Resources"),
        ask.instance,
        json_field(&policy_answer, "Permissions")
    );
    println!("access point {}", ask.name);
    client_key.print();
    match ca_file {
        Some(file) => println!("wrote {} (the instance CA chain)", file.display()),
        None => println!(
            "the instance has no CA chain yet; once it is enabled: strongroom instance get {} \
             --write-ca {}",
            ask.instance,
            key.dir.display()
        ),
    }
    Ok(())
}

/// Writes `PrivateKmsCA_<instance>.pem` into `dir` if the instance has a chain (an
/// instance has one once it is enabled); its path, or `None`.
fn write_instance_ca(s: &Session, instance: &str, dir: &Path) -> Option<PathBuf> {
    let answer = s
        .call("GetKmsInstance", &[("KmsInstanceId", instance)])
        .ok()?;
    let pem = answer
        .get("KmsInstance")
        .and_then(|i| i.get("CaCertificateChainPem"))
        .and_then(Value::as_str)
        .filter(|pem| !pem.is_empty())?;
    let file = dir.join(format!("PrivateKmsCA_{instance}.pem"));
    match std::fs::write(&file, pem) {
        Ok(()) => Some(file),
        Err(e) => {
            eprintln!("could not write {}: {e}", file.display());
            None
        }
    }
}
