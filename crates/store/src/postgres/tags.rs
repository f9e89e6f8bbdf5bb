//! Reading and writing the tags of keys and secrets ([`crate::tag_sql`]).

use std::collections::HashMap;

use tokio_postgres::GenericClient;

use super::{get, map_err, position};
use crate::tag_sql::TagTable;
use crate::{Result, Tag};

fn dollar(n: usize) -> String {
    format!("${n}")
}

/// The tags of the records `owners`, by owner, each list in order (one query for all).
pub(super) async fn load_all(
    c: &(impl GenericClient + Sync),
    t: &TagTable,
    owners: &[&str],
) -> Result<HashMap<String, Vec<Tag>>> {
    let rows = c
        .query(&t.select_any(dollar), &[&owners])
        .await
        .map_err(map_err(t.what))?;
    let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
    for r in &rows {
        tags.entry(get(r, 0, t.what)?).or_default().push(Tag {
            key: get(r, 1, t.what)?,
            value: get(r, 2, t.what)?,
        });
    }
    Ok(tags)
}

/// Replaces the tags of one record.
pub(super) async fn store(
    c: &(impl GenericClient + Sync),
    t: &TagTable,
    owner: &str,
    tags: &[Tag],
) -> Result<()> {
    c.execute(&t.delete(dollar), &[&owner])
        .await
        .map_err(map_err(t.what))?;
    for (i, tag) in tags.iter().enumerate() {
        c.execute(
            &t.insert(dollar),
            &[&owner, &position(i)?, &tag.key, &tag.value],
        )
        .await
        .map_err(map_err(t.what))?;
    }
    Ok(())
}
