//! Who is calling (signature verification → [`Actor`]) and what they may do in an org
//! ([`OrgAccess`]).

mod access;
mod authenticate;
mod key_cache;

pub use access::{Level, OrgAccess};
pub use authenticate::authenticate;
pub use key_cache::KeyCache;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The name from `X-Ops-Userid`.
    pub name: String,
    /// User or client.
    pub kind: ActorKind,
}

/// Users are global; clients belong to one org.
#[derive(Debug, Clone)]
pub enum ActorKind {
    /// A user.
    User {
        /// `users.id`.
        id: i64,
        /// The bootstrap superuser.
        superuser: bool,
    },
    /// A client.
    Client {
        /// `clients.id`.
        id: i64,
        /// The org it belongs to.
        org_id: i64,
        /// The org's validator.
        validator: bool,
    },
}

impl Actor {
    /// True for the superuser.
    pub fn is_superuser(&self) -> bool {
        matches!(
            self.kind,
            ActorKind::User {
                superuser: true,
                ..
            }
        )
    }

    /// Only the superuser may `what` (403 for everyone else).
    pub fn require_superuser(&self, what: &str) -> crate::error::ApiResult<()> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(crate::error::ApiError::Forbidden(format!(
                "'{}' is not authorized to {what}",
                self.name
            )))
        }
    }

    /// `user` or `client`, as group membership records it.
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            ActorKind::User { .. } => "user",
            ActorKind::Client { .. } => "client",
        }
    }
}
