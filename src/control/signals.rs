//! Operations driven from outside: SIGHUP and file-change reload, SIGTERM/SIGINT drain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};

use crate::config;
use crate::control::app::App;

/// How often watched files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_requested() {
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: draining"),
                _ = interrupt.recv() => tracing::info!("SIGINT: draining"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; only Ctrl-C stops the gateway");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reloads on SIGHUP and whenever a watched file changes, for the life of the process.
///
/// The first stamps are taken before this returns, so before the gateway reports ready: a
/// file changed after that is always seen. Stamps are taken before each reload, so a change
/// that lands while a reload reads the files is reloaded again at the next tick.
pub async fn spawn_reloader(app: Arc<App>) {
    let mut watched = Stamps::read(&app).await;
    tokio::spawn(async move {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(err) => {
                tracing::error!(error = %err, "cannot install the SIGHUP handler; file watching still reloads");
                None
            }
        };
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            let (reason, stamps) = tokio::select! {
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    ("SIGHUP", Stamps::read(&app).await)
                }
                _ = tick.tick() => {
                    let stamps = Stamps::read(&app).await;
                    if stamps == watched { continue; }
                    ("file change", stamps)
                }
            };
            watched = stamps;
            app.reload(reason).await;
        }
    });
}

/// Modification time and length of each watched file (None when missing).
#[derive(Debug, PartialEq, Eq)]
struct Stamps(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Stamps {
    /// Reads the stamps off the async workers (stat calls block).
    async fn read(app: &App) -> Stamps {
        let source = app.source.clone();
        let stamps =
            tokio::task::spawn_blocking(move || Stamps::of(config::watched_files(&source)));
        stamps.await.unwrap_or(Stamps(Vec::new()))
    }

    fn of(files: Vec<PathBuf>) -> Stamps {
        Stamps(
            files
                .into_iter()
                .map(|path| {
                    let stamp = std::fs::metadata(&path)
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())));
                    (path, stamp)
                })
                .collect(),
        )
    }
}
