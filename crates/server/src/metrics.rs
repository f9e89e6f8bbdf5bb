//! Prometheus metrics (`docs/metrics.md`): requests by API and result code, latency
//! histograms, the HSM nodes' health and requests in flight, and key counts per
//! instance, in the text exposition format on `GET /metrics` of the metrics listener
//! (`[metrics] listen`, loopback by default, plain HTTP, no authentication: expose it only
//! where scrapers are).
//!
//! Counters and histograms are kept in memory per node; the HSM and key figures are read
//! when scraped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use strongroom_store::{InstanceStatus, KeyFilter, Page, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::app::App;
use crate::http::{Sources, http1};
use crate::stall::WriteDeadline;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Where a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Surface {
    /// The management API.
    Management,
    /// An instance endpoint.
    Instance,
}

impl Surface {
    fn as_str(self) -> &'static str {
        match self {
            Self::Management => "management",
            Self::Instance => "instance",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What is kept per API: counts by result code, and the latency histogram.
#[derive(Debug, Default)]
struct ApiStats {
    codes: BTreeMap<String, u64>,
    latency: Histogram,
}

/// Per surface, per API. Looked up by `&str`: a request allocates nothing once its API
/// and code have been seen.
#[derive(Debug, Default)]
struct Counters {
    apis: BTreeMap<Surface, BTreeMap<String, ApiStats>>,
}

/// Request counts and latency histograms, copied out of the lock.
type Snapshot = (
    Vec<((Surface, String, String), u64)>,
    Vec<((Surface, String), Histogram)>,
);

/// A node's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Counts one request of `api` answered with `code` (`OK` or the error code) after
    /// `elapsed`.
    pub fn observe(&self, surface: Surface, api: &str, code: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let apis = counters.apis.entry(surface).or_default();
        if !apis.contains_key(api) {
            apis.insert(api.to_owned(), ApiStats::default());
        }
        let Some(stats) = apis.get_mut(api) else {
            return;
        };
        match stats.codes.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                stats.codes.insert(code.to_owned(), 1);
            }
        }
        let histogram = &mut stats.latency;
        for (bound, count) in BUCKETS.iter().zip(histogram.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    fn snapshot(&self) -> Snapshot {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut requests = Vec::new();
        let mut latency = Vec::new();
        for (surface, apis) in &counters.apis {
            for (api, stats) in apis {
                for (code, n) in &stats.codes {
                    requests.push(((*surface, api.clone(), code.clone()), *n));
                }
                latency.push(((*surface, api.clone()), stats.latency.clone()));
            }
        }
        (requests, latency)
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition text.
pub async fn render<S: Store>(app: &App<S>) -> String {
    let mut out = String::new();
    let (requests, latency) = app.metrics.snapshot();
    out.push_str("# HELP strongroom_requests_total Requests answered, by surface, API or action, and result code.\n");
    out.push_str("# TYPE strongroom_requests_total counter\n");
    for ((surface, api, code), n) in requests {
        let _ = writeln!(
            out,
            "strongroom_requests_total{{surface=\"{}\",api=\"{}\",code=\"{}\"}} {n}",
            surface.as_str(),
            label(&api),
            label(&code)
        );
    }
    out.push_str(
        "# HELP strongroom_request_duration_seconds Time from a request's arrival to its answer.\n",
    );
    out.push_str("# TYPE strongroom_request_duration_seconds histogram\n");
    for ((surface, api), h) in latency {
        let labels = format!("surface=\"{}\",api=\"{}\"", surface.as_str(), label(&api));
        for (bound, count) in BUCKETS.iter().zip(h.buckets.iter()) {
            let _ = writeln!(
                out,
                "strongroom_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "strongroom_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "strongroom_request_duration_seconds_sum{{{labels}}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "strongroom_request_duration_seconds_count{{{labels}}} {}",
            h.count
        );
    }
    out.push_str("# HELP strongroom_hsm_node_healthy Whether an HSM node gets requests (unsealed, synced, answering).\n");
    out.push_str("# TYPE strongroom_hsm_node_healthy gauge\n");
    let health = app.hsm.health();
    for (instance, nodes) in &health {
        for node in nodes {
            let _ = writeln!(
                out,
                "strongroom_hsm_node_healthy{{instance=\"{}\",node=\"{}\"}} {}",
                label(instance),
                label(&node.address),
                u8::from(node.healthy)
            );
        }
    }
    out.push_str("# HELP strongroom_hsm_node_in_flight Requests on an HSM node now.\n");
    out.push_str("# TYPE strongroom_hsm_node_in_flight gauge\n");
    for (instance, nodes) in &health {
        for node in nodes {
            let _ = writeln!(
                out,
                "strongroom_hsm_node_in_flight{{instance=\"{}\",node=\"{}\"}} {}",
                label(instance),
                label(&node.address),
                node.in_flight
            );
        }
    }
    out.push_str("# HELP strongroom_keys Keys of an instance (every state but destroyed).\n");
    out.push_str("# TYPE strongroom_keys gauge\n");
    out.push_str("# HELP strongroom_instance_connected Whether an instance is Connected.\n");
    out.push_str("# TYPE strongroom_instance_connected gauge\n");
    match app
        .store
        .list_instances(Page {
            number: 1,
            size: 100,
        })
        .await
    {
        Ok(instances) => {
            for instance in instances.items {
                let filter = KeyFilter {
                    instance_id: Some(instance.id.clone()),
                    ..KeyFilter::default()
                };
                if let Ok(keys) = app
                    .store
                    .list_keys(&filter, Page { number: 1, size: 1 })
                    .await
                {
                    let _ = writeln!(
                        out,
                        "strongroom_keys{{instance=\"{}\"}} {}",
                        label(&instance.id),
                        keys.total
                    );
                }
                let _ = writeln!(
                    out,
                    "strongroom_instance_connected{{instance=\"{}\"}} {}",
                    label(&instance.id),
                    u8::from(instance.status == InstanceStatus::Connected)
                );
            }
        }
        Err(e) => warn!(error = %e, "metrics: reading the instances failed"),
    }
    out
}

/// Most connections the metrics listener serves at once (a few scrapers need a few).
pub const MAX_CONNECTIONS: usize = 64;

/// Serves `GET /metrics` on `listener` until `stop` turns true: at most
/// [`MAX_CONNECTIONS`] connections, `[limits] connections_per_source` from one address,
/// each request's head within `header_timeout_secs` (also the idle timeout).
pub async fn serve<S: Store + Clone>(
    app: Arc<App<S>>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(Sources::default());
    let limits = app.config.limits.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "metrics: connection limit reached; closing");
            continue;
        };
        let Some(slot) = sources.admit(peer.ip(), limits.connections_per_source) else {
            debug!(%peer, "metrics: connection limit of the source address reached; closing");
            continue;
        };
        let app = Arc::clone(&app);
        let (header_timeout, write_timeout) = (limits.header_timeout, limits.write_timeout);
        tokio::spawn(async move {
            let _held = (permit, slot);
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(answer(&app, &req).await) }
            });
            if let Err(e) = http1(header_timeout)
                .serve_connection(
                    TokioIo::new(WriteDeadline::new(stream, write_timeout)),
                    service,
                )
                .await
            {
                debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer<S: Store, B>(app: &App<S>, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, body) = if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
        (StatusCode::OK, render(app).await)
    } else {
        (StatusCode::NOT_FOUND, "GET /metrics\n".to_owned())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str("text/plain; version=0.0.4") {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = Metrics::default();
        m.observe(
            Surface::Instance,
            "Encrypt",
            "OK",
            Duration::from_micros(700),
        );
        m.observe(
            Surface::Instance,
            "Encrypt",
            "OK",
            Duration::from_millis(30),
        );
        m.observe(
            Surface::Instance,
            "Encrypt",
            "Forbidden.KeyNotFound",
            Duration::from_millis(1),
        );
        let (requests, latency) = m.snapshot();
        assert_eq!(requests.len(), 2);
        let (_, h) = latency.first().cloned().unwrap();
        assert_eq!(h.count, 3);
        // 0.7 ms is within 1 ms; 1 ms too; 30 ms only from 50 ms on.
        assert_eq!(h.buckets.get(1), Some(&2));
        assert_eq!(h.buckets.get(6), Some(&3));
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
