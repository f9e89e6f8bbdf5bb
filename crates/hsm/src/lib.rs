//! Strongroom's HSM: the part of a dedicated KMS that holds key material.
//!
//! - [`backend`]: the one interface of an HSM ([`backend::Backend`] in process,
//!   [`backend::Hsm`] async), whose operations are the HSM link's messages.
//! - [`software`]: the software engine of an HSM node — blobs opened under the cluster's
//!   domain key, operations computed by the crypto core.
//!
//! Invariant: plaintext key material exists only inside a backend — in this process's
//! memory for the software node, inside the token for PKCS#11. What crosses the
//! interface is blobs, public keys, ciphertexts, signatures, and the data keys a caller
//! asked to have generated for it.

#![warn(missing_docs)]

pub mod admin;
pub mod backend;
pub mod error;
pub mod host;
pub mod identity;
pub mod node;
pub mod officer;
pub mod software;
pub mod state;

pub use backend::{Backend, Hsm, LocalHsm, Op, Reply};
pub use error::{HsmError, Result};
