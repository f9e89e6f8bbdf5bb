//! The key maintenance task every node runs (`docs/keys.md`): it destroys keys whose
//! deletion window has ended and secrets whose recovery window has ended, rotates keys whose automatic rotation is due, deletes
//! imported material that has expired, and forgets expired import parameters. Every
//! change is a single claiming statement or a compare-and-set in the store, so nodes
//! sharing one database may all run it: each key is acted on once.

use std::sync::Arc;

use strongroom_store::Store;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::api::{import, key_versions};
use crate::app::{App, now};
use crate::error::ApiError;

/// Keys handled per kind and run; the rest wait for the next run.
const BATCH: u32 = 100;

/// Runs until `stop` changes, then closes the node's HSM links.
pub async fn run<S: Store>(app: Arc<App<S>>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(app.config.maintenance_interval) => {}
            _ = stop.changed() => break,
        }
        once(&app).await;
    }
    app.hsm.close_all();
}

/// One pass of every duty.
pub async fn once<S: Store>(app: &App<S>) {
    let at = now();
    match app.store.destroy_due_keys(at, BATCH).await {
        Ok(ids) => {
            for id in ids {
                info!(key = %id, "key destroyed: its deletion window ended");
            }
        }
        Err(e) => warn!(error = %e, "destroying keys whose deletion window ended failed"),
    }
    match app.store.destroy_due_secrets(at, BATCH).await {
        Ok(names) => {
            for name in names {
                info!(secret = %name, "secret destroyed: its recovery window ended");
            }
        }
        Err(e) => warn!(error = %e, "destroying secrets whose recovery window ended failed"),
    }
    match app.store.keys_due_for_rotation(at, BATCH).await {
        Ok(keys) => {
            for key in keys {
                match key_versions::rotate(app, &key).await {
                    Ok((_, version)) => {
                        info!(key = %key.id, version = %version.version_id, "key rotated");
                    }
                    // Another node rotated it first.
                    Err(ApiError::ResourceInUse(_)) => debug!(key = %key.id, "rotated elsewhere"),
                    Err(e) => warn!(key = %key.id, error = %e, "automatic rotation failed"),
                }
            }
        }
        Err(e) => warn!(error = %e, "finding keys due for rotation failed"),
    }
    match app.store.keys_with_expired_material(at, BATCH).await {
        Ok(keys) => {
            for key in keys {
                match import::drop_material(app, &key).await {
                    Ok(_) => info!(key = %key.id, "imported key material expired and was deleted"),
                    Err(ApiError::ResourceInUse(_)) => debug!(key = %key.id, "expired elsewhere"),
                    Err(e) => warn!(key = %key.id, error = %e, "deleting expired material failed"),
                }
            }
        }
        Err(e) => warn!(error = %e, "finding keys with expired material failed"),
    }
    if let Err(e) = app.store.purge_expired_import_params(at).await {
        warn!(error = %e, "purging expired import parameters failed");
    }
}
