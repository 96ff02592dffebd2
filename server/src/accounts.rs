//! Creating users, orgs and memberships: shared by the HTTP API and the
//! `user-create` / `org-create` / `org-user-add` commands.

use chef_sync_shared::path::{NameKind, validate_name};
use chef_sync_shared::{PrivateKey, PublicKey};

use crate::error::{ApiError, ApiResult};
use crate::store::{ClientRow, OrgRow, Store, StoreError, UserRow};

/// The groups every org has (Chef's defaults).
pub const GROUPS: [&str; 5] = [
    "admins",
    "billing-admins",
    "users",
    "clients",
    "public_key_read_access",
];

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

/// The public key to store and, when it was generated here, the private key to hand back once.
/// A submitted key must be a public key of at least `min_bits` bits (`min_key_bits`).
pub async fn key_material(
    public_key: Option<&str>,
    min_bits: usize,
) -> ApiResult<(String, Option<String>)> {
    match public_key {
        Some(pem) => {
            PublicKey::from_submitted_pem(pem, min_bits)
                .map_err(|e| ApiError::BadRequest(format!("Invalid public key: {e}")))?;
            Ok((pem.to_owned(), None))
        }
        None => {
            let key = generate_key().await?;
            Ok((public_pem(&key)?, Some(private_pem(&key)?)))
        }
    }
}

/// Chef's `expiration_date`: `infinity` (or absent) → `None`, else `YYYY-MM-DDTHH:MM:SSZ`.
pub fn expiration(value: Option<&serde_json::Value>) -> ApiResult<Option<String>> {
    let bad = || {
        ApiError::BadRequest(
            "Invalid date for expiration_date: use YYYY-MM-DDTHH:MM:SSZ or infinity".into(),
        )
    };
    match value {
        None => Ok(None),
        Some(serde_json::Value::String(s)) if s == "infinity" => Ok(None),
        Some(serde_json::Value::String(s)) => {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").map_err(|_| bad())?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(bad()),
    }
}

/// Creates a client in `org` (and its `clients` group); returns the generated private key
/// when no public key was given. A given key must have at least `min_bits` bits.
pub async fn create_client(
    store: &Store,
    org: &OrgRow,
    name: &str,
    validator: bool,
    public_key: Option<&str>,
    min_bits: usize,
) -> ApiResult<(ClientRow, Option<String>)> {
    validate_name(NameKind::Client, name)?;
    let (public, private) = key_material(public_key, min_bits).await?;
    let client = store
        .create_client(org.id, name, validator, &public)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict("Client already exists".into()),
            other => other.into(),
        })?;
    store
        .add_group_member(org.id, "clients", "client", name)
        .await?;
    Ok((client, private))
}

/// Creates a user. With `public_key` the given key (of at least `min_bits` bits) is stored;
/// otherwise a key is generated and its private half returned.
pub async fn create_user(
    store: &Store,
    username: &str,
    body: &serde_json::Value,
    superuser: bool,
    public_key: Option<&str>,
    min_bits: usize,
) -> ApiResult<(UserRow, Option<String>)> {
    validate_name(NameKind::User, username)?;
    let (public, private) = key_material(public_key, min_bits).await?;
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
        .create_org(name, full_name, &guid, &GROUPS)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict(format!("Organization '{name}' already exists"))
            }
            other => other.into(),
        })?;
    // Who may read public keys: every org user and client, as in Chef.
    for group in ["users", "clients"] {
        store
            .add_group_member(org.id, "public_key_read_access", "group", group)
            .await?;
    }
    // A generated key: the minimum does not come into it.
    let validator = format!("{name}-validator");
    let (_, private) = create_client(store, &org, &validator, true, None, 0).await?;
    let private = private.ok_or_else(|| ApiError::Internal("no validator key generated".into()))?;
    Ok((org, private))
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
