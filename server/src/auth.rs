//! Who is calling (signature verification → [`Actor`]) and what they may do in an org
//! ([`OrgAccess`]).

mod access;
mod authenticate;

pub use access::{Level, OrgAccess};
pub use authenticate::authenticate;

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

    /// `user` or `client`, as group membership records it.
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            ActorKind::User { .. } => "user",
            ActorKind::Client { .. } => "client",
        }
    }
}
