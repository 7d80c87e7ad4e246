//! Accept loops: connection cap, TLS handshake deadline, h1/h2 serving, idle timeout,
//! and the drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::server::TlsStream;

use crate::config::snapshot::ListenSettings;
use crate::control::app::App;
use crate::control::metrics::Metrics;
use crate::request::client::ConnInfo;
use crate::server::conn::{Builders, Protocol, Server};
use crate::server::park::Readiness;
use crate::server::serve::serve_http;

/// Binds every configured listener and serves until `shutdown` resolves, then stops
/// accepting and gives in-flight requests `shutdown_grace` to finish.
///
/// Connections are served by one thread per CPU, each running its own single-threaded
/// runtime and accepting from the same listening sockets (as nginx workers do): a
/// connection, its requests and its upstream connections stay on one thread, so a proxied
/// request never pays for a wake-up on another thread. Everything else (admin endpoints,
/// reloads, store maintenance) runs on the caller's runtime.
pub async fn serve(
    app: Arc<App>,
    settings: ListenSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    crate::server::fd_limit::raise(settings.max_connections);
    let tls_listener = bind(settings.addr, "listen.addr").await?.into_std()?;
    let plain_listener = match settings.plain_addr {
        Some(addr) => Some(bind(addr, "listen.plain_addr").await?.into_std()?),
        None => None,
    };
    let admin_listener = match settings.admin_addr {
        Some(addr) => Some(bind(addr, "admin.addr").await?),
        None => None,
    };
    tracing::info!(https = %settings.addr, plain = ?settings.plain_addr, admin = ?settings.admin_addr, "portcullis listening");
    let (stop, stopping) = watch::channel(false);
    let server = Arc::new(Server {
        http: Builders::new(&settings),
        slots: Arc::new(Semaphore::new(settings.max_connections)),
        app: app.clone(),
        settings,
        stopping,
    });
    app.spawn_purger();
    crate::server::park::spawn_trimmer();
    crate::control::signals::spawn_reloader(app.clone()).await;
    if let Some(listener) = admin_listener {
        let stopping = server.stopping.clone();
        tokio::spawn(crate::control::admin::serve(
            listener,
            app.clone(),
            stopping,
        ));
    }
    let (exit, exiting) = watch::channel(false);
    let mut workers = Vec::new();
    for index in 0..crate::runtime::worker_count() {
        let listeners = Listeners {
            tls: tls_listener.try_clone()?,
            plain: plain_listener.as_ref().map(|l| l.try_clone()).transpose()?,
        };
        workers.push(spawn_worker(
            index,
            server.clone(),
            listeners,
            exiting.clone(),
        )?);
    }
    // From here the workers hold the only copies of the listening sockets: each closes its
    // own when its accept loops end, so once the drain starts the kernel refuses new
    // connections at once (a load balancer fails over) instead of queueing them unserved.
    drop((tls_listener, plain_listener));
    shutdown.await;
    let _ = stop.send(true);
    drain(&server).await;
    // Past the drain (or its grace), a worker's runtime ends and drops what is left on it.
    let _ = exit.send(true);
    for worker in workers {
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    }
    Ok(())
}

/// Binds `addr`; a failure names the address and the config key that asked for it, since
/// "Address already in use" alone does not say which of the listeners it was.
async fn bind(addr: SocketAddr, key: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot listen on {addr} ({key}): {err}"),
        )
    })
}

/// A worker's copies of the listening sockets.
struct Listeners {
    tls: std::net::TcpListener,
    plain: Option<std::net::TcpListener>,
}

/// Starts worker `index`: accept loops until shutdown, then its connections until `exiting`.
fn spawn_worker(
    index: usize,
    server: Arc<Server>,
    listeners: Listeners,
    mut exiting: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("portcullis-worker-{index}"))
        .spawn(move || {
            crate::forward::pool::use_shard(index);
            runtime.block_on(async move {
                let accepting = async {
                    match TcpListener::from_std(listeners.tls) {
                        Ok(tls) => accept_loop(server.clone(), tls, true).await,
                        Err(err) => tracing::error!(error = %err, "worker cannot accept"),
                    }
                };
                let plain = async {
                    if let Some(listener) = listeners.plain {
                        match TcpListener::from_std(listener) {
                            Ok(plain) => accept_loop(server.clone(), plain, false).await,
                            Err(err) => tracing::error!(error = %err, "worker cannot accept"),
                        }
                    }
                };
                tokio::join!(accepting, plain);
                let _ = exiting.wait_for(|exit| *exit).await;
            });
        })
}

