//! The key maintenance task on two KMS nodes over one PostgreSQL database, each running
//! it every second: a key whose deletion window ended is destroyed once (versions,
//! aliases and all) and then answers not found; a key due for rotation gets exactly one
//! new version; imported material that expires is deleted; a secret whose recovery
//! window ended is destroyed with its versions. Dates are moved into the past directly
//! in the store, as the passing of days would.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use strongroom_crypto::spec::{KeySpec, WrappingAlgorithm};
use strongroom_server::client::{ClientError, ManagementClient};
use strongroom_store::{KeyState, PostgresStore, Store, StoreError};

use crate::support::{self, Hsms};

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn describe(c: &ManagementClient, key: &str) -> Result<Value, ClientError> {
    c.call("DescribeKey", &[("KeyId", key)])
        .await
        .map(|v| v["KeyMetadata"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_destroy_rotate_and_expire_each_key_and_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let url = support::fresh_database().await;
    let (a, b) = support::two_kms_on(dir.path(), &url).await;
    let c = support::client(&a.server, &a.access_key_id, &a.access_key_secret);
    let store = PostgresStore::connect(&url).await.unwrap();

    // An instance enabled with the two HSM nodes.
    let instance = support::connected_instance(&c, &hsms, &[("SecretNum", "2")]).await;
    let create = |extra: Vec<(&'static str, &'static str)>| {
        let c = &c;
        let instance = instance.clone();
        async move {
            let mut params = vec![("DKMSInstanceId", instance.as_str())];
            params.extend(extra);
            c.call("CreateKey", &params).await.unwrap()["KeyMetadata"]["KeyId"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // 1. The deletion window ends: destroyed, with its versions and aliases.
    let doomed = create(vec![]).await;
    c.call(
        "CreateAlias",
        &[("AliasName", "alias/doomed"), ("KeyId", &doomed)],
    )
    .await
    .unwrap();
    let doomed_version = describe(&c, &doomed).await.unwrap()["PrimaryKeyVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "ScheduleKeyDeletion",
        &[("KeyId", &doomed), ("PendingWindowInDays", "7")],
    )
    .await
    .unwrap();
    let mut k = store.get_key(&doomed).await.unwrap();
    assert_eq!(k.state, KeyState::PendingDeletion);
    k.delete_date = Some(now() - 1);
    store.update_key(&k).await.unwrap();

    // 2. Rotation falls due.
    let rotating = create(vec![
        ("EnableAutomaticRotation", "true"),
        ("RotationInterval", "7d"),
    ])
    .await;
    let mut k = store.get_key(&rotating).await.unwrap();
    k.next_rotation = Some(now() - 1);
    store.update_key(&k).await.unwrap();

    // 3. Imported material with a two-second life.
    let imported = create(vec![("Origin", "EXTERNAL")]).await;
    let params = c
        .call(
            "GetParametersForImport",
            &[
                ("KeyId", &imported),
                ("WrappingKeySpec", "RSA_2048"),
                ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
            ],
        )
        .await
        .unwrap();
    let public = STANDARD
        .decode(params["PublicKey"].as_str().unwrap())
        .unwrap();
    let wrapped = strongroom_crypto::wrap::wrap_key_material(
        &public,
        WrappingAlgorithm::RsaesOaepSha256,
        KeySpec::Aes256,
        &[0x5a; 32],
    )
    .unwrap();
    let expiry = (now() + 2).to_string();
    c.call(
        "ImportKeyMaterial",
        &[
            ("KeyId", &imported),
            ("ImportToken", params["ImportToken"].as_str().unwrap()),
            ("EncryptedKeyMaterial", &STANDARD.encode(wrapped)),
            ("KeyMaterialExpireUnix", &expiry),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        describe(&c, &imported).await.unwrap()["KeyState"],
        "Enabled"
    );

    // 4. A secret's recovery window ends.
    c.call(
        "CreateSecret",
        &[
            ("SecretName", "doomed-secret"),
            ("SecretData", "a value"),
            ("VersionId", "v1"),
            ("EncryptionKeyId", &rotating),
        ],
    )
    .await
    .unwrap();
    c.call(
        "DeleteSecret",
        &[
            ("SecretName", "doomed-secret"),
            ("RecoveryWindowInDays", "7"),
        ],
    )
    .await
    .unwrap();
    let mut secret = store.get_secret("doomed-secret").await.unwrap();
    assert!(secret.planned_delete_at.is_some());
    secret.planned_delete_at = Some(now() - 1);
    store.update_secret(&secret).await.unwrap();

    support::eventually("the destruction", || async {
        matches!(describe(&c, &doomed).await,
            Err(ClientError::Api { code, .. }) if code == "Forbidden.KeyNotFound")
    })
    .await;
    assert!(matches!(
        store.get_key_version(&doomed, &doomed_version).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_alias("alias/doomed").await,
        Err(StoreError::NotFound(_))
    ));
    let by_alias = c.call("DescribeKey", &[("KeyId", "alias/doomed")]).await;
    assert!(
        matches!(&by_alias, Err(ClientError::Api { code, .. }) if code == "Forbidden.AliasNotFound"),
        "{by_alias:?}"
    );

    support::eventually("the secret's destruction", || async {
        matches!(c.call("DescribeSecret", &[("SecretName", "doomed-secret")]).await,
            Err(ClientError::Api { code, .. }) if code == "Forbidden.ResourceNotFound")
    })
    .await;
    assert!(matches!(
        store.list_secret_versions("doomed-secret").await,
        Err(StoreError::NotFound(_))
    ));
    let quota = c
        .call(
            "GetKmsInstanceQuotaInfos",
            &[("KmsInstanceId", &instance), ("ResourceType", "secret")],
        )
        .await
        .unwrap();
    assert_eq!(quota["KmsInstanceQuotaInfos"][0]["UsedQuantity"], 0);

    support::eventually("the rotation", || async {
        c.call("ListKeyVersions", &[("KeyId", &rotating)])
            .await
            .unwrap()["TotalCount"]
            == 2
    })
    .await;
    // Both nodes run the task every second; a few more runs add nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions = c
        .call("ListKeyVersions", &[("KeyId", &rotating)])
        .await
        .unwrap();
    assert_eq!(versions["TotalCount"], 2, "{versions}");
    let meta = describe(&c, &rotating).await.unwrap();
    assert_eq!(
        meta["PrimaryKeyVersion"],
        versions["KeyVersions"]["KeyVersion"][1]["KeyVersionId"]
    );
    assert!(
        meta["NextRotationDate"].as_str().unwrap() > meta["LastRotationDate"].as_str().unwrap()
    );

    support::eventually("the expiry", || async {
        describe(&c, &imported).await.unwrap()["KeyState"] == "PendingImport"
    })
    .await;
    let v = store
        .list_key_versions(
            &imported,
            strongroom_store::Page {
                number: 1,
                size: 10,
            },
        )
        .await
        .unwrap();
    assert!(v.items.iter().all(|v| v.blob.is_none()));
    let encrypt = c
        .call("Encrypt", &[("KeyId", &imported), ("Plaintext", "x")])
        .await;
    assert!(
        matches!(&encrypt, Err(ClientError::Api { code, .. }) if code == "Rejected.PendingImport"),
        "{encrypt:?}"
    );

    a.server.shutdown().await;
    b.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}
