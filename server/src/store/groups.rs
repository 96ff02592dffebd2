//! Groups and their members. Members are (kind, name) pairs, kind `user`, `client` or `group`;
//! membership through nested groups counts.

use std::collections::BTreeSet;

use sqlx::Row;

use super::actors::conflict_on_unique;
use super::{Store, StoreError, StoreResult};

/// How deep nested groups are followed (Chef's own nesting is shallow; this stops cycles).
const MAX_NESTING: usize = 8;

/// A group's members by kind, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// User names.
    pub users: Vec<String>,
    /// Client names.
    pub clients: Vec<String>,
    /// Nested group names.
    pub groups: Vec<String>,
}

impl Store {
    /// Adds a user, client or group to a group (idempotent).
    pub async fn add_group_member(
        &self,
        org_id: i64,
        group: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<()> {
        self.actors_changed();
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

    /// Whether an actor is in a group, directly or through nested groups.
    pub async fn in_group(
        &self,
        org_id: i64,
        group: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let mut seen = BTreeSet::new();
        let mut frontier = vec![group.to_owned()];
        for _ in 0..MAX_NESTING {
            let mut next = Vec::new();
            for g in frontier {
                if !seen.insert(g.clone()) {
                    continue;
                }
                let direct = sqlx::query(
                    "SELECT 1 AS one FROM group_members WHERE org_id = $1 AND group_name = $2 AND member_kind = $3 AND member_name = $4",
                )
                .bind(org_id)
                .bind(&g)
                .bind(kind)
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
                if direct.is_some() {
                    return Ok(true);
                }
                next.extend(self.group_members(org_id, &g).await?.groups);
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(false)
    }

    /// A group's direct members.
    pub async fn group_members(&self, org_id: i64, group: &str) -> StoreResult<GroupMembers> {
        let rows = sqlx::query(
            "SELECT member_kind, member_name FROM group_members WHERE org_id = $1 AND group_name = $2 ORDER BY member_kind, member_name",
        )
        .bind(org_id)
        .bind(group)
        .fetch_all(&self.read)
        .await?;
        let mut members = GroupMembers::default();
        for row in rows {
            let kind: String = row.try_get("member_kind")?;
            let name: String = row.try_get("member_name")?;
            match kind.as_str() {
                "user" => members.users.push(name),
                "client" => members.clients.push(name),
                _ => members.groups.push(name),
            }
        }
        Ok(members)
    }

    /// Names of an org's groups, sorted.
    pub async fn group_names(&self, org_id: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM groups WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// Whether a group exists.
    pub async fn group_exists(&self, org_id: i64, name: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM groups WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    /// Creates an empty group.
    pub async fn create_group(&self, org_id: i64, name: &str) -> StoreResult<()> {
        self.actors_changed();
        sqlx::query("INSERT INTO groups (org_id, name) VALUES ($1, $2)")
            .bind(org_id)
            .bind(name)
            .execute(&self.write)
            .await
            .map_err(conflict_on_unique)?;
        Ok(())
    }

    /// Replaces a group's members in one transaction.
    pub async fn set_group_members(
        &self,
        org_id: i64,
        group: &str,
        members: &GroupMembers,
    ) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM group_members WHERE org_id = $1 AND group_name = $2")
            .bind(org_id)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        let all = [
            ("user", &members.users),
            ("client", &members.clients),
            ("group", &members.groups),
        ];
        for (kind, names) in all {
            for name in names.iter().collect::<BTreeSet<_>>() {
                sqlx::query(
                    "INSERT INTO group_members (org_id, group_name, member_kind, member_name) VALUES ($1, $2, $3, $4)",
                )
                .bind(org_id)
                .bind(group)
                .bind(kind)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a group, its members, and its membership in other groups.
    pub async fn delete_group(&self, org_id: i64, name: &str) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query("DELETE FROM groups WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM group_members WHERE org_id = $1 AND (group_name = $2 OR (member_kind = 'group' AND member_name = $2))")
            .bind(org_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
