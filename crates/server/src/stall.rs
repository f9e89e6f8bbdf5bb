//! A deadline on writes that make no progress: a client that sends requests but never
//! reads the answers fills its socket buffers, after which the server's writes wait
//! forever and the connection (and its place in the caps) is held. [`WriteDeadline`]
//! fails such a write once it has waited [`crate::config::Limits::write_timeout`] without
//! the kernel taking a byte, which ends the connection. It is the same rule as nginx's
//! `send_timeout`: the time between two writes that progress, not the time for a whole
//! answer.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner` whose writes (and flushes and shutdown) fail with [`io::ErrorKind::TimedOut`]
/// after waiting `limit` without progress. Reads pass through unchanged (their limits
/// are hyper's header timeout and the body timeout).
#[derive(Debug)]
pub struct WriteDeadline<I> {
    inner: I,
    limit: Duration,
    /// Running while a write waits; reset by any progress.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<I> WriteDeadline<I> {
    /// Wraps `inner`.
    pub fn new(inner: I, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            waiting: None,
        }
    }

    /// What `inner`'s poll returned, with the deadline applied: `Ready` resets it,
    /// `Pending` starts it (once) and turns into an error when it passes.
    fn guard<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let waiting = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of its answer for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const LIMIT: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_reading_fails_the_write_after_the_limit() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut guarded = WriteDeadline::new(ours, LIMIT);
        guarded.write_all(&[7; 64]).await.unwrap();
        let started = tokio::time::Instant::now();
        let e = guarded.write_all(&[7; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
        let mut first = [0u8; 64];
        theirs.read_exact(&mut first).await.unwrap();
        assert_eq!(first, [7; 64]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (ours, mut theirs) = tokio::io::duplex(16);
        let mut guarded = WriteDeadline::new(ours, LIMIT);
        // 16 bytes every 20 s: each wait is under the limit, the whole write is not.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 16];
            while got.len() < 160 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                let n = theirs.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            got
        });
        let sent: Vec<u8> = (0..160u8).collect();
        guarded.write_all(&sent).await.unwrap();
        guarded.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), sent);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_untouched() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut guarded = WriteDeadline::new(ours, LIMIT);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 3];
            guarded.read_exact(&mut buf).await.map(|_| buf)
        });
        tokio::time::sleep(LIMIT * 2).await;
        theirs.write_all(b"abc").await.unwrap();
        assert_eq!(&reader.await.unwrap().unwrap(), b"abc");
    }
}
