//! Public keys of users and clients. Every key that has not expired authenticates its owner,
//! which is how rotation works: add the new key, move clients over, delete the old one.

use sqlx::Row;

use super::actors::conflict_on_unique;
use super::{Store, StoreError, StoreResult};

/// Who owns a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Key name (`default` for the one made with the actor).
    pub name: String,
    /// PEM.
    pub public_key: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`, or `None` for "infinity".
    pub expires_at: Option<String>,
}

fn key_row(r: &sqlx::any::AnyRow) -> StoreResult<KeyRow> {
    Ok(KeyRow {
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Store {
    /// All of the owner's keys, sorted by name.
    pub async fn keys(&self, owner: KeyOwner) -> StoreResult<Vec<KeyRow>> {
        let (kind, id) = owner.parts();
        let rows = sqlx::query(
            "SELECT name, public_key, expires_at FROM keys WHERE owner_kind = $1 AND owner_id = $2 ORDER BY name",
        )
        .bind(kind)
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// One key.
    pub async fn key(&self, owner: KeyOwner, name: &str) -> StoreResult<Option<KeyRow>> {
        let (kind, id) = owner.parts();
        let row = sqlx::query(
            "SELECT name, public_key, expires_at FROM keys WHERE owner_kind = $1 AND owner_id = $2 AND name = $3",
        )
        .bind(kind)
        .bind(id)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(key_row).transpose()
    }

    /// Adds a key: `Conflict` if the name is taken, `Refused` if the owner already holds
    /// `most` keys. The count and the insert are one statement, so parallel adds cannot
    /// each see room for one more.
    pub async fn add_key(&self, owner: KeyOwner, key: &KeyRow, most: usize) -> StoreResult<()> {
        self.actors_changed();
        let (kind, id) = owner.parts();
        let done = sqlx::query(
            "INSERT INTO keys (owner_kind, owner_id, name, public_key, expires_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(*) FROM keys WHERE owner_kind = $1 AND owner_id = $2) < $6",
        )
        .bind(kind)
        .bind(id)
        .bind(&key.name)
        .bind(&key.public_key)
        .bind(&key.expires_at)
        .bind(i64::try_from(most).unwrap_or(i64::MAX))
        .execute(&self.write)
        .await
        .map_err(conflict_on_unique)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Refused(format!("more than {most} keys")));
        }
        Ok(())
    }

    /// Replaces key `name` with `key` (which may carry a new name).
    pub async fn replace_key(&self, owner: KeyOwner, name: &str, key: &KeyRow) -> StoreResult<()> {
        self.actors_changed();
        let (kind, id) = owner.parts();
        let done = sqlx::query(
            "UPDATE keys SET name = $4, public_key = $5, expires_at = $6 WHERE owner_kind = $1 AND owner_id = $2 AND name = $3",
        )
        .bind(kind)
        .bind(id)
        .bind(name)
        .bind(&key.name)
        .bind(&key.public_key)
        .bind(&key.expires_at)
        .execute(&self.write)
        .await
        .map_err(conflict_on_unique)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a key.
    pub async fn delete_key(&self, owner: KeyOwner, name: &str) -> StoreResult<()> {
        self.actors_changed();
        let (kind, id) = owner.parts();
        let done =
            sqlx::query("DELETE FROM keys WHERE owner_kind = $1 AND owner_id = $2 AND name = $3")
                .bind(kind)
                .bind(id)
                .bind(name)
                .execute(&self.write)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
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
