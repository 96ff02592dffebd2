//! What every signed request needs, in as few queries as possible: the actor with its live
//! keys (one query), and the actor's standing in the org of the path (one query). Each query
//! costs a round trip (a thread hop on SQLite, the network on PostgreSQL), and these run on
//! every request.

use std::time::Instant;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::actors::{ClientRow, OrgRow, UserRow};
use super::{Store, StoreResult};

/// A client with the org it belongs to.
#[derive(Debug, Clone)]
pub struct OrgClient {
    /// The org's id.
    pub org_id: i64,
    /// The client.
    pub client: ClientRow,
}

/// An actor's place in an org.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The org.
    pub org: OrgRow,
    /// For users: associated with the org.
    pub member: bool,
    /// Directly in `admins`.
    pub direct_admin: bool,
    /// `admins` contains other groups (membership must then be resolved through them).
    pub admins_nest_groups: bool,
    /// Directly in `users`.
    pub direct_user: bool,
    /// `users` contains other groups.
    pub users_nest_groups: bool,
}

fn keys_of(rows: &[AnyRow]) -> StoreResult<Vec<String>> {
    let mut keys = Vec::new();
    for r in rows {
        if let Some(k) = r.try_get::<Option<String>, _>("public_key")? {
            keys.push(k);
        }
    }
    Ok(keys)
}

impl Store {
    /// A user and its keys that have not expired at `now`.
    pub async fn user_with_keys(
        &self,
        name: &str,
        now: &str,
    ) -> StoreResult<Option<(UserRow, Vec<String>)>> {
        if let Some(hit) = self.auth.users.get(&name.to_owned()) {
            return Ok(hit);
        }
        let read_at = Instant::now();
        let found = self.user_with_keys_uncached(name, now).await?;
        self.auth.users.put(name.to_owned(), found.clone(), read_at);
        Ok(found)
    }

    async fn user_with_keys_uncached(
        &self,
        name: &str,
        now: &str,
    ) -> StoreResult<Option<(UserRow, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.body, u.superuser, k.public_key FROM users u \
             LEFT JOIN keys k ON k.owner_kind = 'user' AND k.owner_id = u.id \
             AND (k.expires_at IS NULL OR k.expires_at > $2) \
             WHERE u.username = $1 ORDER BY k.name",
        )
        .bind(name)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let user = UserRow {
            id: first.try_get("id")?,
            username: first.try_get("username")?,
            body: first.try_get("body")?,
            superuser: first.try_get::<i64, _>("superuser")? != 0,
        };
        Ok(Some((user, keys_of(&rows)?)))
    }

    /// A client of the org named `org` and its keys that have not expired at `now`.
    pub async fn client_with_keys(
        &self,
        org: &str,
        name: &str,
        now: &str,
    ) -> StoreResult<Option<(OrgClient, Vec<String>)>> {
        let key = (org.to_owned(), name.to_owned());
        if let Some(hit) = self.auth.clients.get(&key) {
            return Ok(hit);
        }
        let read_at = Instant::now();
        let found = self.client_with_keys_uncached(org, name, now).await?;
        self.auth.clients.put(key, found.clone(), read_at);
        Ok(found)
    }

    async fn client_with_keys_uncached(
        &self,
        org: &str,
        name: &str,
        now: &str,
    ) -> StoreResult<Option<(OrgClient, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.name, c.validator, c.org_id, k.public_key FROM orgs o \
             JOIN clients c ON c.org_id = o.id \
             LEFT JOIN keys k ON k.owner_kind = 'client' AND k.owner_id = c.id \
             AND (k.expires_at IS NULL OR k.expires_at > $3) \
             WHERE o.name = $1 AND c.name = $2 ORDER BY k.name",
        )
        .bind(org)
        .bind(name)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let client = OrgClient {
            org_id: first.try_get("org_id")?,
            client: ClientRow {
                id: first.try_get("id")?,
                name: first.try_get("name")?,
                validator: first.try_get::<i64, _>("validator")? != 0,
            },
        };
        Ok(Some((client, keys_of(&rows)?)))
    }

    /// The org named `org` and the actor's standing in it (`user_id` for users, `None` for
    /// clients).
    pub async fn standing(
        &self,
        org: &str,
        kind: &str,
        actor: &str,
        user_id: Option<i64>,
    ) -> StoreResult<Option<Standing>> {
        let key = (
            org.to_owned(),
            kind.to_owned(),
            actor.to_owned(),
            user_id.unwrap_or(-1),
        );
        if let Some(hit) = self.auth.standings.get(&key) {
            return Ok(hit);
        }
        let read_at = Instant::now();
        let found = self.standing_uncached(org, kind, actor, user_id).await?;
        self.auth.standings.put(key, found.clone(), read_at);
        Ok(found)
    }

    async fn standing_uncached(
        &self,
        org: &str,
        kind: &str,
        actor: &str,
        user_id: Option<i64>,
    ) -> StoreResult<Option<Standing>> {
        let row = sqlx::query(
            "SELECT o.id, o.name, o.full_name, o.guid, o.replica, o.sync_user, \
             (SELECT COUNT(*) FROM org_users ou WHERE ou.org_id = o.id AND ou.user_id = $2) AS member, \
             (SELECT COUNT(*) FROM group_members g WHERE g.org_id = o.id AND g.group_name = 'admins' \
              AND g.member_kind = $3 AND g.member_name = $4) AS admin, \
             (SELECT COUNT(*) FROM group_members g WHERE g.org_id = o.id AND g.group_name = 'admins' \
              AND g.member_kind = 'group') AS nested, \
             (SELECT COUNT(*) FROM group_members g WHERE g.org_id = o.id AND g.group_name = 'users' \
              AND g.member_kind = $3 AND g.member_name = $4) AS in_users, \
             (SELECT COUNT(*) FROM group_members g WHERE g.org_id = o.id AND g.group_name = 'users' \
              AND g.member_kind = 'group') AS users_nested \
             FROM orgs o WHERE o.name = $1",
        )
        .bind(org)
        .bind(user_id.unwrap_or(-1))
        .bind(kind)
        .bind(actor)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Standing {
            org: OrgRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                full_name: r.try_get("full_name")?,
                guid: r.try_get("guid")?,
                replica: r.try_get::<i64, _>("replica")? != 0,
                sync_user: r.try_get("sync_user")?,
            },
            member: r.try_get::<i64, _>("member")? > 0,
            direct_admin: r.try_get::<i64, _>("admin")? > 0,
            admins_nest_groups: r.try_get::<i64, _>("nested")? > 0,
            direct_user: r.try_get::<i64, _>("in_users")? > 0,
            users_nest_groups: r.try_get::<i64, _>("users_nested")? > 0,
        }))
    }
}
