//! Records of keys, their versions, aliases and import parameters (issue #6).
//!
//! A key's material is never here: a version holds the **blob** the HSM cluster made
//! (material sealed by the cluster's domain key), opaque to the store. Wire names
//! (`Aliyun_AES_256`, `ENCRYPT/DECRYPT`, …) are kept as text; the server validates them.

use crate::StoreError;

/// Key state with the cloud's wire names (product-model §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Kept, not usable.
    Disabled,
    /// Scheduled for destruction at the key's `delete_date`.
    PendingDeletion,
    /// An `EXTERNAL` key without (or whose) material (expired or deleted).
    PendingImport,
}

impl KeyState {
    /// Every state, in wire order.
    pub const ALL: [Self; 4] = [
        Self::Enabled,
        Self::Disabled,
        Self::PendingDeletion,
        Self::PendingImport,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::PendingImport => "PendingImport",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("key state {s:?}")))
    }
}

/// One tag of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `TagKey`.
    pub key: String,
    /// `TagValue`.
    pub value: String,
}

/// A key of an instance (DescribeKey.KeyMetadata, without its versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `key-…`.
    pub id: String,
    /// The instance (`DKMSInstanceId`) the key lives in.
    pub instance_id: String,
    /// `KeySpec`, wire name.
    pub spec: String,
    /// `KeyUsage`, wire name.
    pub usage: String,
    /// A second usage the key also allows (empty: none); our extension, see
    /// `docs/keys.md`.
    pub additional_usage: String,
    /// `Origin`: `Aliyun_KMS` or `EXTERNAL`.
    pub origin: String,
    /// `ProtectionLevel`: `HSM` for every instance key here.
    pub protection_level: String,
    /// `Description`.
    pub description: String,
    /// `Creator`: the account id.
    pub creator: String,
    /// `KeyState`.
    pub state: KeyState,
    /// `CreationDate`, Unix seconds.
    pub created_at: i64,
    /// `DeleteDate` (only while `PendingDeletion`), Unix seconds.
    pub delete_date: Option<i64>,
    /// `DeletionProtection`.
    pub deletion_protection: bool,
    /// `DeletionProtectionDescription`.
    pub deletion_protection_description: String,
    /// Automatic rotation configured (`AutomaticRotation` is `Enabled`, or `Suspended`
    /// while the key is not `Enabled`).
    pub automatic_rotation: bool,
    /// `RotationInterval` in seconds (0 when never set).
    pub rotation_interval_secs: i64,
    /// `LastRotationDate`: creation of the newest version, Unix seconds.
    pub last_rotation: i64,
    /// `NextRotationDate`, Unix seconds (set while automatic rotation is on).
    pub next_rotation: Option<i64>,
    /// `PrimaryKeyVersion`: the version new encryptions use.
    pub primary_version: String,
    /// `MaterialExpireTime` of imported material, Unix seconds (`None`: never).
    pub material_expires_at: Option<i64>,
    /// Tags, in the order given.
    pub tags: Vec<Tag>,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// Row version for optimistic concurrency (1 when created).
    pub version: i64,
}

/// One version of a key: where its material lives, sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    /// The key.
    pub key_id: String,
    /// The version id (a UUID).
    pub version_id: String,
    /// `CreationDate`, Unix seconds.
    pub created_at: i64,
    /// The blob the HSM cluster made; `None` for an `EXTERNAL` key without material.
    pub blob: Option<Vec<u8>>,
    /// DER SubjectPublicKeyInfo of an asymmetric version (`None` for symmetric keys and
    /// before import).
    pub public_key: Option<Vec<u8>>,
}

/// What [`crate::Store::list_keys`] returns: keys matching every given condition (an
/// empty list matches anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only keys of this instance.
    pub instance_id: Option<String>,
    /// Only keys in one of these states.
    pub states: Vec<KeyState>,
    /// Only keys of one of these specs.
    pub specs: Vec<String>,
    /// Only keys of one of these usages (their usage or additional usage).
    pub usages: Vec<String>,
    /// Only keys of one of these protection levels.
    pub protection_levels: Vec<String>,
    /// Only keys of one of these origins.
    pub origins: Vec<String>,
    /// Only these keys.
    pub key_ids: Vec<String>,
    /// Only keys created by one of these accounts.
    pub creators: Vec<String>,
    /// Only keys named by one of these aliases.
    pub alias_names: Vec<String>,
    /// Only keys with a tag whose key is one of these.
    pub tag_keys: Vec<String>,
    /// Only keys with a tag whose value is one of these.
    pub tag_values: Vec<String>,
}

/// An alias (`alias/…`) naming one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// `AliasName`, with its `alias/` prefix; unique in the store.
    pub name: String,
    /// The key it names.
    pub key_id: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last re-pointing, Unix seconds.
    pub updated_at: i64,
}

/// The parameters GetParametersForImport handed out: a wrapping key pair made by the HSM
/// (its blob) and the token that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportParams {
    /// `ImportToken`: random, unique.
    pub token: String,
    /// The key the material is for.
    pub key_id: String,
    /// `WrappingKeySpec`: `RSA_2048` or `EC_SM2`.
    pub wrapping_key_spec: String,
    /// `WrappingAlgorithm`.
    pub wrapping_algorithm: String,
    /// The wrapping key's blob (bound to `key_id` and `token` as its version id).
    pub wrapping_blob: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the wrapping key (`PublicKey`).
    pub public_key: Vec<u8>,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// `TokenExpireTime`, Unix seconds.
    pub expires_at: i64,
}

/// What a key version's material becomes in [`crate::Store::set_key_material`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMaterial {
    /// The version.
    pub version_id: String,
    /// The new blob and public key, or `None` to delete the blob. The public key of a
    /// deleted blob is kept: it is not secret, and it is what a later re-import of the
    /// material is compared with.
    pub blob: Option<(Vec<u8>, Option<Vec<u8>>)>,
}
