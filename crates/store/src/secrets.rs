//! Records of secrets kept in an instance (issue #10, product-model §6).
//!
//! A secret's value is never here in the clear: each version holds the **ciphertext** the
//! HSM cluster made under the secret's encryption key, opaque to the store. A version
//! carries zero or more stages (`ACSCurrent`, `ACSPrevious`, custom ones); a stage names
//! at most one version of its secret. The server decides how stages move
//! (`docs/secrets.md`); the store applies a whole new stage map in one transaction so that
//! no reader ever sees a stage on two versions or on none mid-move.
//!
//! Wire names (`Generic`, `text`, `binary`, stage names) are kept as text; the server
//! validates them.

use crate::keys::Tag;

/// A secret of an instance (`DescribeSecret`, without its versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// `SecretName`: unique in the store; fixed once created.
    pub name: String,
    /// The instance (`DKMSInstanceId`) the secret lives in; fixed once created.
    pub instance_id: String,
    /// `SecretType`: `Generic`; fixed once created.
    pub secret_type: String,
    /// `EncryptionKeyId`: the symmetric key of the same instance its versions are
    /// encrypted under; fixed once created.
    pub encryption_key_id: String,
    /// `Description`.
    pub description: String,
    /// `ExtendedConfig`: JSON text, or empty.
    pub extended_config: String,
    /// Tags, in the order given.
    pub tags: Vec<Tag>,
    /// `CreateTime`, Unix seconds.
    pub created_at: i64,
    /// `UpdateTime`, Unix seconds.
    pub updated_at: i64,
    /// `PlannedDeleteTime` while the secret is scheduled for deletion, Unix seconds.
    pub planned_delete_at: Option<i64>,
    /// Row version for optimistic concurrency (1 when created).
    pub version: i64,
}

/// One version of a secret's value, sealed by the HSM cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// The secret.
    pub secret_name: String,
    /// `VersionId`: unique within its secret.
    pub version_id: String,
    /// `SecretDataType`: `text` or `binary`.
    pub data_type: String,
    /// The ciphertext of the value (key version id ‖ IV ‖ ciphertext ‖ tag).
    pub ciphertext: Vec<u8>,
    /// The stages on this version, ordered by name (filled by reads; ignored by writes,
    /// which take the stage map separately).
    pub stages: Vec<String>,
    /// `CreateTime`, Unix seconds.
    pub created_at: i64,
}

/// What [`crate::Store::list_secrets`] returns: secrets matching every given condition
/// (an empty list matches anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretFilter {
    /// Only secrets of this instance.
    pub instance_id: Option<String>,
    /// Only secrets whose name contains one of these.
    pub name_contains: Vec<String>,
    /// Only secrets whose description contains one of these.
    pub description_contains: Vec<String>,
    /// Only secrets with a tag whose key is one of these.
    pub tag_keys: Vec<String>,
    /// Only secrets with a tag whose value is one of these.
    pub tag_values: Vec<String>,
}

/// One stage of a secret and the version it is on ([`crate::Store::write_secret_versions`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageOn {
    /// The stage (`ACSCurrent`, `ACSPrevious`, or a custom one).
    pub stage: String,
    /// The version id.
    pub version_id: String,
}
