//! Nodes: local to each server, never in the change log, indexed for search in the same
//! transaction as the write.

use sqlx::Row;

use super::search_index::terms_of;
use super::{Store, StoreError, StoreResult, WriteMode, now_millis};
use crate::search::IndexKind;

impl Store {
    /// The stored JSON of one node.
    pub async fn node(&self, org_id: i64, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT body FROM nodes WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Names of an org's nodes, sorted.
    pub async fn node_names(&self, org_id: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM nodes WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// `(name, body)` of the named nodes that exist, in the order of `names`.
    pub async fn nodes_named(
        &self,
        org_id: i64,
        names: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let keys: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut found = self.bodies_by_key("nodes", "name", org_id, &keys).await?;
        Ok(names
            .iter()
            .filter_map(|n| found.remove(n).map(|b| (n.clone(), b)))
            .collect())
    }

    /// Nodes stored in every org (the licence endpoint's count).
    pub async fn node_count(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM nodes")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Creates (`Create`: 409 if it exists) or replaces (`Update`: 404 if missing) a node and
    /// its search entries, in one transaction.
    pub async fn write_node(
        &self,
        org_id: i64,
        name: &str,
        body: &str,
        mode: WriteMode,
    ) -> StoreResult<()> {
        // Expand the documents before taking the writer: a node of thousands of ohai leaves
        // takes milliseconds to expand, which would otherwise hold SQLite's single writer.
        let seen = self.node(org_id, name).await?;
        let new_terms = terms_of(&IndexKind::Node, Some(body));
        let mut old_terms = terms_of(&IndexKind::Node, seen.as_deref());
        let mut tx = self.write.begin().await?;
        let existing: Option<String> = sqlx::query(self.dialect.node_for_update_sql())
            .bind(org_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("body"))
            .transpose()?;
        match (&existing, mode) {
            (Some(_), WriteMode::Create) => return Err(StoreError::Conflict),
            (None, WriteMode::Update) => return Err(StoreError::NotFound),
            _ => {}
        }
        if existing.as_deref() == Some(body) {
            return Ok(());
        }
        let written = if existing.is_none() {
            // Two first saves of one node racing: the second waits for the first's commit,
            // writes nothing and answers 409, as if it had come second.
            sqlx::query(
                "INSERT INTO nodes (org_id, name, body, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org_id, name) DO NOTHING",
            )
        } else {
            sqlx::query(
                "UPDATE nodes SET body = $3, updated_at = $4 WHERE org_id = $1 AND name = $2",
            )
        }
        .bind(org_id)
        .bind(name)
        .bind(body)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        if written.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        if existing != seen {
            // Saved by another request in between: diff against what is stored now.
            old_terms = terms_of(&IndexKind::Node, existing.as_deref());
        }
        let learned = self
            .reindex_terms(
                &mut tx,
                org_id,
                &IndexKind::Node,
                name,
                &old_terms,
                Some(&new_terms),
            )
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// Deletes a node and its search entries, returning its last JSON.
    pub async fn delete_node(&self, org_id: i64, name: &str) -> StoreResult<String> {
        let mut tx = self.write.begin().await?;
        let body: String = sqlx::query(self.dialect.node_for_update_sql())
            .bind(org_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get("body")?;
        sqlx::query("DELETE FROM nodes WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let learned = self
            .reindex(&mut tx, org_id, &IndexKind::Node, name, Some(&body), None)
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(body)
    }
}
