//! `chef-sync-server`: a Chef-API-compatible server for roles, environments, data bags and
//! cookbooks, with the transactional change feed (`updated_since`) that chef-syncd follows.
//! It serves as primary and as replica.

pub mod accounts;
pub mod admin;
pub mod api_version;
pub mod app;
pub mod auth;
pub mod blob;
pub mod body_rules;
pub mod config;
pub mod depsolver;
pub mod error;
pub mod feed;
pub mod file_url;
pub mod metrics;
pub mod rejection;
pub mod routes;
pub mod search;
pub mod state;
pub mod store;
pub mod tls;
pub mod trace;

pub use app::{app, metrics_app};
pub use config::Config;
pub use state::AppState;
pub use store::Store;
