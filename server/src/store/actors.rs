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
pub(super) fn conflict_on_unique(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Db(e),
    }
}

const ORG_COLUMNS: &str = "id, name, full_name, guid, replica, sync_user";

/// A client's org, name and validator flag, read inside the transaction that changes it.
async fn client_for_update(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    client_id: i64,
) -> StoreResult<(i64, String, bool)> {
    let row = sqlx::query("SELECT org_id, name, validator FROM clients WHERE id = $1")
        .bind(client_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    let validator = row.try_get::<i64, _>("validator")? != 0;
    Ok((row.try_get("org_id")?, row.try_get("name")?, validator))
}

impl Store {
    /// Creates a user with one key named `default`.
    pub async fn create_user(
        &self,
        username: &str,
        body: &str,
        superuser: bool,
        public_key: &str,
    ) -> StoreResult<UserRow> {
        self.actors_changed();
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

    /// Replaces a user's JSON and, when `username` differs, renames it: its group memberships
    /// and any org's `sync_user` (both kept by name) follow in the same transaction; its keys
    /// follow by id. `Conflict` when the new name is taken.
    pub async fn update_user(&self, user: &UserRow, username: &str, body: &str) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE users SET username = $1, body = $2 WHERE id = $3")
            .bind(username)
            .bind(body)
            .bind(user.id)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique)?;
        if username != user.username {
            sqlx::query(
                "UPDATE group_members SET member_name = $1 WHERE member_kind = 'user' AND member_name = $2",
            )
            .bind(username)
            .bind(&user.username)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE orgs SET sync_user = $1 WHERE sync_user = $2")
                .bind(username)
                .bind(&user.username)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether any org has a client of this name (a user of the same name would shadow it:
    /// authentication looks users up first).
    pub async fn client_name_taken(&self, name: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM clients WHERE name = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    /// The orgs whose `sync_user` this user is.
    pub async fn orgs_synced_by(&self, username: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM orgs WHERE sync_user = $1 ORDER BY name")
            .bind(username)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("name")?))
            .collect()
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
    /// Creates an org with the given guid and its built-in groups.
    pub async fn create_org(
        &self,
        name: &str,
        full_name: &str,
        guid: &str,
        groups: &[&str],
    ) -> StoreResult<OrgRow> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO orgs (name, full_name, guid) VALUES ($1, $2, $3) RETURNING {ORG_COLUMNS}"
        ))
        .bind(name)
        .bind(full_name)
        .bind(guid)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on_unique)?;
        let org = org_row(&row)?;
        for group in groups {
            sqlx::query("INSERT INTO groups (org_id, name) VALUES ($1, $2)")
                .bind(org.id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(org)
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

    /// Changes an org's display name.
    pub async fn set_full_name(&self, org_id: i64, full_name: &str) -> StoreResult<()> {
        self.actors_changed();
        sqlx::query("UPDATE orgs SET full_name = $2 WHERE id = $1")
            .bind(org_id)
            .bind(full_name)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Marks an org as a replica destination written only by `sync_user`.
    pub async fn set_replica(
        &self,
        org_id: i64,
        replica: bool,
        sync_user: Option<&str>,
    ) -> StoreResult<()> {
        self.actors_changed();
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
        self.actors_changed();
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

    /// Creates a client with one key named `default`.
    pub async fn create_client(
        &self,
        org_id: i64,
        name: &str,
        validator: bool,
        public_key: &str,
    ) -> StoreResult<ClientRow> {
        self.actors_changed();
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
        let learned = self
            .reindex_client(&mut tx, org_id, name, None, Some(validator))
            .await?;
        tx.commit().await?;
        self.learn(learned);
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

    /// Names of an org's clients, sorted.
    pub async fn client_names(&self, org_id: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM clients WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// Renames a client: its keys follow by id; its group memberships (kept by name) and its
    /// search document move in the same transaction. `Conflict` when the name is taken.
    pub async fn rename_client(&self, client_id: i64, new_name: &str) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        let (org_id, old, validator) = client_for_update(&mut tx, client_id).await?;
        sqlx::query("UPDATE clients SET name = $2 WHERE id = $1")
            .bind(client_id)
            .bind(new_name)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique)?;
        sqlx::query(
            "UPDATE group_members SET member_name = $3 WHERE org_id = $1 AND member_kind = 'client' AND member_name = $2",
        )
        .bind(org_id)
        .bind(&old)
        .bind(new_name)
        .execute(&mut *tx)
        .await?;
        let mut learned = self
            .reindex_client(&mut tx, org_id, &old, Some(validator), None)
            .await?;
        learned.extend(
            self.reindex_client(&mut tx, org_id, new_name, None, Some(validator))
                .await?,
        );
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// Sets a client's validator flag.
    pub async fn set_client_validator(&self, client_id: i64, validator: bool) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        let (org_id, name, before) = client_for_update(&mut tx, client_id).await?;
        sqlx::query("UPDATE clients SET validator = $2 WHERE id = $1")
            .bind(client_id)
            .bind(flag(validator))
            .execute(&mut *tx)
            .await?;
        let learned = self
            .reindex_client(&mut tx, org_id, &name, Some(before), Some(validator))
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// Deletes a client with its keys and group memberships.
    pub async fn delete_client(&self, org_id: i64, client: &ClientRow) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM keys WHERE owner_kind = 'client' AND owner_id = $1")
            .bind(client.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM group_members WHERE org_id = $1 AND member_kind = 'client' AND member_name = $2")
            .bind(org_id)
            .bind(&client.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(client.id)
            .execute(&mut *tx)
            .await?;
        let learned = self
            .reindex_client(&mut tx, org_id, &client.name, Some(client.validator), None)
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// Removes a user from an org and from the org's groups.
    pub async fn remove_org_user(&self, org_id: i64, user: &UserRow) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query("DELETE FROM org_users WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM group_members WHERE org_id = $1 AND member_kind = 'user' AND member_name = $2")
            .bind(org_id)
            .bind(&user.username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
