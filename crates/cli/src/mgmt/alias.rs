//! `strongroom alias …`: aliases, the names (`alias/…`) that point at keys.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{ConnectArgs, Failure, PageArgs, Session, list, print_paging, text};

/// `strongroom alias …`.
#[derive(Debug, Args)]
#[command(after_help = ALIAS_HELP)]
pub struct AliasArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: AliasCommand,
}

const ALIAS_HELP: &str = "\
NAME is `alias/` then 1–255 letters, digits, `_`, `-` or `/` (the `alias/` prefix is added
when left out). KEY is a key id (key-…), an alias or the ARN of either.

Connection and credentials are those of every client command (see `strongroom vpc
--help`). API errors print `Code: Message (request id)` on stderr and exit with status 1.";

#[derive(Debug, Subcommand)]
enum AliasCommand {
    /// Make an alias for a key.
    Create {
        /// The alias.
        name: String,
        /// The key it names.
        key: String,
    },
    /// Point an alias at another key (of the same instance).
    Update {
        /// The alias.
        name: String,
        /// The key it names from now on.
        key: String,
    },
    /// Delete an alias (the key stays).
    Delete {
        /// The alias.
        name: String,
    },
    /// List aliases, or those of one key.
    List {
        /// Only the aliases of this key.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// Runs `strongroom alias …`.
pub fn run(args: AliasArgs) -> ExitCode {
    super::run(&args.connect, |s| match &args.command {
        AliasCommand::Create { name, key } => point(s, "CreateAlias", name, key),
        AliasCommand::Update { name, key } => point(s, "UpdateAlias", name, key),
        AliasCommand::Delete { name } => {
            let name = full_name(name);
            let answer = s.call("DeleteAlias", &[("AliasName", name.as_str())])?;
            if !s.printed_json(&answer) {
                println!("{name} deleted");
            }
            Ok(())
        }
        AliasCommand::List { key, page } => list_aliases(s, key.as_deref(), page),
    })
}

/// `alias/` + `name`, unless it has the prefix already.
fn full_name(name: &str) -> String {
    if name.starts_with("alias/") {
        name.to_owned()
    } else {
        format!("alias/{name}")
    }
}

fn point(s: &Session, action: &str, name: &str, key: &str) -> Result<(), Failure> {
    let name = full_name(name);
    let answer = s.call(action, &[("AliasName", name.as_str()), ("KeyId", key)])?;
    if !s.printed_json(&answer) {
        println!("{name} -> {key}");
    }
    Ok(())
}

fn list_aliases(s: &Session, key: Option<&str>, page: &PageArgs) -> Result<(), Failure> {
    let mut params: Vec<(&str, String)> = page.params().to_vec();
    let action = match key {
        Some(key) => {
            params.push(("KeyId", key.to_owned()));
            "ListAliasesByKeyId"
        }
        None => "ListAliases",
    };
    let answer = s.call_owned(action, &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let aliases = list(&answer, &["Aliases", "Alias"]);
    for alias in aliases {
        println!(
            "{}  {}  {}",
            text(alias, &["AliasName"]),
            text(alias, &["KeyId"]),
            text(alias, &["AliasArn"])
        );
    }
    print_paging(&answer, aliases.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_added_once() {
        assert_eq!(full_name("app"), "alias/app");
        assert_eq!(full_name("alias/app"), "alias/app");
    }
}
