//! The control socket: HTTP over the unix socket `socket_path` (mode 0600), served by the
//! daemon and used by chef-sync-ctl.

pub mod client;
pub mod server;
