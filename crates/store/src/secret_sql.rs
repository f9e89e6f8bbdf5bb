//! SQL text shared by both back ends' secret code: the column list and the `WHERE` clause
//! of [`crate::Store::list_secrets`], so the two dialects cannot drift apart in what a
//! filter means. Only placeholders and the substring function differ, so the builder takes
//! them as arguments.

use crate::SecretFilter;

/// Columns of `secrets` in the order both back ends decode them, qualified by the alias `s`.
pub(crate) const SECRET_COLS: &str = "s.name, s.instance_id, s.secret_type, \
    s.encryption_key_id, s.description, s.extended_config, s.created_at, s.updated_at, \
    s.planned_delete_at, s.version";

/// Columns of `secret_versions` in the order both back ends decode them (without stages).
pub(crate) const SECRET_VERSION_COLS: &str =
    "secret_name, version_id, data_type, ciphertext, created_at";

/// The stage of the first version of a new secret.
pub(crate) const CURRENT_STAGE: &str = "ACSCurrent";

/// A `WHERE` clause over `secrets s` and the text values its placeholders stand for, in
/// placeholder order (placeholders are numbered from 1).
#[derive(Debug)]
pub(crate) struct SecretWhere {
    /// `WHERE …`, or empty when the filter matches every secret.
    pub(crate) sql: String,
    /// One value per placeholder.
    pub(crate) args: Vec<String>,
}

/// Builds the clause for `filter`: the values of one list are alternatives (`OR`), the
/// lists are all required (`AND`); an empty list is no condition. `contains(haystack,
/// needle)` is the dialect's substring test (`instr(h, n) > 0`, `strpos(h, n) > 0`).
/// Values only ever go into placeholders, never into the text.
pub(crate) fn secret_where(
    filter: &SecretFilter,
    placeholder: fn(usize) -> String,
    contains: fn(&str, &str) -> String,
) -> SecretWhere {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mark = |v: &String, args: &mut Vec<String>| -> String {
        args.push(v.clone());
        placeholder(args.len())
    };
    if let Some(id) = &filter.instance_id {
        let p = mark(id, &mut args);
        conds.push(format!("s.instance_id = {p}"));
    }
    for (column, values) in [
        ("s.name", &filter.name_contains),
        ("s.description", &filter.description_contains),
    ] {
        if values.is_empty() {
            continue;
        }
        let alternatives: Vec<String> = values
            .iter()
            .map(|v| contains(column, &mark(v, &mut args)))
            .collect();
        conds.push(format!("({})", alternatives.join(" OR ")));
    }
    for (column, values) in [
        ("t.tag_key", &filter.tag_keys),
        ("t.tag_value", &filter.tag_values),
    ] {
        if values.is_empty() {
            continue;
        }
        let marks: Vec<String> = values.iter().map(|v| mark(v, &mut args)).collect();
        conds.push(format!(
            "EXISTS (SELECT 1 FROM secret_tags t WHERE t.secret_name = s.name AND {column} \
             IN ({}))",
            marks.join(", ")
        ));
    }
    let sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    SecretWhere { sql, args }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollar(n: usize) -> String {
        format!("${n}")
    }

    fn strpos(haystack: &str, needle: &str) -> String {
        format!("strpos({haystack}, {needle}) > 0")
    }

    #[test]
    fn empty_filter_matches_everything() {
        let w = secret_where(&SecretFilter::default(), dollar, strpos);
        assert_eq!(w.sql, "");
        assert!(w.args.is_empty());
    }

    #[test]
    fn lists_are_or_within_and_across_and_values_stay_out_of_the_text() {
        let f = SecretFilter {
            instance_id: Some("kst-1".to_owned()),
            name_contains: vec!["db".to_owned(), "x'); DROP TABLE secrets; --".to_owned()],
            tag_values: vec!["prod".to_owned()],
            ..SecretFilter::default()
        };
        let w = secret_where(&f, dollar, strpos);
        assert_eq!(
            w.sql,
            "WHERE s.instance_id = $1 AND (strpos(s.name, $2) > 0 OR strpos(s.name, $3) > 0) \
             AND EXISTS (SELECT 1 FROM secret_tags t WHERE t.secret_name = s.name AND \
             t.tag_value IN ($4))"
        );
        assert_eq!(
            w.args,
            ["kst-1", "db", "x'); DROP TABLE secrets; --", "prod"]
        );
    }
}
