//! The instance gate: whether an instance may serve crypto to a caller now. The instance
//! endpoint (and any crypto path) asks this before anything else, so that an expired,
//! disabled or unenabled instance refuses with one clear code, and an instance with VPCs
//! bound refuses callers outside their CIDR blocks.

use std::net::IpAddr;

use strongroom_store::{Instance, InstanceStatus, Store, StoreError};

use crate::api::instances::{expired, is_expired, rolled_forward};
use crate::app::now;
use crate::error::ApiError;
use crate::network::Cidr;

/// Why a caller may not use an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The instance does not serve now (unknown, not enabled, expired); the API error
    /// says which, with the cloud's code.
    #[error(transparent)]
    Instance(#[from] ApiError),
    /// VPCs are bound and the caller's address is in none of them.
    #[error("the address {0} is not in any VPC bound to the instance")]
    OutsideVpcs(IpAddr),
}

/// Checks that `instance_id` serves crypto now and that `peer` may reach it; returns the
/// instance (with auto-renewal applied).
///
/// # Errors
/// [`GateError::Instance`] with `Forbidden.DKMSInstanceNotFound` or
/// `Forbidden.DKMSInstanceStateInvalid` (not `Connected`, or expired);
/// [`GateError::OutsideVpcs`].
pub async fn admit<S: Store>(
    store: &S,
    instance_id: &str,
    peer: IpAddr,
) -> Result<Instance, GateError> {
    let mut instance = store.get_instance(instance_id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::InstanceNotFound(instance_id.to_owned()),
        other => other.into(),
    })?;
    let at = now();
    if let Some(renewed) = rolled_forward(&instance, at) {
        instance = match store.update_instance(&renewed).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict(_)) => renewed,
            Err(e) => return Err(ApiError::from(e).into()),
        };
    }
    if is_expired(&instance, at) {
        return Err(expired(&instance).into());
    }
    if instance.status != InstanceStatus::Connected {
        return Err(ApiError::InstanceStateInvalid(format!(
            "The instance {instance_id} is {}; it serves crypto only when Connected.",
            instance.status.as_str()
        ))
        .into());
    }
    let vpcs = store
        .instance_vpcs(instance_id)
        .await
        .map_err(ApiError::from)?;
    if vpcs.is_empty() {
        return Ok(instance);
    }
    for vpc in &vpcs {
        let vpc = match store.get_vpc(vpc).await {
            Ok(v) => v,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(ApiError::from(e).into()),
        };
        for block in &vpc.cidr_blocks {
            // Blocks were checked when stored; one that no longer parses admits nobody.
            if block.parse::<Cidr>().is_ok_and(|c| c.contains(peer)) {
                return Ok(instance);
            }
        }
    }
    Err(GateError::OutsideVpcs(peer))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use super::*;
    use strongroom_store::{SqliteStore, Vpc, testsuite};

    #[tokio::test]
    async fn state_term_and_networks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("kms.db")).await.unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut i = testsuite::instance("kst-gate");
        i.end_time = Some(now() + 3600);
        store.create_instance(&i).await.unwrap();
        let refused = admit(&store, "kst-gate", ip("10.0.0.1")).await.unwrap_err();
        assert!(matches!(
            refused,
            GateError::Instance(ApiError::InstanceStateInvalid(_))
        ));
        i.status = InstanceStatus::Connected;
        let i = store.update_instance(&i).await.unwrap();
        // No VPC bound: reachable from anywhere the listener is.
        admit(&store, "kst-gate", ip("203.0.113.9")).await.unwrap();
        store
            .create_vpc(&Vpc {
                id: "vpc-a".into(),
                name: "a".into(),
                cidr_blocks: vec!["10.0.0.0/8".into(), "fd00::/8".into()],
                created_at: 0,
            })
            .await
            .unwrap();
        store
            .replace_instance_vpcs("kst-gate", &["vpc-a".to_owned()])
            .await
            .unwrap();
        admit(&store, "kst-gate", ip("10.9.8.7")).await.unwrap();
        admit(&store, "kst-gate", ip("fd00::1")).await.unwrap();
        assert_eq!(
            admit(&store, "kst-gate", ip("192.168.0.1"))
                .await
                .unwrap_err(),
            GateError::OutsideVpcs(ip("192.168.0.1"))
        );
        // Past its term without auto-renew: refused, data kept; with auto-renew: rolls on.
        let mut past = i.clone();
        past.end_time = Some(now() - 10);
        let past = store.update_instance(&past).await.unwrap();
        match admit(&store, "kst-gate", ip("10.0.0.1")).await.unwrap_err() {
            GateError::Instance(ApiError::InstanceStateInvalid(m)) => {
                assert!(m.contains("expired"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let mut auto = past;
        auto.auto_renew = true;
        store.update_instance(&auto).await.unwrap();
        let admitted = admit(&store, "kst-gate", ip("10.0.0.1")).await.unwrap();
        assert!(admitted.end_time.unwrap() > now());
        assert!(matches!(
            admit(&store, "kst-none", ip("10.0.0.1")).await.unwrap_err(),
            GateError::Instance(ApiError::InstanceNotFound(_))
        ));
    }
}
