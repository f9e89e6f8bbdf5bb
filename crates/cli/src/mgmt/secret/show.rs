//! `strongroom secret list|describe|versions`: what a secret is, without its value.

use clap::Args;
use serde_json::{Value, json};

use crate::mgmt::{Failure, PageArgs, Session, field, list as items, print_paging, text};

/// `strongroom secret list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Secrets whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    name_contains: Option<String>,
    /// Secrets of this instance only.
    #[arg(long, value_name = "KST")]
    instance: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// The `Filters` JSON of `secret list`, or `None` when nothing filters.
fn filters(args: &ListArgs) -> Option<String> {
    let mut filters = Vec::new();
    if let Some(text) = &args.name_contains {
        filters.push(json!({"Key": "SecretName", "Values": [text]}));
    }
    if let Some(instance) = &args.instance {
        filters.push(json!({"Key": "DKMSInstanceId", "Values": [instance]}));
    }
    (!filters.is_empty()).then(|| Value::Array(filters).to_string())
}

pub fn list(s: &Session, args: &ListArgs) -> Result<(), Failure> {
    let mut params = args.page.params().to_vec();
    if let Some(filters) = filters(args) {
        params.push(("Filters", filters));
    }
    let answer = s.call_owned("ListSecrets", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let secrets = items(&answer, &["SecretList", "Secret"]);
    let rows: Vec<[String; 4]> = secrets
        .iter()
        .map(|secret| {
            [
                text(secret, &["SecretName"]),
                text(secret, &["SecretType"]),
                text(secret, &["CreateTime"]),
                text(secret, &["PlannedDeleteTime"]),
            ]
        })
        .collect();
    let header = ["NAME", "TYPE", "CREATED", "PLANNED DELETION"].map(str::to_owned);
    print_table(&header, &rows);
    print_paging(&answer, secrets.len());
    Ok(())
}

/// Prints `header` and `rows` in columns two spaces apart.
fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

pub fn describe(s: &Session, name: &str) -> Result<(), Failure> {
    let answer = s.call(
        "DescribeSecret",
        &[("SecretName", name), ("FetchTags", "true")],
    )?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    for field_name in [
        "SecretName",
        "Arn",
        "SecretType",
        "Description",
        "EncryptionKeyId",
        "DKMSInstanceId",
        "CreateTime",
        "UpdateTime",
        "PlannedDeleteTime",
        "AutomaticRotation",
        "ExtendedConfig",
    ] {
        let optional = matches!(field_name, "PlannedDeleteTime" | "ExtendedConfig");
        if !optional || text(&answer, &[field_name]) != "-" {
            field(&answer, field_name, &[field_name]);
        }
    }
    let tags: Vec<String> = items(&answer, &["Tags", "Tag"])
        .iter()
        .map(|tag| format!("{}={}", text(tag, &["TagKey"]), text(tag, &["TagValue"])))
        .collect();
    if !tags.is_empty() {
        println!("{:<22}{}", "Tags", tags.join(","));
    }
    Ok(())
}

pub fn versions(s: &Session, name: &str, all: bool, page: &PageArgs) -> Result<(), Failure> {
    let mut params = vec![("SecretName", name.to_owned())];
    if all {
        params.push(("IncludeDeprecated", "true".to_owned()));
    }
    params.extend(page.params());
    let answer = s.call_owned("ListSecretVersionIds", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let versions = items(&answer, &["VersionIds", "VersionId"]);
    let rows: Vec<[String; 3]> = versions
        .iter()
        .map(|version| {
            [
                text(version, &["VersionId"]),
                text(version, &["CreateTime"]),
                text(version, &["VersionStages", "VersionStage"]),
            ]
        })
        .collect();
    let header = ["VERSION", "CREATED", "STAGES"].map(str::to_owned);
    print_table(&header, &rows);
    print_paging(&answer, versions.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_are_the_apis_json() {
        let list_args =
            |args: &[&str]| match crate::mgmt::secret::tests::parse(args).unwrap().command {
                crate::mgmt::secret::SecretCommand::List(list) => list,
                other => panic!("{other:?}"),
            };
        let both = list_args(&["list", "--name-contains", "db", "--instance", "kst-1"]);
        assert_eq!(
            filters(&both).as_deref(),
            Some(
                r#"[{"Key":"SecretName","Values":["db"]},{"Key":"DKMSInstanceId","Values":["kst-1"]}]"#
            )
        );
        assert_eq!(filters(&list_args(&["list"])), None);
    }
}
