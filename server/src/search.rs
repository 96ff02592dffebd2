//! Chef search: the query language, the terms a document is found by, and what each index
//! (`node`, `role`, `environment`, `client`, one per data bag) holds of an object. The index
//! itself lives in the store (`store::search_index`), written in the same transaction as the
//! object, so a search is never behind a write that was acknowledged.

pub mod document;
pub mod fields;
pub mod query;

pub use document::IndexKind;
pub use fields::{Term, Terms};
pub use query::{FieldName, Query, QueryError, ValueMatch};
