//! Chef search over the replicated objects: the query language, the fields an object is found
//! by, and the indexes (`role`, `environment`, one per data bag). Answers are computed from the
//! store at request time, so a search is never behind a write that was acknowledged.

pub mod fields;
pub mod query;

pub use fields::Fields;
pub use query::{Query, QueryError};
