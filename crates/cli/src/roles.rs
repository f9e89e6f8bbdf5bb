//! What `strongroom --help` says about the roles of DESIGN.md, all of which this build
//! has.

/// Printed under `--help`.
pub const AFTER_HELP: &str = "\
Roles: `hsm serve` and `hsm admin` (an HSM node and its management tool), `certs
generate` (also as the `hsm_certificate_generate` binary), `server` and `init` (a KMS
node and its first administrator AccessKey), `quickstart` (the whole guide on one
machine), the management API's client commands `instance`, `hsm-cluster`, `vpc`,
`access-key`, `key` (with `key import` for bring-your-own-key material), `alias`,
`network-rule`, `policy`, `aap`, `client-key` and `secret`, `bench crypto`, `bench hsm`
and `bench instance` (the crypto core, HSM operations through the cluster client, and
the instance API of a deployment), and `audit verify`. See README.md.";
