//! `strongroom secret …`: generic secrets of an instance (`docs/secrets.md`): creating
//! them and putting new versions from a file or standard input, reading a version back
//! ([`value`]), listing, describing, the versions and their stages, deletion and its
//! cancellation, and random passwords.

mod show;
mod value;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{ConnectArgs, Failure, PageArgs, Session, field, text};

/// `strongroom secret …`.
#[derive(Debug, Args)]
#[command(after_help = SECRET_HELP)]
pub struct SecretArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: SecretCommand,
}

const SECRET_HELP: &str = "\
A secret's value is never taken as a flag value (it would be in the shell's history and
the process list): --data-file FILE reads UTF-8 text exactly as it is in FILE (no
trimming), --binary-file FILE any bytes; `-` reads standard input. A text value holds
at most 30,720 bytes, a binary one 23,040 (30,720 once in base64). KEY is a symmetric ENCRYPT/DECRYPT key of the instance: its id (key-…),
an alias (alias/…) or the ARN of either.

`secret get` prints the value on stdout exactly as stored (binary values as base64)
and the version and its stages on stderr; --output FILE writes the value's bytes to a
new file readable by its owner only.

Connection and credentials are those of every client command (see `strongroom vpc
--help`): --endpoint, --ca-file, --access-key-id, --access-key-secret-file, --profile,
or STRONGROOM_* variables, or ~/.strongroom/profile.toml. API errors print
`Code: Message (request id)` on stderr and exit with status 1.";

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Make a secret, its first version (stage ACSCurrent) holding the value of a file.
    Create(CreateArgs),
    /// Add a version; it takes ACSCurrent unless --stage says otherwise.
    Put(PutArgs),
    /// Print a version's value (default: the ACSCurrent one), or write it to a file.
    Get(value::GetArgs),
    /// List secrets, optionally filtered.
    List(show::ListArgs),
    /// Show a secret's metadata and tags.
    Describe {
        /// The secret.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List a secret's versions, oldest first, with their stages.
    Versions {
        /// The secret.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Also the versions without a stage.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Schedule a secret's deletion after a recovery window (or destroy it at once
    /// with --force).
    Delete {
        /// The secret.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Days before the secret is destroyed, 7 to 30 (default 30).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(7..=30))]
        recovery_days: Option<u32>,
        /// Destroy the secret now, without a recovery window: it cannot be restored.
        #[arg(long, conflicts_with = "recovery_days")]
        force: bool,
    },
    /// Cancel a scheduled deletion.
    Restore {
        /// The secret.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// Print a random password drawn by the node (nothing is stored).
    #[command(name = "random-password")]
    RandomPassword(PasswordArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The secret's name: 1–192 letters, digits and `_/+=.@-`.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The key that encrypts the secret's versions.
    #[arg(long, value_name = "KEY")]
    key: String,
    #[command(flatten)]
    value: value::ValueArgs,
    /// The first version's id.
    #[arg(long, value_name = "V", default_value = "v1")]
    version_id: String,
    /// A description.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// A tag, KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "K=V")]
    tags: Vec<String>,
    /// The key's instance, `kst-…` (checked against the key's).
    #[arg(long, value_name = "KST")]
    instance: Option<String>,
}

#[derive(Debug, Args)]
struct PutArgs {
    /// The secret.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The new version's id (putting the same id and value again changes nothing).
    #[arg(long, value_name = "V")]
    version_id: String,
    #[command(flatten)]
    value: value::ValueArgs,
    /// A stage for the new version (repeatable; default ACSCurrent).
    #[arg(long = "stage", value_name = "S")]
    stages: Vec<String>,
}

#[derive(Debug, Args)]
struct PasswordArgs {
    /// The password's length, 8 to 128 (default 32).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(8..=128))]
    length: Option<u32>,
    /// Characters the password must not contain.
    #[arg(long, value_name = "CHARS", allow_hyphen_values = true)]
    exclude_characters: Option<String>,
    /// No lowercase letters.
    #[arg(long)]
    exclude_lowercase: bool,
    /// No uppercase letters.
    #[arg(long)]
    exclude_uppercase: bool,
    /// No digits.
    #[arg(long)]
    exclude_numbers: bool,
    /// No punctuation.
    #[arg(long)]
    exclude_punctuation: bool,
}

/// Runs `strongroom secret …`.
pub fn run(args: SecretArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        SecretCommand::Create(create) => self::create(s, create),
        SecretCommand::Put(put) => self::put(s, put),
        SecretCommand::Get(get) => value::get(s, get),
        SecretCommand::List(list) => show::list(s, list),
        SecretCommand::Describe { name } => show::describe(s, name),
        SecretCommand::Versions { name, all, page } => show::versions(s, name, *all, page),
        SecretCommand::Delete {
            name,
            recovery_days,
            force,
        } => delete(s, name, *recovery_days, *force),
        SecretCommand::Restore { name } => {
            let answer = s.call("RestoreSecret", &[("SecretName", name.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{name}: deletion cancelled");
            }
            Ok(())
        }
        SecretCommand::RandomPassword(password) => random_password(s, password),
    })
}

fn create(s: &Session, args: &CreateArgs) -> Result<(), Failure> {
    let data = args.value.read()?;
    let tags = if args.tags.is_empty() {
        None
    } else {
        Some(super::key::tags::to_json(&args.tags)?)
    };
    let mut params: Vec<(&str, &str)> = vec![
        ("SecretName", &args.name),
        ("SecretData", data.encoded()),
        ("SecretDataType", data.data_type()),
        ("VersionId", &args.version_id),
        ("EncryptionKeyId", &args.key),
    ];
    if let Some(instance) = &args.instance {
        params.push(("DKMSInstanceId", instance));
    }
    if let Some(description) = &args.description {
        params.push(("Description", description));
    }
    if let Some(tags) = &tags {
        params.push(("Tags", tags));
    }
    let answer = s.call("CreateSecret", &params)?;
    if !s.printed_json(&answer) {
        for name in [
            "SecretName",
            "Arn",
            "SecretType",
            "VersionId",
            "DKMSInstanceId",
            "AutomaticRotation",
        ] {
            field(&answer, name, &[name]);
        }
    }
    Ok(())
}

fn put(s: &Session, args: &PutArgs) -> Result<(), Failure> {
    let data = args.value.read()?;
    let stages = (!args.stages.is_empty()).then(|| json!(args.stages).to_string());
    let mut params: Vec<(&str, &str)> = vec![
        ("SecretName", &args.name),
        ("VersionId", &args.version_id),
        ("SecretData", data.encoded()),
        ("SecretDataType", data.data_type()),
    ];
    if let Some(stages) = &stages {
        params.push(("VersionStages", stages));
    }
    let answer = s.call("PutSecretValue", &params)?;
    if !s.printed_json(&answer) {
        field(&answer, "SecretName", &["SecretName"]);
        field(&answer, "VersionId", &["VersionId"]);
        field(&answer, "VersionStages", &["VersionStages", "VersionStage"]);
    }
    Ok(())
}

fn delete(s: &Session, name: &str, days: Option<u32>, force: bool) -> Result<(), Failure> {
    let mut params = vec![("SecretName", name.to_owned())];
    if force {
        params.push(("ForceDeleteWithoutRecovery", "true".to_owned()));
    } else if let Some(days) = days {
        params.push(("RecoveryWindowInDays", days.to_string()));
    }
    let answer = s.call_owned("DeleteSecret", &params)?;
    if !s.printed_json(&answer) {
        if force {
            println!("{name}: deleted");
        } else {
            println!(
                "{name}: scheduled for deletion at {}",
                text(&answer, &["PlannedDeleteTime"])
            );
        }
    }
    Ok(())
}

fn random_password(s: &Session, args: &PasswordArgs) -> Result<(), Failure> {
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(length) = args.length {
        params.push(("PasswordLength", length.to_string()));
    }
    if let Some(excluded) = &args.exclude_characters {
        params.push(("ExcludeCharacters", excluded.clone()));
    }
    for (name, set) in [
        ("ExcludeLowercase", args.exclude_lowercase),
        ("ExcludeUppercase", args.exclude_uppercase),
        ("ExcludeNumbers", args.exclude_numbers),
        ("ExcludePunctuation", args.exclude_punctuation),
    ] {
        if set {
            params.push((name, "true".to_owned()));
        }
    }
    let answer = s.call_owned("GetRandomPassword", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let password = answer
        .get("RandomPassword")
        .and_then(Value::as_str)
        .ok_or_else(|| "the answer carries no RandomPassword".to_owned())?;
    println!("{password}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SecretArgs,
    }

    pub(super) fn parse(args: &[&str]) -> Result<SecretArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("secret").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn the_value_comes_from_exactly_one_file() {
        let base = ["create", "--name", "db", "--key", "alias/k"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            parse(&args)
        };
        assert!(with(&[]).is_err());
        assert!(with(&["--data-file", "a", "--binary-file", "b"]).is_err());
        assert!(with(&["--data-file", "-"]).is_ok());
        assert!(with(&["--binary-file", "b"]).is_ok());
        // No flag takes the value itself.
        assert!(with(&["--data-file", "a", "--data", "x"]).is_err());
        assert!(parse(&["put", "--name", "db", "--data-file", "a"]).is_err());
    }

    #[test]
    fn exclusive_choices_are_refused_before_anything_is_sent() {
        assert!(parse(&["get", "--name", "db", "--version-id", "v1", "--stage", "S"]).is_err());
        assert!(parse(&["delete", "--name", "db", "--force", "--recovery-days", "7"]).is_err());
        assert!(parse(&["delete", "--name", "db", "--recovery-days", "6"]).is_err());
        assert!(parse(&["delete", "--name", "db", "--recovery-days", "30"]).is_ok());
        assert!(parse(&["random-password", "--length", "7"]).is_err());
        assert!(parse(&["random-password", "--length", "128"]).is_ok());
    }
}
