//! The replica daemon (`chef-syncd`) and its operator CLI (`chef-sync-ctl`).
//!
//! Only the command-line surface exists so far; the engine is built under issue #4.
