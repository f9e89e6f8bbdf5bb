//! Strongroom's crypto core: every key type a dedicated KMS needs, and the sealing that
//! keeps key material inside the HSMs.
//!
//! What it does:
//! - the wire vocabulary ([`spec`]) and the one table of which key spec allows which
//!   usage and algorithm ([`policy`]);
//! - key material for all ten key specs: generation and import ([`material`]), and the
//!   operations behind Encrypt, Decrypt, Sign, Verify, data keys, Hash and random
//!   ([`key`], [`public`], [`data_key`], [`hash`], [`random`]);
//! - the domain key and key blobs ([`blob`]), sealing at rest ([`seal`]) and
//!   passphrase-derived sealing keys ([`passphrase`]);
//! - wrapping keys and the unwrapping of externally wrapped key material, BYOK
//!   ([`import`]), and the user's side of it: wrapping material under a public wrapping
//!   key ([`wrap`]).
//!
//! What it deliberately does not do: I/O, async, logging, or deciding who may call
//! what. Plaintext key material lives only in [`secret::SecretBytes`] and the parsed
//! key types, all of which print nothing and wipe themselves on drop.
//!
//! Implementations (measured in `guides/limits.md`): aws-lc-rs for AES-GCM, RSA, P-256,
//! SHA-2, HKDF and randomness; RustCrypto `k256` for secp256k1, `sm2`, `sm3`, `sm4`
//! (with generic `aes-gcm` and `cbc`) for the Chinese national algorithms, `aes` + `cbc`
//! for AES-CBC, `argon2` for passphrases.
//!
//! Known limit: RustCrypto `sm4` uses table lookups and is not constant-time against
//! cache-timing attackers on the same machine (`guides/stack.md` §3). An HSM node should
//! not share a CPU with untrusted code.

#![warn(missing_docs)]

mod asymmetric;
pub mod blob;
pub mod cipher;
pub mod data_key;
pub mod error;
pub mod hash;
pub mod import;
pub mod key;
pub mod material;
pub mod passphrase;
pub mod pem;
pub mod policy;
pub mod public;
pub mod random;
pub mod seal;
pub mod secret;
pub mod spec;
pub mod wrap;

pub use asymmetric::sm2::{SM2_DEFAULT_ID, SM2_MAX_PLAINTEXT};
