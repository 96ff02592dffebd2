//! Users, organizations, clients, group membership and public keys.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, flag};

/// A global user.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// The user's JSON (display_name, email, …) without keys or password.
    pub body: String,
    /// The bootstrap superuser (`pivotal`).
    pub superuser: bool,
}

/// An organization.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Row id.
    pub id: i64,
    /// Short name.
    pub name: String,
    /// Display name.
    pub full_name: String,
    /// 32 hex digits, stable for the org's life (a replica uses it to notice a re-created org).
    pub guid: String,
    /// Writes are refused except from `sync_user`.
    pub replica: bool,
    /// The only actor allowed to write into a replica org.
    pub sync_user: Option<String>,
}

/// A client of one organization.
#[derive(Debug, Clone)]
pub struct ClientRow {
    /// Row id.
    pub id: i64,
    /// Client name.
    pub name: String,
    /// The org's validator client.
    pub validator: bool,
}

/// Who owns a key.
#[derive(Debug, Clone, Copy)]
pub enum KeyOwner {
    /// `users.id`.
    User(i64),
    /// `clients.id`.
    Client(i64),
}

impl KeyOwner {
    fn parts(self) -> (&'static str, i64) {
        match self {
            KeyOwner::User(id) => ("user", id),
            KeyOwner::Client(id) => ("client", id),
        }
    }
}

fn user_row(r: &AnyRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        body: r.try_get("body")?,
        superuser: r.try_get::<i64, _>("superuser")? != 0,
    })
}

fn org_row(r: &AnyRow) -> StoreResult<OrgRow> {
    Ok(OrgRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        full_name: r.try_get("full_name")?,
        guid: r.try_get("guid")?,
        replica: r.try_get::<i64, _>("replica")? != 0,
        sync_user: r.try_get("sync_user")?,
    })
}

/// Unique-constraint violations become `Conflict`, whatever the backend's wording.
fn conflict_on_unique(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Db(e),
    }
}

const ORG_COLUMNS: &str = "id, name, full_name, guid, replica, sync_user";

