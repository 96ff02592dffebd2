//! Authorization inside an org, Chef's default ACLs as a fixed model: superuser everything;
//! org admins read and write; members of the `users` group (every user added to the org unless
//! taken out) also write the replicated types; other org users and clients read; validators
//! only register clients. Replica orgs refuse object writes from everyone but their sync user.

use super::{Actor, ActorKind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::OrgRow;

/// What an actor may do in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The org's validator client: may register clients, nothing else.
    Validator,
    /// Org user outside `users`, or client: read.
    Reader,
    /// Member of the org's `users` group: read, and write the replicated types (Chef's
    /// default container ACLs for cookbooks, data, environments and roles).
    User,
    /// Member of the org's `admins` group, or the superuser: read and write.
    Admin,
}

/// An actor's standing in one org, resolved once per request.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    /// The org.
    pub org: OrgRow,
    /// The caller.
    pub actor: Actor,
    /// What the caller may do.
    pub level: Level,
}

impl OrgAccess {
    /// Loads the org (404 if unknown) and the actor's level in it (403 if none).
    pub async fn resolve(state: &AppState, actor: &Actor, org_name: &str) -> ApiResult<OrgAccess> {
        let user_id = match actor.kind {
            ActorKind::User { id, .. } => Some(id),
            ActorKind::Client { .. } => None,
        };
        let standing = state
            .store
            .standing(org_name, actor.kind_str(), &actor.name, user_id)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("organization '{org_name}' does not exist."))
            })?;
        let org = standing.org;
        // Nested groups are rare; only then is membership resolved through them.
        let in_admins = standing.direct_admin
            || (standing.admins_nest_groups
                && state
                    .store
                    .in_group(org.id, "admins", actor.kind_str(), &actor.name)
                    .await?);
        let in_users = standing.direct_user
            || (standing.users_nest_groups
                && state
                    .store
                    .in_group(org.id, "users", actor.kind_str(), &actor.name)
                    .await?);
        let level = match actor.kind {
            ActorKind::User {
                superuser: true, ..
            } => Level::Admin,
            ActorKind::User { .. } => {
                if !standing.member {
                    return Err(ApiError::Forbidden(format!(
                        "'{}' not associated with organization '{}'",
                        actor.name, org.name
                    )));
                }
                if in_admins {
                    Level::Admin
                } else if in_users {
                    Level::User
                } else {
                    Level::Reader
                }
            }
            ActorKind::Client { org_id, .. } if org_id != org.id => {
                return Err(ApiError::Forbidden(format!(
                    "client '{}' does not belong to organization '{}'",
                    actor.name, org.name
                )));
            }
            ActorKind::Client {
                validator: true, ..
            } if !in_admins => Level::Validator,
            ActorKind::Client { .. } => {
                if in_admins {
                    Level::Admin
                } else if in_users {
                    Level::User
                } else {
                    Level::Reader
                }
            }
        };
        Ok(OrgAccess {
            org,
            actor: actor.clone(),
            level,
        })
    }

    fn forbidden(&self, what: &str) -> ApiError {
        ApiError::Forbidden(format!(
            "'{}' is not authorized to {what} in organization '{}'",
            self.actor.name, self.org.name
        ))
    }

    /// Reading objects: org users, clients and admins.
    pub fn require_read(&self) -> ApiResult<()> {
        if self.level >= Level::Reader {
            Ok(())
        } else {
            Err(self.forbidden("read objects"))
        }
    }

    /// Creating a node: org users, clients and admins (Chef's default ACL on the nodes
    /// container). Nodes are local, so replica orgs allow it too.
    pub fn require_node_create(&self) -> ApiResult<()> {
        if self.level >= Level::Reader {
            Ok(())
        } else {
            Err(self.forbidden("create nodes"))
        }
    }

    /// Saving or deleting node `node`: org users and admins; a client only the node of its own
    /// name (the node it registered, which Chef's object ACL gives its creator).
    pub fn require_node_change(&self, node: &str) -> ApiResult<()> {
        let allowed = match self.actor.kind {
            ActorKind::Client { .. } => {
                self.level >= Level::Admin
                    || (self.level >= Level::Reader && self.actor.name == node)
            }
            ActorKind::User { .. } => self.level >= Level::Reader,
        };
        if allowed {
            Ok(())
        } else {
            Err(self.forbidden(&format!("change node '{node}'")))
        }
    }

    /// Administrative writes (users, groups, clients): admins.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.level >= Level::Admin {
            Ok(())
        } else {
            Err(self.forbidden("administer"))
        }
    }

    /// Writing replicated objects: the `users` group and admins, and in a replica org only
    /// its sync user.
    pub fn require_object_write(&self) -> ApiResult<()> {
        if self.org.replica && self.org.sync_user.as_deref() != Some(self.actor.name.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "organization '{}' is a replica: its objects are written only by its sync user",
                self.org.name
            )));
        }
        if self.level >= Level::User {
            Ok(())
        } else {
            Err(self.forbidden("write objects"))
        }
    }

    /// Reading the change feed: admins (the sync user is one).
    pub fn require_feed(&self) -> ApiResult<()> {
        if self.level >= Level::Admin {
            Ok(())
        } else {
            Err(self.forbidden("read the change feed"))
        }
    }
}
