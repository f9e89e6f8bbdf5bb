//! Records the store keeps.

use crate::StoreError;

/// Status of a management-API access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKeyStatus {
    /// Usable.
    Active,
    /// Disabled.
    Inactive,
}

impl AccessKeyStatus {
    /// Wire name (`Active`, `Inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "Active" => Ok(Self::Active),
            "Inactive" => Ok(Self::Inactive),
            other => Err(StoreError::Corrupt(format!("access key status {other:?}"))),
        }
    }
}

/// Administrator credentials for the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `LTAI…`-like identifier.
    pub id: String,
    /// The secret, encrypted by the caller; opaque to the store.
    pub secret_ciphertext: Vec<u8>,
    /// Active or inactive.
    pub status: AccessKeyStatus,
    /// Free text.
    pub description: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// Instance status with the cloud's wire names (product-model §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Bought, not enabled.
    Uninitialized,
    /// Being enabled.
    Connecting,
    /// Enabled.
    Connected,
    /// Lost its HSM cluster.
    Disconnected,
    /// Failed.
    Error,
}

impl InstanceStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uninitialized => "Uninitialized",
            Self::Connecting => "Connecting",
            Self::Connected => "Connected",
            Self::Disconnected => "Disconnected",
            Self::Error => "Error",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "Uninitialized" => Ok(Self::Uninitialized),
            "Connecting" => Ok(Self::Connecting),
            "Connected" => Ok(Self::Connected),
            "Disconnected" => Ok(Self::Disconnected),
            "Error" => Ok(Self::Error),
            other => Err(StoreError::Corrupt(format!("instance status {other:?}"))),
        }
    }
}

/// A KMS instance (GetKmsInstance.KmsInstance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `kst-…` (`InstanceId`).
    pub id: String,
    /// `InstanceName`.
    pub name: String,
    /// Region id.
    pub region: String,
    /// `Status`.
    pub status: InstanceStatus,
    /// `VpcNum`: VPCs that may access the instance.
    pub vpc_quota: u32,
    /// `KeyNum`.
    pub key_quota: u32,
    /// `SecretNum`.
    pub secret_quota: u32,
    /// `Spec`: requests per second.
    pub spec: u32,
    /// Purchase term in months.
    pub term_months: u32,
    /// `StartDate`: when enabled, Unix seconds.
    pub start_time: Option<i64>,
    /// `EndDate`: expiry, Unix seconds.
    pub end_time: Option<i64>,
    /// Renews automatically at `end_time`.
    pub auto_renew: bool,
    /// The bound HSM cluster; one cluster binds to at most one instance.
    pub hsm_cluster_id: Option<String>,
    /// `CaCertificateChainPem` (empty until the instance CA exists).
    pub ca_certificate_chain_pem: String,
    /// Why the instance is in its status (an enabling failure, say); empty when nothing
    /// is to be said.
    pub status_reason: String,
    /// The HSM access credentials given when enabling (client PKCS#12, its password, the
    /// HSM root CA), sealed by the caller; opaque to the store.
    pub hsm_credentials: Option<Vec<u8>>,
    /// The instance CA's private keys, sealed by the caller; opaque to the store.
    pub ca_keys: Option<Vec<u8>>,
    /// `CreateTime`, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// Row version for optimistic concurrency.
    pub version: i64,
}

/// One HSM node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmNode {
    /// `host:port`.
    pub address: String,
    /// Zone id.
    pub zone: String,
}

/// An HSM cluster registered with the KMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmCluster {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Nodes, in order.
    pub nodes: Vec<HsmNode>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A VPC that may be bound to instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// `vpc-…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// CIDR blocks, in order.
    pub cidr_blocks: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A page request: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based page number (0 is treated as 1).
    pub number: u32,
    /// Items per page (0 is treated as 1).
    pub size: u32,
}

impl Page {
    /// `(limit, offset)` for SQL.
    pub(crate) fn limit_offset(self) -> (i64, i64) {
        let size = i64::from(self.size.max(1));
        let number = i64::from(self.number.max(1));
        (size, (number - 1) * size)
    }
}

/// One page of results and the total number of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOf<T> {
    /// The records on this page.
    pub items: Vec<T>,
    /// All records, across pages.
    pub total: u64,
}
