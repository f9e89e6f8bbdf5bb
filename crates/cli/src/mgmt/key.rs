//! `strongroom key …`: keys of a connected instance (`docs/keys.md`): their lifecycle,
//! versions and rotation, tags, public keys, and importing material from a file
//! ([`import`]).

mod import;
pub(crate) mod tags;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};

use super::{ConnectArgs, Failure, PageArgs, Session, field, list, print_paging, text};

/// `strongroom key …`.
#[derive(Debug, Args)]
#[command(after_help = KEY_HELP)]
pub struct KeyArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: KeyCommand,
}

const KEY_HELP: &str = "\
KEY is a key id (key-…), an alias (alias/…) or the ARN of either.

Connection and credentials are those of every client command (see `strongroom vpc
--help`): --endpoint, --ca-file, --access-key-id, --access-key-secret-file, --profile,
or STRONGROOM_* variables, or ~/.strongroom/profile.toml. API errors print
`Code: Message (request id)` on stderr and exit with status 1.";

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a key in an instance; prints its id on the first line, then its metadata.
    Create(CreateArgs),
    /// List keys, optionally filtered.
    List(ListArgs),
    /// Show a key's metadata.
    Describe {
        /// The key.
        key: String,
    },
    /// Enable a disabled key.
    Enable {
        /// The key.
        key: String,
    },
    /// Disable a key: it can no longer be used until enabled.
    Disable {
        /// The key.
        key: String,
    },
    /// Schedule the key's deletion after a waiting period.
    #[command(name = "schedule-deletion")]
    ScheduleDeletion {
        /// The key.
        key: String,
        /// Days before the key is destroyed, 7 to 366.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(7..=366))]
        days: u32,
    },
    /// Cancel a scheduled deletion.
    #[command(name = "cancel-deletion")]
    CancelDeletion {
        /// The key.
        key: String,
    },
    /// Turn deletion protection on (or off with --off).
    Protect {
        /// The key.
        key: String,
        /// Turn protection off.
        #[arg(long)]
        off: bool,
        /// Why the key is protected.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Replace the key's description.
    #[command(name = "update-description")]
    UpdateDescription {
        /// The key.
        key: String,
        /// The new description (may be empty).
        text: String,
    },
    /// Make a new key version in the HSM; it becomes the primary version.
    Rotate {
        /// The key.
        key: String,
    },
    /// List the key's versions, oldest first.
    Versions {
        /// The key.
        key: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Turn automatic rotation on or off (symmetric keys made in the HSM).
    #[command(name = "rotation-policy")]
    #[command(group(ArgGroup::new("switch").required(true).args(["enable", "disable"])))]
    RotationPolicy {
        /// The key.
        key: String,
        /// Rotate automatically.
        #[arg(long)]
        enable: bool,
        /// Stop rotating automatically.
        #[arg(long)]
        disable: bool,
        /// Time between rotations: `<n>d`, `<n>h`, `<n>m` or `<n>s`, 7 to 730 days.
        #[arg(long, value_name = "INTERVAL")]
        interval: Option<String>,
    },
    /// Print an asymmetric key's public key (PEM).
    #[command(name = "public-key")]
    PublicKey {
        /// The key.
        key: String,
        /// The key version (default: the primary version).
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
        /// Write the PEM to FILE instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import key material from a file into an EXTERNAL key (the whole BYOK flow).
    Import(import::ImportArgs),
    /// Set tags (an existing tag key gets the new value).
    Tag {
        /// The key.
        key: String,
        /// Tags, KEY=VALUE.
        #[arg(value_name = "K=V", required = true)]
        tags: Vec<String>,
    },
    /// Remove tags.
    Untag {
        /// The key.
        key: String,
        /// Tag keys.
        #[arg(value_name = "K", required = true)]
        tag_keys: Vec<String>,
    },
    /// List the key's tags.
    Tags {
        /// The key.
        key: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The instance, `kst-…` (it must be Connected).
    #[arg(long, value_name = "KST")]
    instance: String,
    /// Aliyun_AES_256 (default), Aliyun_AES_192, Aliyun_AES_128, Aliyun_SM4, RSA_2048,
    /// RSA_3072, RSA_4096, EC_P256, EC_P256K or EC_SM2.
    #[arg(long, value_name = "SPEC")]
    spec: Option<String>,
    /// ENCRYPT/DECRYPT or SIGN/VERIFY (default: SIGN/VERIFY for specs that can sign).
    #[arg(long, value_name = "USAGE")]
    usage: Option<String>,
    /// The other usage, for RSA and EC_SM2 key pairs that must do both.
    #[arg(long, value_name = "USAGE")]
    additional_usage: Option<String>,
    /// Aliyun_KMS (default: made in the HSM) or EXTERNAL (material imported later with
    /// `key import`).
    #[arg(long, value_name = "ORIGIN")]
    origin: Option<String>,
    /// A description.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// A tag, KEY=VALUE (repeatable, at most 20).
    #[arg(long = "tag", value_name = "K=V")]
    tags: Vec<String>,
    /// Rotate automatically at this interval (`<n>d|h|m|s`, 7 to 730 days; symmetric
    /// keys made in the HSM only).
    #[arg(long, value_name = "INTERVAL")]
    rotation_interval: Option<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Keys of this instance only.
    #[arg(long, value_name = "KST")]
    instance: Option<String>,
    /// Keys in this state: Enabled, Disabled, PendingDeletion, PendingImport
    /// (repeatable: any of them).
    #[arg(long, value_name = "STATE")]
    state: Vec<String>,
    /// Keys of this spec (repeatable).
    #[arg(long, value_name = "SPEC")]
    spec: Vec<String>,
    /// Keys with this usage (repeatable).
    #[arg(long, value_name = "USAGE")]
    usage: Vec<String>,
    /// Keys with this alias, `alias/…` (repeatable).
    #[arg(long, value_name = "ALIAS")]
    alias: Vec<String>,
    /// Keys with a tag of this key (repeatable).
    #[arg(long, value_name = "K")]
    tag_key: Vec<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// Runs `strongroom key …`.
pub fn run(args: KeyArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        KeyCommand::Create(create) => self::create(s, create),
        KeyCommand::List(list) => list_keys(s, list),
        KeyCommand::Describe { key } => describe(s, key),
        KeyCommand::Enable { key } => simple(s, "EnableKey", key, &[], "enabled"),
        KeyCommand::Disable { key } => simple(s, "DisableKey", key, &[], "disabled"),
        KeyCommand::ScheduleDeletion { key, days } => simple(
            s,
            "ScheduleKeyDeletion",
            key,
            &[("PendingWindowInDays", days.to_string())],
            &format!("scheduled for deletion in {days} days"),
        ),
        KeyCommand::CancelDeletion { key } => {
            simple(s, "CancelKeyDeletion", key, &[], "deletion cancelled")
        }
        KeyCommand::Protect { key, off, reason } => protect(s, key, *off, reason.as_deref()),
        KeyCommand::UpdateDescription { key, text } => simple(
            s,
            "UpdateKeyDescription",
            key,
            &[("Description", text.clone())],
            "description updated",
        ),
        KeyCommand::Rotate { key } => rotate(s, key),
        KeyCommand::Versions { key, page } => versions(s, key, page),
        KeyCommand::RotationPolicy {
            key,
            enable,
            disable: _,
            interval,
        } => rotation_policy(s, key, *enable, interval.as_deref()),
        KeyCommand::PublicKey { key, version, out } => {
            public_key(s, key, version.as_deref(), out.as_ref())
        }
        KeyCommand::Import(import) => import::run(s, import),
        KeyCommand::Tag { key, tags } => tags::tag(s, key, tags),
        KeyCommand::Untag { key, tag_keys } => tags::untag(s, key, tag_keys),
        KeyCommand::Tags { key } => tags::list_tags(s, key),
    })
}

fn create(s: &Session, args: &CreateArgs) -> Result<(), Failure> {
    let mut params: Vec<(&str, String)> = vec![("DKMSInstanceId", args.instance.clone())];
    let mut put = |name: &'static str, value: Option<&String>| {
        if let Some(value) = value {
            params.push((name, value.clone()));
        }
    };
    put("KeySpec", args.spec.as_ref());
    put("KeyUsage", args.usage.as_ref());
    put("AdditionalKeyUsage", args.additional_usage.as_ref());
    put("Origin", args.origin.as_ref());
    put("Description", args.description.as_ref());
    if let Some(interval) = &args.rotation_interval {
        params.push(("EnableAutomaticRotation", "true".to_owned()));
        params.push(("RotationInterval", interval.clone()));
    }
    if !args.tags.is_empty() {
        params.push(("Tags", tags::to_json(&args.tags)?));
    }
    let answer = s.call_owned("CreateKey", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let metadata = answer.get("KeyMetadata").unwrap_or(&Value::Null);
    println!("{}", text(metadata, &["KeyId"]));
    print_metadata(metadata);
    Ok(())
}

fn list_keys(s: &Session, args: &ListArgs) -> Result<(), Failure> {
    let mut filters = Vec::new();
    let mut filter = |key: &str, values: &[String]| {
        if !values.is_empty() {
            filters.push(json!({"Key": key, "Values": values}));
        }
    };
    filter("DKMSInstanceId", args.instance.as_slice());
    filter("KeyState", &args.state);
    filter("KeySpec", &args.spec);
    filter("KeyUsage", &args.usage);
    filter("AliasName", &args.alias);
    filter("TagKey", &args.tag_key);
    let mut params = args.page.params().to_vec();
    if !filters.is_empty() {
        params.push(("Filters", Value::Array(filters).to_string()));
    }
    let answer = s.call_owned("ListKeys", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let keys = list(&answer, &["Keys", "Key"]);
    for key in keys {
        println!("{}  {}", text(key, &["KeyId"]), text(key, &["KeyArn"]));
    }
    print_paging(&answer, keys.len());
    Ok(())
}

fn describe(s: &Session, key: &str) -> Result<(), Failure> {
    let answer = s.call("DescribeKey", &[("KeyId", key)])?;
    if !s.printed_json(&answer) {
        print_metadata(answer.get("KeyMetadata").unwrap_or(&Value::Null));
    }
    Ok(())
}

/// Prints a `KeyMetadata`, one field a line; fields the key does not have are left out.
fn print_metadata(metadata: &Value) {
    for name in [
        "KeyId",
        "Arn",
        "DKMSInstanceId",
        "KeySpec",
        "KeyUsage",
        "AdditionalKeyUsage",
        "KeyState",
        "Origin",
        "ProtectionLevel",
        "Description",
        "Creator",
        "CreationDate",
        "DeleteDate",
        "DeletionProtection",
        "DeletionProtectionDescription",
        "AutomaticRotation",
        "RotationInterval",
        "LastRotationDate",
        "NextRotationDate",
        "PrimaryKeyVersion",
        "MaterialExpireTime",
    ] {
        let always = matches!(name, "KeyId" | "KeySpec" | "KeyState" | "Description");
        if always || text(metadata, &[name]) != "-" {
            field(metadata, name, &[name]);
        }
    }
}

/// An action on one key that answers nothing but the request id.
fn simple(
    s: &Session,
    action: &str,
    key: &str,
    extra: &[(&'static str, String)],
    done: &str,
) -> Result<(), Failure> {
    let mut params = vec![("KeyId", key.to_owned())];
    params.extend_from_slice(extra);
    let answer = s.call_owned(action, &params)?;
    if !s.printed_json(&answer) {
        println!("{key}: {done}");
    }
    Ok(())
}

fn protect(s: &Session, key: &str, off: bool, reason: Option<&str>) -> Result<(), Failure> {
    let mut params = vec![
        ("ProtectedResourceArn", key),
        (
            "EnableDeletionProtection",
            if off { "false" } else { "true" },
        ),
    ];
    if let Some(reason) = reason {
        params.push(("DeletionProtectionDescription", reason));
    }
    let answer = s.call("SetDeletionProtection", &params)?;
    if !s.printed_json(&answer) {
        let state = if off { "off" } else { "on" };
        println!("{key}: deletion protection {state}");
    }
    Ok(())
}

fn rotate(s: &Session, key: &str) -> Result<(), Failure> {
    let answer = s.call("CreateKeyVersion", &[("KeyId", key)])?;
    if !s.printed_json(&answer) {
        println!("{}", text(&answer, &["KeyVersion", "KeyVersionId"]));
    }
    Ok(())
}

fn versions(s: &Session, key: &str, page: &PageArgs) -> Result<(), Failure> {
    let mut params = vec![("KeyId", key.to_owned())];
    params.extend(page.params());
    let answer = s.call_owned("ListKeyVersions", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let versions = list(&answer, &["KeyVersions", "KeyVersion"]);
    for version in versions {
        println!(
            "{}  {}",
            text(version, &["KeyVersionId"]),
            text(version, &["CreationDate"])
        );
    }
    print_paging(&answer, versions.len());
    Ok(())
}

fn rotation_policy(
    s: &Session,
    key: &str,
    enable: bool,
    interval: Option<&str>,
) -> Result<(), Failure> {
    let mut params = vec![
        ("KeyId", key),
        (
            "EnableAutomaticRotation",
            if enable { "true" } else { "false" },
        ),
    ];
    if let Some(interval) = interval {
        params.push(("RotationInterval", interval));
    }
    let answer = s.call("UpdateRotationPolicy", &params)?;
    if !s.printed_json(&answer) {
        let state = if enable { "on" } else { "off" };
        println!("{key}: automatic rotation {state}");
    }
    Ok(())
}

fn public_key(
    s: &Session,
    key: &str,
    version: Option<&str>,
    out: Option<&PathBuf>,
) -> Result<(), Failure> {
    let mut params = vec![("KeyId", key)];
    if let Some(version) = version {
        params.push(("KeyVersionId", version));
    }
    let answer = s.call("GetPublicKey", &params)?;
    let pem = answer
        .get("PublicKey")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the answer for {key} carries no PublicKey"))?;
    if let Some(file) = out {
        std::fs::write(file, pem).map_err(|e| format!("{}: {e}", file.display()))?;
        // On stderr, so that `--json` output stays one JSON document.
        eprintln!(
            "wrote the public key of {} (version {}) to {}",
            text(&answer, &["KeyId"]),
            text(&answer, &["KeyVersionId"]),
            file.display()
        );
    }
    if !s.printed_json(&answer) && out.is_none() {
        print!("{pem}");
        if !pem.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}
