//! The HSM node as its users meet it: state on disk, the officer channel, the host port,
//! cluster sync, and re-import on the software engine (`reimport`). Nodes run in process
//! on loopback ports with real TLS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    reason = "tests"
)]

mod cluster_sync;
mod host_port;
mod officer_channel;
mod reimport;
mod state_dir;
mod support;
