//! Serving the router over HTTP/1.1 with limits `axum::serve` cannot set: the request head
//! is bounded (`max_header_bytes`: hyper answers 431 and closes the connection), a client
//! must send its head within `header_timeout` (slow-header connections are closed), and
//! each request carries the peer address (`ConnectInfo<SocketAddr>`, through
//! `into_make_service_with_connect_info`) for the per-address rate limits.
//!
//! Shutdown is graceful as with `axum::serve`: when the signal fires, no new connection is
//! accepted, idle connections close, and requests in flight finish before [`serve`] returns.

use crate::app::AppState;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;

/// Headers a request may carry at most (hyper's default).
const MAX_HEADERS: usize = 100;

/// Serves the app's router on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.config.http.clone();
    let mut make_service = super::router(app).into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(limits.max_header_bytes)
        // The read buffer holds one request head; a little more than the limit, so the
        // head is measured (and answered 431) rather than cut off.
        .max_buf_size((limits.max_header_bytes + 1024).max(8192));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Per-connection failures (reset before accept) and resource exhaustion
                    // (too many open files): wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let tower_service = match make_service.call(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(tower_service);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}
