//! The running gateway's long-lived parts: [`app::App`] and reload, signals, the admin
//! listener, the metrics it serves, and the log's writer thread.

pub mod admin;
pub mod app;
pub mod log;
pub mod metrics;
pub mod signals;
