//! Records of application access (issue #7): network rules, policies, application access
//! points (AAPs) and their client keys (product-model §4).
//!
//! A policy names one instance and some network rules; an access point names 1–3
//! policies; a client key belongs to one access point. The store keeps those references
//! honest: a record cannot name one that does not exist, and a record that is named
//! cannot be deleted. Of a client key only its **certificate** is kept: its private key
//! and the password that protected it are the caller's, shown once and never stored.
//!
//! Wire names (`Private`, `ClientKey`, `RSA_2048`, permission templates, `key/*`, …) are
//! kept as text; the server validates them.

use crate::StoreError;

/// A network rule: the source addresses a policy admits (`CreateNetworkRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRule {
    /// `Name`: unique among network rules; fixed once created.
    pub name: String,
    /// `Type`: `Private`; fixed once created.
    pub rule_type: String,
    /// `SourcePrivateIp`: addresses and CIDR blocks, in the order given.
    pub source_private_ip: Vec<String>,
    /// `Description`.
    pub description: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last update, Unix seconds.
    pub updated_at: i64,
}

/// A policy: what may be done with which resources of one instance, from which networks
/// (`CreatePolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `Name`: unique among policies; fixed once created.
    pub name: String,
    /// `KmsInstance`: the instance (scope) the policy grants access to; fixed once created.
    pub kms_instance_id: String,
    /// `Permissions`: permission templates, in the order given.
    pub permissions: Vec<String>,
    /// `Resources`: `key/…` and `secret/…` patterns, in the order given.
    pub resources: Vec<String>,
    /// `AccessControlRules.NetworkRules`: names of network rules, in the order given.
    pub network_rules: Vec<String>,
    /// `Description`.
    pub description: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last update, Unix seconds.
    pub updated_at: i64,
}

/// An application access point: the policies its client keys act under
/// (`CreateApplicationAccessPoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// `Name`: unique among access points; fixed once created.
    pub name: String,
    /// `AuthenticationMethod`: `ClientKey`; fixed once created.
    pub authentication_method: String,
    /// `Policies`: names of policies, in the order given.
    pub policies: Vec<String>,
    /// `Description`.
    pub description: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last update, Unix seconds.
    pub updated_at: i64,
}

/// A client key of an access point: the public half of a credential an application signs
/// instance-API requests with (`CreateClientKey`, `GetClientKey`).
///
/// It holds no secret: the private key and its password never reach the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// `ClientKeyId`: `KAAP.<uuid>`, unique.
    pub id: String,
    /// `AapName`: the access point the key belongs to; fixed once created.
    pub aap_name: String,
    /// `KeyAlgorithm`: `RSA_2048`.
    pub key_algorithm: String,
    /// `KeyOrigin`: `KMS_PROVIDED`.
    pub key_origin: String,
    /// `PublicKeyData`: the client certificate, PEM.
    pub certificate_pem: String,
    /// `NotBefore`, Unix seconds.
    pub not_before: i64,
    /// `NotAfter`, Unix seconds.
    pub not_after: i64,
    /// `CreateTime`, Unix seconds.
    pub created_at: i64,
}

/// Everything an instance-API request signed with one client key is judged by, read at
/// one point in time ([`crate::Store::access_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSnapshot {
    /// The client key.
    pub client_key: ClientKey,
    /// Its access point.
    pub access_point: AccessPoint,
    /// The access point's policies, in the access point's order.
    pub policies: Vec<Policy>,
    /// Every network rule those policies name, each once, ordered by name.
    pub network_rules: Vec<NetworkRule>,
}

/// Encodes a list of strings for a text column (a JSON array).
pub(crate) fn encode_list(list: &[String], what: &str) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(format!("{what}: {e}")))
}

/// Decodes a text column written by [`encode_list`].
pub(crate) fn decode_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn lists_round_trip_and_garbage_is_corrupt() {
        let list = vec!["10.0.0.0/8".to_owned(), "a\"b,c".to_owned()];
        let text = encode_list(&list, "ips").unwrap();
        assert_eq!(decode_list(&text, "ips").unwrap(), list);
        assert_eq!(decode_list("[]", "ips").unwrap(), Vec::<String>::new());
        assert!(matches!(
            decode_list("10.0.0.1", "ips"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
