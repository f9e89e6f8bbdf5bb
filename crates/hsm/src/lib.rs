//! Strongroom's HSM: the part of a dedicated KMS that holds key material.
//!
//! - [`backend`]: the one interface of an HSM ([`backend::Backend`] in process,
//!   [`backend::Hsm`] async), whose operations are the HSM link's messages.
//! - [`software`]: the software engine of an HSM node — blobs opened under the cluster's
//!   domain key, operations computed by the crypto core.
//! - [`pkcs11`]: the same operations inside a PKCS#11 token (a real HSM; SoftHSM2 in
//!   tests), the domain key a non-extractable token key; what the token cannot do is
//!   refused as `UNSUPPORTED`, never done in software.
//! - [`node`]: one HSM node (`strongroom hsm serve`): its [`state`] on disk (sealed,
//!   written atomically), its [`host`] port for KMS nodes (mutual TLS, pipelined
//!   frames), its [`officer`] port for the management tool and the other nodes, its
//!   [`identity`], and cluster enrolment and sync.
//! - [`client`]: the cluster client the KMS uses: pooled, pipelined connections to every
//!   node, health checks, load spread and failover.
//! - [`admin`]: the security officer's side of the officer channel (`strongroom hsm
//!   admin`).
//!
//! Invariant: plaintext key material exists only inside a backend — in this process's
//! memory for the software node, inside the token for PKCS#11. What crosses the
//! interface is blobs, public keys, ciphertexts, signatures, and the data keys a caller
//! asked to have generated for it.

#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod client;
pub mod error;
pub mod host;
pub mod identity;
pub mod node;
pub mod officer;
pub mod pkcs11;
pub mod software;
pub mod sources;
pub mod state;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: an unexpected error should fail the test loudly"
)]
mod test_host;

pub use backend::{Backend, Hsm, LocalHsm, Op, Reply};
pub use error::{HsmError, Result};
