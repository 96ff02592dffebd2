//! The replication engine: one worker per org pair, all in one tokio runtime.

pub mod apply;
pub mod batch;
pub mod bulk;
pub mod bulk_write;
pub mod compare;
pub mod cookbook_batch;
pub mod cookbooks;
pub mod cycle;
pub mod feed;
pub mod follow;
pub mod handle;
pub mod inspect;
pub mod offers;
pub mod outcomes;
pub mod pause;
pub mod plan;
pub mod policyfiles;
pub mod progress;
pub mod reconcile;
pub mod settle;
pub mod sides;
pub mod worker;
