//! Creating users, orgs and memberships: shared by the HTTP API and the
//! `user-create` / `org-create` / `org-user-add` commands.

use chef_sync_shared::path::{NameKind, validate_name};
use chef_sync_shared::{PrivateKey, PublicKey};

use crate::error::{ApiError, ApiResult};
use crate::store::{OrgRow, Store, StoreError, UserRow};

/// The groups every org has.
pub const GROUPS: [&str; 3] = ["admins", "users", "clients"];

/// Generates a 2048-bit key off the async runtime (it takes tens of milliseconds).
pub async fn generate_key() -> ApiResult<PrivateKey> {
    tokio::task::spawn_blocking(|| PrivateKey::generate(2048))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn public_pem(key: &PrivateKey) -> ApiResult<String> {
    key.public_key()
        .to_pem()
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn private_pem(key: &PrivateKey) -> ApiResult<String> {
    key.to_pkcs1_pem()
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Creates a user. With `public_key` the given key is stored; otherwise a key is generated
/// and its private half returned.
pub async fn create_user(
    store: &Store,
    username: &str,
    body: &serde_json::Value,
    superuser: bool,
    public_key: Option<&str>,
) -> ApiResult<(UserRow, Option<String>)> {
    validate_name(NameKind::User, username)?;
    let (public, private) = match public_key {
        Some(pem) => {
            PublicKey::from_pem(pem)
                .map_err(|e| ApiError::BadRequest(format!("invalid public_key: {e}")))?;
            (pem.to_owned(), None)
        }
        None => {
            let key = generate_key().await?;
            (public_pem(&key)?, Some(private_pem(&key)?))
        }
    };
    let user = store
        .create_user(username, &body.to_string(), superuser, &public)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict(format!("User '{username}' already exists")),
            other => other.into(),
        })?;
    Ok((user, private))
}

/// Creates an org with its validator client (`ORG-validator`); returns the validator's
/// private key.
pub async fn create_org(store: &Store, name: &str, full_name: &str) -> ApiResult<(OrgRow, String)> {
    validate_name(NameKind::Organization, name)?;
    if full_name.trim().is_empty() || full_name.len() > 1023 {
        return Err(ApiError::BadRequest(
            "full_name must be 1 to 1023 characters".into(),
        ));
    }
    let guid: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let org = store
        .create_org(name, full_name, &guid)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict(format!("Organization '{name}' already exists"))
            }
            other => other.into(),
        })?;
    let key = generate_key().await?;
    let client = format!("{name}-validator");
    store
        .create_client(org.id, &client, true, &public_pem(&key)?)
        .await?;
    Ok((org, private_pem(&key)?))
}

/// Associates a user with an org (and its `users` group); with `admin` also with `admins`.
pub async fn associate(store: &Store, org: &OrgRow, user: &UserRow, admin: bool) -> ApiResult<()> {
    store.add_org_user(org.id, user.id).await?;
    store
        .add_group_member(org.id, "users", "user", &user.username)
        .await?;
    if admin {
        store
            .add_group_member(org.id, "admins", "user", &user.username)
            .await?;
    }
    Ok(())
}
