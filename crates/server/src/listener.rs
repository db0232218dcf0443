//! The API's HTTP/1.1 listener, built for clients that may be hostile or broken: at most
//! `max_connections` open at once (the rest wait in the kernel's backlog, as behind a proxy), a
//! deadline for each request's headers — which also closes idle keep-alive connections, so a
//! slow-loris client cannot keep a connection forever — and a bound on a request head's size
//! and header count, answered 431 by hyper. The body's deadline is the API's own middleware
//! (it answers 408 in the error shape).
//!
//! `axum::serve` exposes none of these, so this is its accept loop with them set.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The largest request head (request line and headers) read; a larger one is answered 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most headers a request may carry; more are answered 431.
const MAX_HEADERS: usize = 100;

/// What bounds the listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets the requests in flight
/// finish (idle connections are closed at once) and returns.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that sent garbage, timed out or went away: nothing to answer or log
            // above debug (hyper already answered what it could, such as 400 or 431).
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Accept errors are about one connection (reset before accept) or the process (out of file
/// descriptors); for the latter, retrying at once would spin, so wait a moment (as axum does).
async fn pause_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept an API connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
