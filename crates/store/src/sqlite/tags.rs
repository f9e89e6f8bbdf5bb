//! Reading and writing the tags of keys and secrets ([`crate::tag_sql`]).

use rusqlite::{Connection, params};

use super::{map_err, position};
use crate::tag_sql::TagTable;
use crate::{Result, Tag};

fn question(n: usize) -> String {
    format!("?{n}")
}

/// The tags of one record, in order.
pub(super) fn load(c: &Connection, t: &TagTable, owner: &str) -> Result<Vec<Tag>> {
    let mut stmt = c
        .prepare_cached(&t.select_one(question))
        .map_err(map_err(t.what))?;
    stmt.query_map([owner], |r| {
        Ok(Tag {
            key: r.get(0)?,
            value: r.get(1)?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(map_err(t.what))
}

/// Replaces the tags of one record.
pub(super) fn store(c: &Connection, t: &TagTable, owner: &str, tags: &[Tag]) -> Result<()> {
    c.execute(&t.delete(question), [owner])
        .map_err(map_err(t.what))?;
    for (i, tag) in tags.iter().enumerate() {
        c.execute(
            &t.insert(question),
            params![owner, position(i)?, tag.key, tag.value],
        )
        .map_err(map_err(t.what))?;
    }
    Ok(())
}
