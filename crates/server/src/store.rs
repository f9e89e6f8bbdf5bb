//! The back end chosen at start (`--database`): one type the node is generic over, so
//! the server code is compiled once and the two back ends pass through the same paths.

use std::path::Path;

use strongroom_store::{
    AccessKey, AccessKeyStatus, HsmCluster, Instance, Page, PageOf, PostgresStore, Result,
    SqliteStore, Store, Vpc,
};

/// SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The embedded default.
    Sqlite(SqliteStore),
    /// Shared by several nodes.
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens (creating and migrating) the SQLite file at `path`.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn sqlite(path: &Path) -> Result<Self> {
        Ok(Self::Sqlite(SqliteStore::open(path).await?))
    }

    /// Connects to (and migrates) the PostgreSQL database at `url`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn postgres(url: &str) -> Result<Self> {
        Ok(Self::Postgres(PostgresStore::connect(url).await?))
    }
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty; )*) => {
        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$out> {
                    match self {
                        Self::Sqlite(s) => s.$name($($arg),*).await,
                        Self::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    fn health(&self) -> ();
    fn create_access_key(&self, key: &AccessKey) -> ();
    fn get_access_key(&self, id: &str) -> AccessKey;
    fn list_access_keys(&self, page: Page) -> PageOf<AccessKey>;
    fn set_access_key_status(&self, id: &str, status: AccessKeyStatus) -> ();
    fn delete_access_key(&self, id: &str) -> ();
    fn create_instance(&self, instance: &Instance) -> ();
    fn get_instance(&self, id: &str) -> Instance;
    fn list_instances(&self, page: Page) -> PageOf<Instance>;
    fn update_instance(&self, instance: &Instance) -> Instance;
    fn delete_instance(&self, id: &str) -> ();
    fn bind_cluster(&self, instance_id: &str, cluster_id: &str) -> Instance;
    fn create_cluster(&self, cluster: &HsmCluster) -> ();
    fn get_cluster(&self, id: &str) -> HsmCluster;
    fn list_clusters(&self, page: Page) -> PageOf<HsmCluster>;
    fn delete_cluster(&self, id: &str) -> ();
    fn create_vpc(&self, vpc: &Vpc) -> ();
    fn get_vpc(&self, id: &str) -> Vpc;
    fn list_vpcs(&self, page: Page) -> PageOf<Vpc>;
    fn delete_vpc(&self, id: &str) -> ();
    fn bind_vpc(&self, instance_id: &str, vpc_id: &str) -> ();
    fn unbind_vpc(&self, instance_id: &str, vpc_id: &str) -> ();
    fn instance_vpcs(&self, instance_id: &str) -> Vec<String>;
    fn replace_instance_vpcs(&self, instance_id: &str, vpc_ids: &[String]) -> ();
    fn count_instance_vpcs(&self, instance_id: &str) -> u64;
    fn insert_nonce(&self, access_key_id: &str, nonce: &str, expires_at: i64) -> bool;
    fn purge_expired_nonces(&self, now: i64) -> u64;
    fn get_setting(&self, name: &str) -> Option<Vec<u8>>;
    fn insert_setting(&self, name: &str, value: &[u8]) -> bool;
}
