//! Logs of the long-running roles: structured (`tracing`) lines on stderr, at the level
//! of `--log-level` if given, else of `RUST_LOG` (e.g. `info`, `debug`,
//! `strongroom_server=debug`), else `info`. No log line holds a secret.

use std::io::{self, IsTerminal as _};

/// Installs the subscriber (once; later calls do nothing).
pub fn init(level: Option<&str>) {
    let filter = level
        .and_then(|l| tracing_subscriber::EnvFilter::try_new(l).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
