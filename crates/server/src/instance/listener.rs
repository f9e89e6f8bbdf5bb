//! One instance endpoint's listener: TCP, then (from a trusted proxy only) a PROXY
//! protocol v2 header, then TLS with the instance's certificate, then HTTP/1.1 with
//! keep-alive; each request goes to [`super::handler::handle`] with the caller's real
//! address.
//!
//! Limits (`docs/kms-node.md`, "Limits"): at most [`MAX_CONNECTIONS`] connections, and
//! `[limits] connections_per_source` per source address. The source is the TCP peer;
//! a trusted proxy's own connections are not capped unless `cap_trusted_proxies`, but
//! the client its PROXY header names is, as if it had connected directly.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use strongroom_store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::handler;
use super::proxy::{self, Source};
use crate::app::App;
use crate::http::{MAX_CONNECTIONS, SourceSlot, Sources, http1};
use crate::stall::WriteDeadline;

/// Accepts connections for `instance_id` until `stop` turns true.
pub async fn serve<S: Store + Clone>(
    app: Arc<App<S>>,
    instance_id: Arc<str>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(Sources::default());
    let limits = app.config.limits.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, instance = %instance_id, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "connection limit reached; closing");
            continue;
        };
        let trusted = is_trusted(&app, peer.ip());
        let cap = if trusted && !limits.cap_trusted_proxies {
            0
        } else {
            limits.connections_per_source
        };
        let Some(peer_slot) = sources.admit(peer.ip(), cap) else {
            debug!(%peer, "connection limit of the source address reached; closing");
            continue;
        };
        let (app, acceptor, instance_id) =
            (Arc::clone(&app), acceptor.clone(), Arc::clone(&instance_id));
        let (stop, sources) = (stop.clone(), Arc::clone(&sources));
        let handshake_timeout = limits.handshake_timeout;
        tokio::spawn(async move {
            let _held = (permit, peer_slot);
            let _ = stream.set_nodelay(true);
            let Some((stream, source)) = caller(stream, peer, trusted).await else {
                return;
            };
            // The client behind a trusted proxy counts as its own source.
            let _client_slot: Option<SourceSlot> = if trusted && source != peer.ip() {
                let Some(slot) = sources.admit(source, app.config.limits.connections_per_source)
                else {
                    debug!(%peer, %source, "connection limit of the proxied source reached; closing");
                    return;
                };
                Some(slot)
            } else {
                None
            };
            let stream = WriteDeadline::new(stream, app.config.limits.write_timeout);
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => connection(app, instance_id, TokioIo::new(tls), source, stop).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Whether `peer` is a configured trusted proxy.
fn is_trusted<S: Store>(app: &App<S>, peer: IpAddr) -> bool {
    app.config
        .trusted_proxies
        .iter()
        .any(|cidr| cidr.contains(peer))
}

/// The caller's address: from the PROXY header when `peer` is a trusted proxy (which
/// must send one), else the peer itself. `None` closes the connection.
async fn caller(
    mut stream: TcpStream,
    peer: SocketAddr,
    trusted: bool,
) -> Option<(TcpStream, IpAddr)> {
    if !trusted {
        return Some((stream, peer.ip()));
    }
    match proxy::read_header(&mut stream).await {
        Ok(Source::Client(client)) => Some((stream, client.ip())),
        Ok(Source::Local) => Some((stream, peer.ip())),
        Err(e) => {
            warn!(%peer, error = %e, "a trusted proxy sent no valid PROXY header; closing");
            None
        }
    }
}

async fn connection<S, I>(
    app: Arc<App<S>>,
    instance_id: Arc<str>,
    io: I,
    source: IpAddr,
    mut stop: watch::Receiver<bool>,
) where
    S: Store + Clone,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let header_timeout = app.config.limits.header_timeout;
    let service = hyper::service::service_fn(move |req| {
        let (app, instance_id) = (Arc::clone(&app), Arc::clone(&instance_id));
        async move { Ok::<_, Infallible>(handler::handle(&app, &instance_id, source, req).await) }
    });
    let served = http1(header_timeout).serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        outcome = &mut served => {
            if let Err(e) = outcome {
                debug!(%source, error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            // The endpoint is going away: finish the request in flight, then close.
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}
