//! The replica daemon (`chef-syncd`) and its operator CLI (`chef-sync-ctl`): configuration,
//! the signed Chef client, the state database, the replication engine and the control socket.

pub mod bag_writes;
pub mod chef_client;
pub mod config;
pub mod control;
pub mod ctl;
pub mod daemon;
pub mod engine;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod monitoring;
pub mod org_pair;
pub mod probe;
pub mod state;
pub mod status;
pub mod text;
pub mod tls_trust;
pub mod watchdog;
