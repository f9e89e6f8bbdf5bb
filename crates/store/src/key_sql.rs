//! SQL text shared by both back ends' key code: the column list and the `WHERE` clause of
//! [`crate::Store::list_keys`], so the two dialects cannot drift apart in what a filter
//! means. Only placeholders differ (`?1` against `$1`), so the builder takes them as a
//! function.

use crate::KeyFilter;

/// Columns of `keys` in the order both back ends decode them, qualified by the alias `k`.
pub(crate) const KEY_COLS: &str = "k.id, k.instance_id, k.spec, k.usage, k.additional_usage, \
    k.origin, k.protection_level, k.description, k.creator, k.state, k.created_at, \
    k.delete_date, k.deletion_protection, k.deletion_protection_description, \
    k.automatic_rotation, k.rotation_interval_secs, k.last_rotation, k.next_rotation, \
    k.primary_version, k.material_expires_at, k.updated_at, k.version";

/// A `WHERE` clause over `keys k` and the text values its placeholders stand for, in
/// placeholder order (placeholders are numbered from 1).
#[derive(Debug)]
pub(crate) struct KeyWhere {
    /// `WHERE …`, or empty when the filter matches every key.
    pub(crate) sql: String,
    /// One value per placeholder.
    pub(crate) args: Vec<String>,
}

/// Builds the clause for `filter`: the values of one list are alternatives (`IN`), the
/// lists are all required (`AND`); an empty list is no condition. Values only ever go
/// into placeholders, never into the text.
pub(crate) fn key_where(filter: &KeyFilter, placeholder: fn(usize) -> String) -> KeyWhere {
    let mut b = Builder {
        conds: Vec::new(),
        args: Vec::new(),
        placeholder,
    };
    if let Some(id) = &filter.instance_id {
        b.any("k.instance_id IN ({})", std::slice::from_ref(id));
    }
    let states: Vec<String> = filter
        .states
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    b.any("k.state IN ({})", &states);
    b.any("k.spec IN ({})", &filter.specs);
    b.any_twice(
        "(k.usage IN ({}) OR k.additional_usage IN ({}))",
        &filter.usages,
    );
    b.any("k.protection_level IN ({})", &filter.protection_levels);
    b.any("k.origin IN ({})", &filter.origins);
    b.any("k.id IN ({})", &filter.key_ids);
    b.any("k.creator IN ({})", &filter.creators);
    b.any(
        "EXISTS (SELECT 1 FROM aliases a WHERE a.key_id = k.id AND a.name IN ({}))",
        &filter.alias_names,
    );
    b.any(
        "EXISTS (SELECT 1 FROM key_tags t WHERE t.key_id = k.id AND t.tag_key IN ({}))",
        &filter.tag_keys,
    );
    b.any(
        "EXISTS (SELECT 1 FROM key_tags t WHERE t.key_id = k.id AND t.tag_value IN ({}))",
        &filter.tag_values,
    );
    let sql = if b.conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", b.conds.join(" AND "))
    };
    KeyWhere { sql, args: b.args }
}

struct Builder {
    conds: Vec<String>,
    args: Vec<String>,
    placeholder: fn(usize) -> String,
}

impl Builder {
    /// Adds `template` with its `{}` replaced by one placeholder per value, unless
    /// `values` is empty.
    /// As [`Builder::any`] for a template with two `{}`, each given the values.
    fn any_twice(&mut self, template: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let mut parts = template.splitn(3, "{}");
        let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let mut marks = || -> String {
            values
                .iter()
                .map(|v| {
                    self.args.push(v.clone());
                    (self.placeholder)(self.args.len())
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let first = marks();
        let second = marks();
        self.conds.push(format!("{a}{first}{b}{second}{c}"));
    }

    fn any(&mut self, template: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                self.args.push(v.clone());
                (self.placeholder)(self.args.len())
            })
            .collect();
        self.conds.push(template.replace("{}", &marks.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyState;

    fn dollar(n: usize) -> String {
        format!("${n}")
    }

    #[test]
    fn empty_filter_matches_everything() {
        let w = key_where(&KeyFilter::default(), dollar);
        assert_eq!(w.sql, "");
        assert!(w.args.is_empty());
    }

    #[test]
    fn lists_are_or_within_and_across_and_values_stay_out_of_the_text() {
        let f = KeyFilter {
            instance_id: Some("kst-1".to_owned()),
            states: vec![KeyState::Enabled, KeyState::Disabled],
            tag_keys: vec!["x'); DROP TABLE keys; --".to_owned()],
            ..KeyFilter::default()
        };
        let w = key_where(&f, dollar);
        assert_eq!(
            w.sql,
            "WHERE k.instance_id IN ($1) AND k.state IN ($2, $3) AND EXISTS (SELECT 1 FROM \
             key_tags t WHERE t.key_id = k.id AND t.tag_key IN ($4))"
        );
        assert_eq!(
            w.args,
            ["kst-1", "Enabled", "Disabled", "x'); DROP TABLE keys; --"]
        );
    }
}
