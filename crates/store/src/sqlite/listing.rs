//! A filtered, paged list ([`crate::listing`]) on SQLite.

use rusqlite::types::Value;
use rusqlite::{Connection, ParamsFromIter, params_from_iter};

use super::{map_err, to_u64};
use crate::listing::Listing;
use crate::{Page, PageOf, Result};

fn question(n: usize) -> String {
    format!("?{n}")
}

/// One page of `list`, its rows read by `query` (the caller's column decoder), and the
/// total; `args` fill the filter's placeholders. The caller runs it in one transaction.
pub(super) fn page<T>(
    c: &Connection,
    list: &Listing<'_>,
    args: &[String],
    page: Page,
    query: impl FnOnce(&Connection, &str, ParamsFromIter<Vec<Value>>) -> Result<Vec<T>>,
) -> Result<PageOf<T>> {
    let (limit, offset) = page.limit_offset();
    let values: Vec<Value> = args
        .iter()
        .map(|a| Value::Text(a.clone()))
        .chain([limit, offset].map(Value::Integer))
        .collect();
    let items = query(c, &list.select(question), params_from_iter(values))?;
    let total: i64 = c
        .query_row(&list.count(), params_from_iter(args), |r| r.get(0))
        .map_err(map_err(list.what))?;
    Ok(PageOf {
        items,
        total: to_u64(total, "count")?,
    })
}
