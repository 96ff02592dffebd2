//! Chef object types as they travel over the API, with serde. Every type keeps the JSON fields
//! it does not model in `extra`, so reading and writing an object loses nothing.

mod cookbook;
mod data_bag;
mod environment;
mod node;
mod role;
mod run_list;

pub use cookbook::{CookbookFile, CookbookFiles, CookbookVersion, SEGMENTS};
pub use data_bag::{DataBag, DataBagItem};
pub use environment::Environment;
pub use node::Node;
pub use role::Role;
pub use run_list::{RunListError, normalize_run_list};

/// A JSON object with its keys in their original order.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// Why a JSON document is not a valid Chef object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// Not JSON, or the wrong JSON types.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A field is missing or of the wrong type.
    #[error("field '{field}' {problem}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl From<serde_json::Error> for ObjectError {
    fn from(e: serde_json::Error) -> Self {
        ObjectError::Json(e.to_string())
    }
}

fn owned(value: &'static str) -> String {
    value.to_owned()
}
