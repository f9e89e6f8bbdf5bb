//! The two statements of a filtered, paged list (keys, secrets), the same for both back
//! ends: the page's rows and the total. Placeholders differ by dialect, so the builder
//! takes them as a function; the filter's own placeholders come first, then LIMIT and
//! OFFSET.

/// What a list reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listing<'a> {
    /// The columns, qualified by the table's alias.
    pub(crate) cols: &'a str,
    /// The table and its alias: `keys k`.
    pub(crate) from: &'a str,
    /// The filter's `WHERE …`, or empty.
    pub(crate) where_sql: &'a str,
    /// `ORDER BY` terms: a stable order, the last term unique.
    pub(crate) order: &'a str,
    /// How many placeholders `where_sql` has.
    pub(crate) args: usize,
    /// What errors call the rows.
    pub(crate) what: &'static str,
}

impl Listing<'_> {
    /// The page's rows, with LIMIT and OFFSET as the two placeholders after the filter's.
    pub(crate) fn select(&self, p: fn(usize) -> String) -> String {
        format!(
            "SELECT {} FROM {} {} ORDER BY {} LIMIT {} OFFSET {}",
            self.cols,
            self.from,
            self.where_sql,
            self.order,
            p(self.args + 1),
            p(self.args + 2)
        )
    }

    /// The number of rows the filter matches.
    pub(crate) fn count(&self) -> String {
        format!("SELECT COUNT(*) FROM {} {}", self.from, self.where_sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_filters() {
        let l = Listing {
            cols: "k.id",
            from: "keys k",
            where_sql: "WHERE k.state = $1",
            order: "k.created_at, k.id",
            args: 1,
            what: "keys",
        };
        assert_eq!(
            l.select(|n| format!("${n}")),
            "SELECT k.id FROM keys k WHERE k.state = $1 ORDER BY k.created_at, k.id LIMIT $2 OFFSET $3"
        );
        assert_eq!(l.count(), "SELECT COUNT(*) FROM keys k WHERE k.state = $1");
    }
}
