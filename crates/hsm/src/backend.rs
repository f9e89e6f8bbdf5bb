//! What an HSM does, as one trait with two kinds of implementation: in-process backends
//! ([`Backend`]: the software engine of an HSM node, the PKCS#11 token) and the network
//! ([`Hsm`]: the cluster client, or a local backend run off the async threads).
//!
//! Operations and replies are the HSM link's own messages (`proto/hsm.proto`), so a
//! request means the same thing whether it crosses a socket or a function call.

use std::future::Future;
use std::sync::Arc;

use strongroom_proto::hsm::v1::{StatusReply, request, response};

use crate::error::{HsmError, Result};

/// One HSM operation.
pub type Op = request::Op;
/// Its successful result.
pub type Reply = response::Result;

/// A synchronous HSM: a CPU- or token-bound engine called from a blocking thread.
pub trait Backend: Send + Sync + 'static {
    /// Runs one operation. [`Op::Status`] answers [`Backend::status`].
    ///
    /// # Errors
    /// An [`HsmError`] with the link's code; never a panic, whatever the input.
    fn execute(&self, op: Op) -> Result<Reply>;

    /// Whether this backend can serve crypto, and what it is.
    fn status(&self) -> StatusReply;
}

/// An asynchronous HSM, the interface the KMS programs against.
pub trait Hsm: Send + Sync + 'static {
    /// Runs one operation somewhere in the HSM cluster.
    ///
    /// # Errors
    /// An [`HsmError`]; the network client retries [`HsmError::is_retryable`] failures
    /// on another node before returning one.
    fn call(&self, op: Op) -> impl Future<Output = Result<Reply>> + Send;
}

/// A [`Backend`] used as an [`Hsm`]: each call runs on tokio's blocking pool, so a slow
/// token or an RSA signature never stalls the async threads.
#[derive(Debug)]
pub struct LocalHsm<B> {
    backend: Arc<B>,
}

impl<B: Backend> LocalHsm<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }
}

impl<B: Backend> Hsm for LocalHsm<B> {
    async fn call(&self, op: Op) -> Result<Reply> {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || backend.execute(op))
            .await
            .map_err(|e| HsmError::internal(format!("HSM task failed: {e}")))?
    }
}
