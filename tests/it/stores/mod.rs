//! The Redis-backed stores through their public API, against a real redis-server from the
//! harness: two or three stores on one server stand for as many gateway instances.

mod revoke_redis;
mod rotation_redis;
mod throttle_redis;
mod users_redis;
