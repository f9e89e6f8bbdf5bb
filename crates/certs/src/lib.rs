//! Strongroom's certificates: everything X.509 and PKCS#12 the system needs.
//!
//! What it does:
//! - [`tool`]: the guide's certificate tool (`hsm_certificate_generate -dir ./certs
//!   -pswd 12345678`): a CA, an HSM server certificate and a KMS client certificate,
//!   written as `client.p12`, `client.pem`, `rootca.key`, `rootca.pem`, `server.p12`;
//! - [`pkcs12`]: reading and writing PKCS#12 (modern PBES2/AES-256 and legacy 3DES);
//! - [`client_key`]: application client keys (`KAAP.<uuid>` + base64 PKCS#12 + a
//!   password), their files, and a loader for them (ours and the cloud's);
//! - [`instance_ca`]: each instance's root and issuing CA, its endpoint certificate and
//!   the `PrivateKmsCA_<instanceId>.pem` bundle handed to users;
//! - [`tls`]: rustls configurations for the KMS ↔ HSM mutual-TLS link (with a run-time
//!   allow-list of client certificates) and for instance HTTPS endpoints;
//! - [`pki`]: the shared pieces: key types, validity, host names, a certificate
//!   authority, PEM.
//!
//! What it deliberately does not do: network I/O, async, logging, or storage. It writes
//! files only in [`tool::generate`] and [`client_key::write_files`] (keys and PKCS#12
//! files with mode `0600`, set when the file is created). It keeps no state: callers
//! store CA keys (sealed) and certificates themselves. There is no revocation (CRL /
//! OCSP): an HSM refuses a client by removing it from its [`tls::ClientAllowList`].
//!
//! Secrets: private keys are [`strongroom_crypto::secret::SecretBytes`] (PKCS#8 DER),
//! passwords are [`password::Password`]; both print nothing and are wiped on drop.
//! Known limit: p12-keystore keeps internal copies of keys while it encodes and
//! decodes PKCS#12 (modern writing, all reading) and does not wipe them. rcgen's copies
//! are wiped (its `zeroize` feature); rustls gets keys by borrow and aws-lc-rs wipes its
//! own key structures when freed.
//!
//! Implementations: rcgen on aws-lc-rs for keys and certificates, p12-keystore for
//! modern PKCS#12 and for reading, our own encoder (on RustCrypto `pkcs12`/`cms`/`der`
//! types) for the legacy layout, rustls with the aws-lc-rs provider for TLS,
//! x509-parser for reading certificates.

#![warn(missing_docs)]

pub mod client_key;
pub mod error;
mod files;
pub mod instance_ca;
pub mod password;
pub mod pkcs12;
pub mod pki;
pub mod tls;
pub mod tool;
