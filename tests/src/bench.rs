//! The benchmark harness behind `chef-sync-bench`: a keep-alive load generator with
//! pre-signed requests, process CPU and memory readings, and the report.

pub mod load;
pub mod proc_stats;
pub mod report;
