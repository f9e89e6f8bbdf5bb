//! Each instance's own PKI: a root CA, an issuing CA below it, and the TLS server
//! certificate of the instance endpoint (spec/instance-api.md §2.2).
//!
//! - The bundle handed to users, `PrivateKmsCA_<instanceId>.pem`, holds exactly two
//!   certificates: the root, then the issuing CA. (The Java SDK trusts only the second
//!   certificate of the file; Python, Go and PHP trust all; so root-then-issuing works
//!   for every SDK, and three certificates would not.)
//! - The server presents the leaf and then the issuing CA.
//! - The server certificate names `<instanceId>.cryptoservice.kms.aliyuncs.com` (the
//!   host SDK users put in their endpoint) plus configured names and addresses, by
//!   default `localhost` and `127.0.0.1`. It can be re-issued at any time from the
//!   stored issuing CA (for example at each start, with the names of that start).
//!
//! All keys are RSA-2048. Validity: root 20 years, issuing CA 10 years, server
//! certificate 825 days (the most Apple platforms accept for a TLS server certificate).

use rustls::pki_types::CertificateDer;
use strongroom_crypto::secret::SecretBytes;

use crate::error::{CertsError, Result};
use crate::pki::{CertificateAuthority, KeyType, ServerNames, Validity, certificate_pem};

/// The DNS suffix of instance endpoints: `<instanceId>.cryptoservice.kms.aliyuncs.com`.
pub const ENDPOINT_DOMAIN: &str = "cryptoservice.kms.aliyuncs.com";
/// Validity of an instance's root CA, in days (20 years).
pub const ROOT_VALIDITY_DAYS: u32 = 7305;
/// Validity of an instance's issuing CA, in days (10 years).
pub const ISSUING_VALIDITY_DAYS: u32 = 3652;
/// Validity of an instance's server certificate, in days.
pub const SERVER_VALIDITY_DAYS: u32 = 825;

/// The two CAs of an instance. Keep the keys sealed; the certificates are public.
#[derive(Debug)]
#[non_exhaustive]
pub struct InstanceCa {
    /// The root CA's private key, PKCS#8 DER. Only needed to make a new issuing CA;
    /// it may be discarded (the chain stays valid).
    pub root_private_key: SecretBytes,
    /// The root CA certificate, DER.
    pub root_certificate: CertificateDer<'static>,
    /// The issuing CA's private key, PKCS#8 DER (needed to re-issue server
    /// certificates).
    pub issuing_private_key: SecretBytes,
    /// The issuing CA certificate, DER.
    pub issuing_certificate: CertificateDer<'static>,
}

impl InstanceCa {
    /// The CA bundle handed to users: root then issuing CA, PEM.
    pub fn bundle_pem(&self) -> String {
        bundle_pem(&self.root_certificate, &self.issuing_certificate)
    }
}

/// An instance endpoint's TLS server certificate.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerCertificate {
    /// The private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// What the server presents: the leaf, then the issuing CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// When the leaf is valid.
    pub validity: Validity,
}

/// An instance's CAs and its first server certificate.
#[derive(Debug)]
#[non_exhaustive]
pub struct InstancePki {
    /// The root and issuing CAs.
    pub ca: InstanceCa,
    /// The server certificate, issued by the issuing CA.
    pub server: ServerCertificate,
}

/// The endpoint host of an instance: `<instanceId>.cryptoservice.kms.aliyuncs.com`.
pub fn endpoint_host(instance_id: &str) -> String {
    format!("{instance_id}.{ENDPOINT_DOMAIN}")
}

/// The file name of an instance's CA bundle: `PrivateKmsCA_<instanceId>.pem`.
pub fn bundle_file_name(instance_id: &str) -> String {
    format!("PrivateKmsCA_{instance_id}.pem")
}

/// The CA bundle: exactly `root` then `issuing`, PEM.
pub fn bundle_pem(root: &CertificateDer<'_>, issuing: &CertificateDer<'_>) -> String {
    let mut out = certificate_pem(root);
    out.push_str(&certificate_pem(issuing));
    out
}