/// Waits until every connection has closed, or the grace period is over.
async fn drain(server: &Server) {
    let all = u32::try_from(server.settings.max_connections).unwrap_or(u32::MAX);
    let grace = server.settings.shutdown_grace;
    match tokio::time::timeout(grace, server.slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections closed; exiting"),
        Err(_) => tracing::warn!(
            ?grace,
            "grace period over with requests still in flight; exiting"
        ),
    }
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener, tls: bool) {
    let mut stopping = server.stopping.clone();
    loop {
        let slot = tokio::select! {
            slot = server.slots.clone().acquire_owned() => slot,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let Ok(slot) = slot else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let task = async move {
            if tls {
                serve_tls(&server, stream, peer).await;
            } else {
                serve_plain(&server, stream, peer).await;
            }
            drop(slot);
        };
        tokio::spawn(task);
    }
}

async fn serve_plain(server: &Server, stream: TcpStream, peer: SocketAddr) {
    let deadline = Instant::now() + server.settings.header_timeout;
    let _open = Open::count(&server.app.metrics);
    // As `first_bytes` for TLS.
    let mut byte = [0; 1];
    let first = async {
        matches!(
            timeout_at(deadline, stream.peek(&mut byte)).await,
            Ok(Ok(_))
        )
    };
    // Boxed, as the waits below: a task is as large as its largest state, and keeps that
    // size for as long as its connection lives, parked or not.
    if !Box::pin(unless_stopping(server, first)).await {
        tracing::debug!(client = %peer, "no request within header_timeout");
        return;
    }
    let info = ConnInfo {
        peer,
        proto: "http",
        client: peer.ip(),
    };
    let protocol = plain_protocol(&stream).await;
    serve_http(server, stream, info, protocol).await;
}

async fn serve_tls(server: &Server, stream: TcpStream, peer: SocketAddr) {
    // The handshake and the first byte of the first request share one header_timeout; hyper
    // then gives an HTTP/1.1 request head its own.
    let deadline = Instant::now() + server.settings.header_timeout;
    let Some((tls, protocol)) = handshake(server, stream, peer, deadline).await else {
        return;
    };
    let _open = Open::count(&server.app.metrics);
    if !Box::pin(unless_stopping(server, first_bytes(&tls, deadline))).await {
        tracing::debug!(client = %peer, "no request within header_timeout of the handshake");
        return;
    }
    let info = ConnInfo {
        peer,
        proto: "https",
        client: peer.ip(),
    };
    serve_http(server, tls, info, protocol).await;
}

/// The TLS handshake, by `deadline`, and the protocol ALPN chose.
///
/// The session comes back boxed: it is over a kilobyte, and each async fn it is passed through
/// would otherwise keep its own copy in the connection's task for as long as the connection
/// lives (2.4 KiB more per idle connection).
async fn handshake(
    server: &Server,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<(Box<TlsStream<TcpStream>>, Protocol)> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server.app.shared.load().tls.clone());
    // Boxed too: inline, the handshake (a whole session) would set the size of the task,
    // which a connection keeps for its whole life, parked or not.
    let accepting = Box::pin(acceptor.accept(stream));
    match timeout_at(deadline, accepting).await {
        Ok(Ok(tls)) => {
            let protocol = Protocol::from_alpn(tls.get_ref().1.alpn_protocol());
            Some((Box::new(tls), protocol))
        }
        Ok(Err(err)) => {
            tracing::debug!(client = %peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(client = %peer, "TLS handshake timed out");
            None
        }
    }
}

/// Waits, at most until `deadline`, for the client to send something after the handshake.
///
/// hyper allocates its 16 KiB of HTTP/1.1 buffers (h2: its codec's) as soon as a connection
/// is built; a client that connects ahead of its first request (a browser's preconnect) costs
/// only its TLS session until it speaks. And a silent connection is closed after
/// header_timeout whatever its protocol: the sniffing that no ALPN leads to, and h2, have no
/// deadline of their own for a first byte. False: nothing came in time.
async fn first_bytes(tls: &TlsStream<TcpStream>, deadline: Instant) -> bool {
    matches!(timeout_at(deadline, tls.wait_readable()).await, Ok(true))
}

/// HTTP/1.1 on the plain listener, unless the first bytes may be h2's preface (prior
/// knowledge): then hyper sniffs. Decided here, so that HTTP/1.1 connections park.
async fn plain_protocol(stream: &TcpStream) -> Protocol {
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut head = [0; 24];
    match stream.peek(&mut head).await {
        Ok(n) if n > 0 && head[..n] != PREFACE[..n] => Protocol::Http1,
        _ => Protocol::Sniff,
    }
}

/// What `first` says, or false as soon as the server stops: a connection that has not spoken
/// has nothing in flight to finish, and must not hold up the drain.
async fn unless_stopping(server: &Server, first: impl Future<Output = bool>) -> bool {
    let mut stopping = server.stopping.clone();
    tokio::select! {
        spoke = first => spoke,
        _ = stopping.wait_for(|stop| *stop) => false,
    }
}

/// One connection counted in `open_connections` for as long as this lives.
struct Open<'a>(&'a Metrics);

impl<'a> Open<'a> {
    fn count(metrics: &'a Metrics) -> Self {
        metrics.open_connections.fetch_add(1, Ordering::Relaxed);
        Open(metrics)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
