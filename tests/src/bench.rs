//! The benchmark harness behind `chef-sync-bench`: a keep-alive load generator with
//! pre-signed requests, process CPU and memory readings, the report, and one module per
//! benchmark of issue #6.

pub mod bootstrap;
pub mod dataset;
pub mod delta;
pub mod feed;
pub mod idle;
pub mod lag;
pub mod load;
pub mod ohai;
pub mod policyfiles;
pub mod proc_stats;
pub mod region;
pub mod report;
pub mod runs;
pub mod search;
pub mod sustained;
pub mod throughput;