/// Checks that `instance_id` can be the first label of a host name: 1 to 63
/// lower-case ASCII letters, digits and `-`, not starting or ending with `-`.
///
/// # Errors
/// [`CertsError::InvalidInstanceId`] saying what is wrong.
pub fn validate_instance_id(instance_id: &str) -> Result<()> {
    let reason = if instance_id.is_empty() || instance_id.len() > 63 {
        Some("must be 1 to 63 characters")
    } else if !instance_id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("only lower-case letters, digits and '-' are allowed")
    } else if instance_id.starts_with('-') || instance_id.ends_with('-') {
        Some("must not start or end with '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CertsError::InvalidInstanceId {
            instance_id: instance_id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates an instance's root CA, issuing CA and server certificate. `names` are the
/// server certificate's names besides the endpoint host (use
/// [`ServerNames::default`] for `localhost` and `127.0.0.1`).
///
/// # Errors
/// [`CertsError::InvalidInstanceId`], [`CertsError::InvalidHostName`], or generation
/// errors.
pub fn create(instance_id: &str, names: &ServerNames) -> Result<InstancePki> {
    validate_instance_id(instance_id)?;
    let root = CertificateAuthority::new_root(
        &format!("Strongroom Root CA {instance_id}"),
        KeyType::Rsa2048,
        Validity::days_from_now(ROOT_VALIDITY_DAYS)?,
        Some(1),
    )?;
    let issuing = root.new_subordinate(
        &format!("Strongroom Issuing CA {instance_id}"),
        KeyType::Rsa2048,
        Validity::days_from_now(ISSUING_VALIDITY_DAYS)?,
        Some(0),
    )?;
    let server = issue(instance_id, &issuing, names)?;
    Ok(InstancePki {
        ca: InstanceCa {
            root_private_key: root.private_key(),
            root_certificate: root.certificate().clone(),
            issuing_private_key: issuing.private_key(),
            issuing_certificate: issuing.certificate().clone(),
        },
        server,
    })
}

/// Issues a new server certificate for `instance_id` from a stored issuing CA (its
/// PKCS#8 DER key and DER certificate), for `names` besides the endpoint host.
///
/// # Errors
/// [`CertsError::InvalidInstanceId`], [`CertsError::InvalidHostName`],
/// [`CertsError::InvalidPrivateKey`], [`CertsError::MalformedCertificate`],
/// [`CertsError::KeyCertificateMismatch`], or generation errors.
pub fn issue_server_certificate(
    instance_id: &str,
    issuing_private_key: &SecretBytes,
    issuing_certificate: &CertificateDer<'_>,
    names: &ServerNames,
) -> Result<ServerCertificate> {
    validate_instance_id(instance_id)?;
    let issuing = CertificateAuthority::from_der(issuing_private_key, issuing_certificate)?;
    issue(instance_id, &issuing, names)
}

fn issue(
    instance_id: &str,
    issuing: &CertificateAuthority,
    names: &ServerNames,
) -> Result<ServerCertificate> {
    let host = endpoint_host(instance_id);
    let mut all_names = ServerNames {
        dns_names: vec![host.clone()],
        ip_addresses: Vec::new(),
    };
    for name in &names.dns_names {
        if !all_names
            .dns_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            all_names.dns_names.push(name.clone());
        }
    }
    for ip in &names.ip_addresses {
        if !all_names.ip_addresses.contains(ip) {
            all_names.ip_addresses.push(*ip);
        }
    }
    let leaf = issuing.issue_server(
        &host,
        &all_names,
        KeyType::Rsa2048,
        Validity::days_from_now(SERVER_VALIDITY_DAYS)?,
    )?;
    Ok(ServerCertificate {
        private_key: leaf.private_key,
        chain: vec![leaf.certificate, issuing.certificate().clone()],
        validity: leaf.validity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_must_be_dns_labels() {
        validate_instance_id("kst-hzz62ee0c4b1234").unwrap();
        for bad in ["", "-a", "a-", "Kst", "a.b", "a_b", &"a".repeat(64)] {
            assert!(
                matches!(
                    validate_instance_id(bad),
                    Err(CertsError::InvalidInstanceId { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            endpoint_host("kst-a1"),
            "kst-a1.cryptoservice.kms.aliyuncs.com"
        );
        assert_eq!(bundle_file_name("kst-a1"), "PrivateKmsCA_kst-a1.pem");
    }
}
