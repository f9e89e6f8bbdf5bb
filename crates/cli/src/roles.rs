//! Roles of DESIGN.md that this build does not have yet. Each says so plainly, names
//! the issue that brings it, and exits with status 2, rather than pretending to work.

use std::process::ExitCode;

/// Arguments of a role that is not built yet: everything is accepted and ignored, so
/// that `strongroom hsm serve --state DIR` reports the missing role, not a flag error.
#[derive(Debug, clap::Args)]
pub struct NotBuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

/// Printed under `--help`.
pub const AFTER_HELP: &str = "\
Built in this version: `hsm serve` and `hsm admin` (an HSM node and its management
tool), `certs generate` (also as the `hsm_certificate_generate` binary), `server` and
`init` (a KMS node and its first administrator AccessKey), the management API's client
commands `instance`, `hsm-cluster`, `vpc`, `access-key`, `key` (with `key import`
for bring-your-own-key material) and `alias`, and `bench crypto` and
`bench hsm` (the crypto core, and HSM operations through the cluster client).
Every other role is listed so the command line has its final shape; calling one that
is not built yet says so and exits with status 2. See README.md for the roadmap.";

/// Reports that `role` is not built yet.
pub fn not_built(role: &str, issue: u32) -> ExitCode {
    eprintln!(
        "strongroom {role}: not built yet in this version (planned in issue #{issue}; see README.md)."
    );
    ExitCode::from(2)
}
