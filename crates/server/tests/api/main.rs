//! The KMS node end to end: a real node (HTTPS, SQLite or PostgreSQL) driven by the
//! official management SDK and by our client, with real HSM nodes behind it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    missing_docs,
    reason = "tests"
)]

mod abuse;
mod client_key_store;
mod instance_wire;
mod lifecycle;
mod maintenance;
mod malformed;
mod races;
mod sdk;
mod sdk_access;
mod sdk_instance;
mod sdk_keys;
mod sdk_secrets;
mod support;
mod support_instance;
mod two_nodes;
