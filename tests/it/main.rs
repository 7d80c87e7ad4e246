//! The black-box tests: each module starts the real `portcullis` binary (through
//! [`common`], the harness) and talks to it over sockets, the way a user would. One test
//! binary, so the harness is compiled once.

mod common;
#[path = "../../fuzz/checks/mod.rs"]
mod fuzz_checks;

mod alpn;
mod assertion;
mod audit;
mod auth;
mod browser;
mod claims;
mod config;
mod cookie_tokens;
mod cookies;
mod curl;
mod deploy;
mod explain;
mod forward_auth;
mod fuzz_seeds;
mod headers;
mod host;
mod issuers;
mod issuers_attacks;
mod jwks;
mod keys;
mod limits;
mod login;
mod metrics;
mod oidc;
mod oidc_attacks;
mod oidc_client_auth;
mod oidc_logout;
mod oidc_providers;
mod parking;
mod passkeys;
mod password;
mod paths;
mod policy_claims;
mod proptests;
mod protocol;
mod proxies;
mod proxy;
mod redis;
mod redis_cluster;
mod redis_data_loss;
mod redis_sentinel;
mod redis_staleness;
mod redis_throttle;
mod redis_users;
mod refresh;
mod register;
mod reload;
mod second_factor;
mod second_factor_redis;
mod sign_in;
mod sign_in_password;
mod sign_in_proxies;
mod sign_in_sessions;
mod step_up;
mod stores;
mod upgrade;
mod upstream_faults;
mod upstream_pool;
mod users_cli;
mod users_http;
