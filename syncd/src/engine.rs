//! The replication engine: one worker per org pair, all in one tokio runtime.

pub mod apply;
pub mod backoff;
pub mod bulk;
pub mod compare;
pub mod cookbooks;
pub mod feed;
pub mod plan;
pub mod policyfiles;
pub mod progress;
pub mod reconcile;
pub mod worker;
