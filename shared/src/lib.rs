//! Pure building blocks shared by `chef-sync-server` and `chef-syncd`: Chef request signing and
//! verification, RSA key handling, the org-relative object path grammar, Chef object types and
//! Chef's error body. Nothing here performs I/O or depends on an async runtime.

pub mod error_body;
pub mod keys;
pub mod objects;
pub mod path;
pub mod signing;

pub use error_body::ErrorBody;
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use path::{CookbookVersionNumber, ObjectKind, ObjectPath, PathError};
pub use signing::{AuthError, SignError, SigningVersion};