impl Store {
    /// Creates a user with one key named `default`.
    pub async fn create_user(
        &self,
        username: &str,
        body: &str,
        superuser: bool,
        public_key: &str,
    ) -> StoreResult<UserRow> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO users (username, body, superuser) VALUES ($1, $2, $3) RETURNING id, username, body, superuser",
        )
        .bind(username)
        .bind(body)
        .bind(flag(superuser))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique)?;
        let user = user_row(&row)?;
        sqlx::query("INSERT INTO keys (owner_kind, owner_id, name, public_key, expires_at) VALUES ('user', $1, 'default', $2, NULL)")
            .bind(user.id)
            .bind(public_key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Looks a user up by name.
    pub async fn user(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let row =
            sqlx::query("SELECT id, username, body, superuser FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.read)
                .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// All user names, sorted.
    pub async fn usernames(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT username FROM users ORDER BY username")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("username")?)).collect()
    }

    /// Creates an org with the given guid.
    pub async fn create_org(&self, name: &str, full_name: &str, guid: &str) -> StoreResult<OrgRow> {
        let row = sqlx::query(&format!(
            "INSERT INTO orgs (name, full_name, guid) VALUES ($1, $2, $3) RETURNING {ORG_COLUMNS}"
        ))
        .bind(name)
        .bind(full_name)
        .bind(guid)
        .fetch_one(&self.write)
        .await
        .map_err(conflict_on_unique)?;
        org_row(&row)
    }

    /// Looks an org up by name.
    pub async fn org(&self, name: &str) -> StoreResult<Option<OrgRow>> {
        let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(org_row).transpose()
    }

    /// All org names, sorted.
    pub async fn org_names(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM orgs ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// Marks an org as a replica destination written only by `sync_user`.
    pub async fn set_replica(
        &self,
        org_id: i64,
        replica: bool,
        sync_user: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE orgs SET replica = $2, sync_user = $3 WHERE id = $1")
            .bind(org_id)
            .bind(flag(replica))
            .bind(sync_user)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Associates a user with an org (idempotent).
    pub async fn add_org_user(&self, org_id: i64, user_id: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO org_users (org_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(org_id)
        .bind(user_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Whether a user is associated with an org.
    pub async fn is_org_user(&self, org_id: i64, user_id: i64) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM org_users WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    /// Names of the users associated with an org, sorted.
    pub async fn org_usernames(&self, org_id: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT u.username FROM org_users ou JOIN users u ON u.id = ou.user_id WHERE ou.org_id = $1 ORDER BY u.username",
        )
        .bind(org_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("username")?)).collect()
    }

    /// Adds a user or client to a group (idempotent).
    pub async fn add_group_member(
        &self,
        org_id: i64,
        group: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO group_members (org_id, group_name, member_kind, member_name) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(org_id)
        .bind(group)
        .bind(kind)
        .bind(name)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Whether an actor is in a group.
    pub async fn in_group(
        &self,
        org_id: i64,
        group: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM group_members WHERE org_id = $1 AND group_name = $2 AND member_kind = $3 AND member_name = $4",
        )
        .bind(org_id)
        .bind(group)
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// A group's members as (kind, name), sorted.
    pub async fn group_members(
        &self,
        org_id: i64,
        group: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT member_kind, member_name FROM group_members WHERE org_id = $1 AND group_name = $2 ORDER BY member_kind, member_name",
        )
        .bind(org_id)
        .bind(group)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("member_kind")?, r.try_get("member_name")?)))
            .collect()
    }

    /// Creates a client with one key named `default`.
    pub async fn create_client(
        &self,
        org_id: i64,
        name: &str,
        validator: bool,
        public_key: &str,
    ) -> StoreResult<ClientRow> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO clients (org_id, name, validator) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(org_id)
        .bind(name)
        .bind(flag(validator))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique)?;
        let id: i64 = row.try_get("id")?;
        sqlx::query("INSERT INTO keys (owner_kind, owner_id, name, public_key, expires_at) VALUES ('client', $1, 'default', $2, NULL)")
            .bind(id)
            .bind(public_key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ClientRow {
            id,
            name: name.to_owned(),
            validator,
        })
    }

    /// Looks a client of an org up by name.
    pub async fn client(&self, org_id: i64, name: &str) -> StoreResult<Option<ClientRow>> {
        let row =
            sqlx::query("SELECT id, name, validator FROM clients WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
        row.map(|r| {
            Ok(ClientRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                validator: r.try_get::<i64, _>("validator")? != 0,
            })
        })
        .transpose()
    }

    /// The owner's keys that have not expired at `now` (RFC 3339), as PEM text.
    pub async fn live_keys(&self, owner: KeyOwner, now: &str) -> StoreResult<Vec<String>> {
        let (kind, id) = owner.parts();
        let rows = sqlx::query(
            "SELECT public_key FROM keys WHERE owner_kind = $1 AND owner_id = $2 AND (expires_at IS NULL OR expires_at > $3) ORDER BY name",
        )
        .bind(kind)
        .bind(id)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("public_key")?)).collect()
    }

    /// Replaces (or creates) a named key.
    pub async fn put_key(
        &self,
        owner: KeyOwner,
        name: &str,
        public_key: &str,
        expires_at: Option<&str>,
    ) -> StoreResult<()> {
        let (kind, id) = owner.parts();
        sqlx::query(
            "INSERT INTO keys (owner_kind, owner_id, name, public_key, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (owner_kind, owner_id, name) DO UPDATE SET public_key = excluded.public_key, expires_at = excluded.expires_at",
        )
        .bind(kind)
        .bind(id)
        .bind(name)
        .bind(public_key)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_parts() {
        assert_eq!(super::KeyOwner::User(3).parts(), ("user", 3));
        assert_eq!(super::KeyOwner::Client(4).parts(), ("client", 4));
    }
}
