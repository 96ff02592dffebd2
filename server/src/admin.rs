//! The operator's commands beyond creating things (`chef-sync-server user-list`, `org-delete`,
//! `client-key-rotate`, `org-writable`, …): each takes the store and returns the lines to
//! print, so `main` only parses and prints.

use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::store::{KeyOwner, KeyRow, OrgRow, Store, StoreError, UserRow};

async fn user(store: &Store, name: &str) -> ApiResult<UserRow> {
    store
        .user(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named '{name}'")))
}

async fn org(store: &Store, name: &str) -> ApiResult<OrgRow> {
    store
        .org(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organization named '{name}'")))
}

/// Every user name, one per line.
pub async fn user_list(store: &Store) -> ApiResult<Vec<String>> {
    Ok(store.usernames().await?)
}

/// Every org name, one per line.
pub async fn org_list(store: &Store) -> ApiResult<Vec<String>> {
    Ok(store.org_names().await?)
}

/// The clients of an org, one per line.
pub async fn client_list(store: &Store, org_name: &str) -> ApiResult<Vec<String>> {
    let org = org(store, org_name).await?;
    Ok(store.client_names(org.id).await?)
}

/// Deletes a user everywhere; the superuser `pivotal` cannot be deleted.
pub async fn user_delete(store: &Store, name: &str) -> ApiResult<Vec<String>> {
    let user = user(store, name).await?;
    if user.superuser {
        return Err(ApiError::Forbidden(format!(
            "'{name}' is the superuser; the server cannot work without it"
        )));
    }
    store.delete_user(&user).await?;
    Ok(vec![format!("deleted user {name}")])
}

/// Deletes an org with all it holds.
pub async fn org_delete(store: &Store, name: &str) -> ApiResult<Vec<String>> {
    let org = org(store, name).await?;
    store.delete_org(&org).await?;
    Ok(vec![format!(
        "deleted organization {name} with its objects, change log, clients and groups"
    )])
}

/// Deletes a client of an org.
pub async fn client_delete(store: &Store, org_name: &str, client: &str) -> ApiResult<Vec<String>> {
    let org = org(store, org_name).await?;
    let row = store
        .client(org.id, client)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no client '{client}' in '{org_name}'")))?;
    store.delete_client(org.id, &row).await?;
    Ok(vec![format!("deleted client {client} of {org_name}")])
}

/// Whose key a rotation replaces.
#[derive(Debug, Clone, Copy)]
pub enum KeyHolder<'a> {
    /// A user.
    User(&'a str),
    /// A client of an org.
    Client {
        /// The org.
        org: &'a str,
        /// The client.
        client: &'a str,
    },
}

/// Replaces the holder's `default` key with a new 2048-bit one (adding it when there is
/// none; other keys stay) and returns the new private key: the old key stops working at once.
pub async fn key_rotate(store: &Store, holder: KeyHolder<'_>) -> ApiResult<String> {
    let owner = match holder {
        KeyHolder::User(name) => KeyOwner::User(user(store, name).await?.id),
        KeyHolder::Client { org: o, client } => {
            let org = org(store, o).await?;
            let row = store
                .client(org.id, client)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no client '{client}' in '{o}'")))?;
            KeyOwner::Client(row.id)
        }
    };
    let (public_key, private) = accounts::key_material(None, 0).await?;
    let private = private.ok_or_else(|| ApiError::Internal("no key was generated".into()))?;
    let key = KeyRow {
        name: "default".into(),
        public_key,
        expires_at: None,
    };
    match store.replace_key(owner, "default", &key).await {
        Ok(()) => {}
        // No key of that name: the rotation adds it (past any limit: it is the operator's).
        Err(StoreError::NotFound) => store.add_key(owner, &key, usize::MAX).await?,
        Err(e) => return Err(e.into()),
    }
    Ok(private)
}

/// Makes a replica org writable by its admins again, for a planned move of the org to this
/// server; the lines say what the operator must do about replication.
pub async fn org_writable(store: &Store, name: &str) -> ApiResult<Vec<String>> {
    let org = org(store, name).await?;
    if !org.replica {
        return Ok(vec![format!("{name} is already writable")]);
    }
    store
        .set_replica(org.id, false, org.sync_user.as_deref())
        .await?;
    Ok(vec![
        format!("{name} is now writable by its admins"),
        format!(
            "warning: stop replicating it first (chef-sync-ctl sync-stop {name} on this replica): chef-syncd would overwrite what is written here with the primary's objects"
        ),
        "warning: replication is not a disaster-recovery tool: what the primary had not sent before it was lost is not here, and nodes and clients were never copied".into(),
    ])
}

/// Makes an org a replica written only by `sync_user` (again).
pub async fn org_replica(store: &Store, name: &str, sync_user: &str) -> ApiResult<Vec<String>> {
    let org = org(store, name).await?;
    user(store, sync_user).await?;
    store.set_replica(org.id, true, Some(sync_user)).await?;
    Ok(vec![format!(
        "{name} is now a replica org written only by {sync_user}"
    )])
}
