//! Keeps one listener per Connected instance: every [`SYNC_INTERVAL`] the node reads the
//! instances, starts an endpoint for each Connected one (on the port the store assigned
//! it, the same on every node) and stops those of instances that are no longer
//! Connected or were released.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strongroom_store::{Instance, InstanceStatus, Page, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{listener, tls};
use crate::app::App;

/// Time between two looks at the instances.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A running endpoint.
#[derive(Debug)]
struct Running {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs until `shutdown` turns true, then stops every endpoint.
pub async fn run<S: Store + Clone>(app: Arc<App<S>>, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<String, Running> = HashMap::new();
    // What went wrong last time per instance, so that a lasting problem is logged once.
    let mut failures: HashMap<String, String> = HashMap::new();
    loop {
        match connected(&app).await {
            Ok(instances) => {
                sync(&app, &instances, &mut running, &mut failures).await;
            }
            Err(e) => warn!(error = %e, "reading the instances for their endpoints failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SYNC_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (_, endpoint) in running.drain() {
        let _ = endpoint.stop.send(true);
        let _ = endpoint.task.await;
    }
}

async fn connected<S: Store>(app: &App<S>) -> Result<Vec<Instance>, strongroom_store::StoreError> {
    let mut all = Vec::new();
    let mut number = 1;
    loop {
        let page = app.store.list_instances(Page { number, size: 100 }).await?;
        let done = page.items.len() < 100;
        all.extend(
            page.items
                .into_iter()
                .filter(|i| i.status == InstanceStatus::Connected),
        );
        if done {
            return Ok(all);
        }
        number += 1;
    }
}

async fn sync<S: Store + Clone>(
    app: &Arc<App<S>>,
    instances: &[Instance],
    running: &mut HashMap<String, Running>,
    failures: &mut HashMap<String, String>,
) {
    running.retain(|id, endpoint| {
        let keep = instances.iter().any(|i| &i.id == id) && !endpoint.task.is_finished();
        if !keep {
            info!(instance = %id, address = %endpoint.address, "instance endpoint stopped");
            let _ = endpoint.stop.send(true);
        }
        keep
    });
    for instance in instances {
        if running.contains_key(&instance.id) {
            continue;
        }
        match start(app, instance).await {
            Ok(endpoint) => {
                info!(instance = %instance.id, address = %endpoint.address, "instance endpoint listening");
                failures.remove(&instance.id);
                running.insert(instance.id.clone(), endpoint);
            }
            Err(e) => {
                if failures.get(&instance.id) != Some(&e) {
                    warn!(instance = %instance.id, error = %e, "instance endpoint not started; retrying");
                    failures.insert(instance.id.clone(), e);
                }
            }
        }
    }
}

async fn start<S: Store + Clone>(
    app: &Arc<App<S>>,
    instance: &Instance,
) -> Result<Running, String> {
    let port = app
        .store
        .instance_port(&instance.id, app.config.instance_ports.clone())
        .await
        .map_err(|e| format!("no port: {e}"))?;
    let address = SocketAddr::new(app.config.instance_api_ip, port);
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("listening on {address}: {e}"))?;
    let (app2, instance2) = (Arc::clone(app), instance.clone());
    // Three RSA operations (open, issue, sign): off the async workers.
    let tls = tokio::task::spawn_blocking(move || tls::server_config(&app2, &instance2))
        .await
        .map_err(|e| format!("TLS setup task: {e}"))??;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(listener::serve(
        Arc::clone(app),
        Arc::from(instance.id.as_str()),
        listener,
        tls,
        stopped,
    ));
    Ok(Running {
        address,
        stop,
        task,
    })
}
