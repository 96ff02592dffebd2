//! `chef-sync-server`: a Chef-API-compatible server for roles, environments, data bags and
//! cookbooks, with the transactional change feed (`updated_since`) that chef-syncd follows.
//! It serves as primary and as replica.

pub mod accounts;
pub mod api_version;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod feed;
pub mod routes;
pub mod store;

pub use app::{AppState, app};
pub use config::Config;
pub use store::Store;
