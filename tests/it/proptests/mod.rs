//! Property tests over the pure stages, through the public API; the models they compare
//! against are the fuzz targets' (`fuzz/checks/`).

mod forward;
mod path;
mod route;
mod token;
