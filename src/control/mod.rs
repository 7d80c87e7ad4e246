//! The running gateway's long-lived parts: [`app::App`] and reload, signals, the admin
//! listener, and the metrics it serves.

pub mod admin;
pub mod app;
pub mod metrics;
pub mod signals;
