//! Tags of keys and of secrets: one layout (`<owner> , position, tag_key, tag_value`) in
//! two tables, and the SQL both back ends use for them, so that keys and secrets cannot
//! drift apart in how their tags are kept. Placeholders differ by dialect (`?1` against
//! `$1`), so the statements take them as a function.

/// A tag table and the column naming the record a tag belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagTable {
    /// `key_tags` or `secret_tags`.
    pub(crate) table: &'static str,
    /// `key_id` or `secret_name`.
    pub(crate) owner: &'static str,
    /// What errors call a row: `key tag`, `secret tag`.
    pub(crate) what: &'static str,
}

/// Tags of keys.
pub(crate) const KEY_TAGS: TagTable = TagTable {
    table: "key_tags",
    owner: "key_id",
    what: "key tag",
};

/// Tags of secrets.
pub(crate) const SECRET_TAGS: TagTable = TagTable {
    table: "secret_tags",
    owner: "secret_name",
    what: "secret tag",
};

impl TagTable {
    /// `tag_key, tag_value` of one owner (placeholder 1), in order.
    pub(crate) fn select_one(&self, p: fn(usize) -> String) -> String {
        format!(
            "SELECT tag_key, tag_value FROM {} WHERE {} = {} ORDER BY position",
            self.table,
            self.owner,
            p(1)
        )
    }

    /// `owner, tag_key, tag_value` of the owners in the array of placeholder 1
    /// (PostgreSQL's `= ANY`), in order.
    pub(crate) fn select_any(&self, p: fn(usize) -> String) -> String {
        format!(
            "SELECT {0}, tag_key, tag_value FROM {1} WHERE {0} = ANY({2}) ORDER BY {0}, position",
            self.owner,
            self.table,
            p(1)
        )
    }

    /// Deletes every tag of one owner (placeholder 1).
    pub(crate) fn delete(&self, p: fn(usize) -> String) -> String {
        format!("DELETE FROM {} WHERE {} = {}", self.table, self.owner, p(1))
    }

    /// Inserts one tag: owner, position, key, value (placeholders 1–4).
    pub(crate) fn insert(&self, p: fn(usize) -> String) -> String {
        format!(
            "INSERT INTO {} ({}, position, tag_key, tag_value) VALUES ({}, {}, {}, {})",
            self.table,
            self.owner,
            p(1),
            p(2),
            p(3),
            p(4)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollar(i: usize) -> String {
        format!("${i}")
    }

    #[test]
    fn statements_name_their_table_and_owner() {
        assert_eq!(
            SECRET_TAGS.insert(dollar),
            "INSERT INTO secret_tags (secret_name, position, tag_key, tag_value) VALUES ($1, $2, $3, $4)"
        );
        assert_eq!(
            KEY_TAGS.select_any(dollar),
            "SELECT key_id, tag_key, tag_value FROM key_tags WHERE key_id = ANY($1) ORDER BY key_id, position"
        );
    }
}
