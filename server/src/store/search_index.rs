//! The search index in the store: one row per (field, value, document), written in the same
//! transaction as the object it indexes, read by b-tree range reads on SQLite and PostgreSQL
//! alike. A search reads the entries its terms match and the names of the matching
//! documents; its cost follows the matches, not the size of the index, and every query is
//! bounded by [`MAX_ENTRIES_READ`].
//!
//! Updates write only the difference between the old and the new document's terms, so a
//! node saving a few changed ohai values writes a few rows, not thousands.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Mutex;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query as SqlQuery;
use sqlx::{Row, Transaction};

use super::{MAX_BINDS, Store, StoreError, StoreResult, numbered};
use crate::search::{FieldName, IndexKind, Query, Term, Terms, ValueMatch};

/// Most index entries (and field names, for a wildcard field) one query may read; a query
/// that needs more is refused as too broad rather than allowed to read without limit.
pub const MAX_ENTRIES_READ: usize = 2_000_000;
/// Rows per multi-row statement (up to 4 binds each).
const CHUNK: usize = MAX_BINDS / 4;
/// Ids per `IN (…)` list.
const ID_CHUNK: usize = 500;

/// Index and field ids seen committed; both are never renumbered, so caching them is safe
/// across processes.
#[derive(Debug, Default)]
pub(super) struct SearchIds {
    indexes: Mutex<HashMap<(i64, IndexKind), i64>>,
    fields: Mutex<HashMap<(String, String), i64>>,
}

/// Ids learned inside a transaction, remembered once it has committed.
#[derive(Debug, Default)]
#[must_use = "remember what was learned with Store::learn after the commit"]
pub(super) struct Learned {
    indexes: Vec<((i64, IndexKind), i64)>,
    fields: Vec<((String, String), i64)>,
}

impl Learned {
    /// Adds what another write in the same transaction learned.
    pub(super) fn extend(&mut self, other: Learned) {
        self.indexes.extend(other.indexes);
        self.fields.extend(other.fields);
    }
}

/// Why a search was refused by the store.
fn too_broad() -> StoreError {
    StoreError::Refused(format!(
        "the query reads more than {MAX_ENTRIES_READ} index entries; narrow it (a wildcard \
         that starts with text, fewer fields)"
    ))
}

struct Budget {
    left: usize,
}

impl Budget {
    fn spend(&mut self, n: usize) -> StoreResult<()> {
        self.left = self.left.checked_sub(n).ok_or_else(too_broad)?;
        Ok(())
    }

    /// Spends one entry read from a stream, and every [`YIELD_EVERY`] entries lets the other
    /// tasks of this worker run: rows already buffered by the driver never make the stream
    /// wait, so a long scan would otherwise hold the worker.
    async fn spend_one(&mut self) -> StoreResult<()> {
        self.spend(1)?;
        if self.left.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}

/// Entries read between two yields to the scheduler.
const YIELD_EVERY: usize = 256;

/// The terms of a stored body in `kind`'s index (none for no body). A stored body this server
/// wrote is JSON; anything else indexes as nothing.
pub(super) fn terms_of(kind: &IndexKind, body: Option<&str>) -> Terms {
    body.and_then(|b| serde_json::from_str::<Value>(b).ok())
        .map(|v| kind.terms(&v))
        .unwrap_or_default()
}

impl Store {
    /// Records ids learned by a committed transaction.
    pub(super) fn learn(&self, learned: Learned) {
        if let Ok(mut map) = self.search.indexes.lock() {
            map.extend(learned.indexes);
        }
        if let Ok(mut map) = self.search.fields.lock() {
            map.extend(learned.fields);
        }
    }

    /// Brings the index in step with one document's change, inside the transaction that
    /// writes it: `old` is the stored body before (None: not stored), `new` after (None:
    /// deleted).
    pub(super) async fn reindex(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        kind: &IndexKind,
        name: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> StoreResult<Learned> {
        let old_terms = terms_of(kind, old);
        let new_terms = new.map(|body| terms_of(kind, Some(body)));
        self.reindex_terms(tx, org_id, kind, name, &old_terms, new_terms.as_ref())
            .await
    }

    /// [`Store::reindex`] with the terms already computed (outside the transaction, so a
    /// large document's expansion does not hold SQLite's single writer).
    pub(super) async fn reindex_terms(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        kind: &IndexKind,
        name: &str,
        old_terms: &Terms,
        new_terms: Option<&Terms>,
    ) -> StoreResult<Learned> {
        let mut learned = Learned::default();
        let index_id = self.index_id_in(tx, org_id, kind, &mut learned).await?;
        let Some(new_terms) = new_terms else {
            let doc = sqlx::query("SELECT id FROM search_docs WHERE index_id = $1 AND name = $2")
                .bind(index_id)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(doc) = doc {
                let doc_id: i64 = doc.try_get("id")?;
                let removed: Vec<&Term> = old_terms.iter().collect();
                let ids = self.field_ids_in(tx, &removed, &mut learned).await?;
                delete_terms(tx, index_id, doc_id, &removed, &ids).await?;
                sqlx::query("DELETE FROM search_docs WHERE id = $1")
                    .bind(doc_id)
                    .execute(&mut **tx)
                    .await?;
            }
            return Ok(learned);
        };
        // A new document's row comes back from its insert; only a document indexed before
        // costs a second statement.
        let inserted = sqlx::query(
            "INSERT INTO search_docs (index_id, name) VALUES ($1, $2) \
             ON CONFLICT (index_id, name) DO NOTHING RETURNING id",
        )
        .bind(index_id)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let doc_id: i64 = match inserted {
            Some(row) => row.try_get("id")?,
            None => sqlx::query("SELECT id FROM search_docs WHERE index_id = $1 AND name = $2")
                .bind(index_id)
                .bind(name)
                .fetch_one(&mut **tx)
                .await?
                .try_get("id")?,
        };
        let removed: Vec<&Term> = old_terms.difference(new_terms).collect();
        let added: Vec<&Term> = new_terms.difference(old_terms).collect();
        let touched: Vec<&Term> = removed.iter().chain(added.iter()).copied().collect();
        let ids = self.field_ids_in(tx, &touched, &mut learned).await?;
        delete_terms(tx, index_id, doc_id, &removed, &ids).await?;
        let rows: Vec<(i64, i64, &Term)> = added.iter().map(|t| (index_id, doc_id, *t)).collect();
        insert_terms(tx, &rows, &ids).await?;
        Ok(learned)
    }

    /// Brings the index in step with many documents' writes at once (a bulk write's held
    /// writes): `changes` holds each document's body before the first write and after the
    /// last. Fields, document rows and new entries are written by multi-row statements
    /// across the documents; only an updated document's removed entries cost a statement of
    /// their own.
    pub(super) async fn reindex_many(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        changes: Vec<IndexChange>,
    ) -> StoreResult<Learned> {
        let mut learned = Learned::default();
        let mut docs = Vec::with_capacity(changes.len());
        // A new bag's items all meet its index before the commit caches its id.
        let mut index_ids: HashMap<IndexKind, i64> = HashMap::new();
        for change in changes {
            let index_id = match index_ids.get(&change.kind) {
                Some(&id) => id,
                None => {
                    let id = self
                        .index_id_in(tx, org_id, &change.kind, &mut learned)
                        .await?;
                    index_ids.insert(change.kind.clone(), id);
                    id
                }
            };
            let old = terms_of(&change.kind, change.old.as_deref());
            let new = terms_of(&change.kind, Some(&change.new));
            docs.push((index_id, change.name, old, new));
        }
        let touched: Vec<&Term> = docs
            .iter()
            .flat_map(|(_, _, old, new)| old.difference(new).chain(new.difference(old)))
            .collect();
        let ids = self.field_ids_in(tx, &touched, &mut learned).await?;
        let keys: Vec<(i64, &str)> = docs.iter().map(|(i, n, _, _)| (*i, n.as_str())).collect();
        let doc_ids = doc_ids_in(tx, &keys).await?;
        let mut added: Vec<(i64, i64, &Term)> = Vec::new();
        for (index_id, name, old, new) in &docs {
            let doc_id = *doc_ids.get(&(*index_id, name.clone())).ok_or_else(|| {
                StoreError::Refused(format!("search document '{name}' has no id"))
            })?;
            let removed: Vec<&Term> = old.difference(new).collect();
            delete_terms(tx, *index_id, doc_id, &removed, &ids).await?;
            added.extend(new.difference(old).map(|t| (*index_id, doc_id, t)));
        }
        insert_terms(tx, &added, &ids).await?;
        Ok(learned)
    }

    async fn index_id_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        kind: &IndexKind,
        learned: &mut Learned,
    ) -> StoreResult<i64> {
        let key = (org_id, kind.clone());
        if let Some(id) = self.cached_index(&key) {
            return Ok(id);
        }
        let (kind_name, bag) = kind.columns();
        sqlx::query(
            "INSERT INTO search_indexes (org_id, kind, bag) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, kind, bag) DO NOTHING",
        )
        .bind(org_id)
        .bind(kind_name)
        .bind(bag)
        .execute(&mut **tx)
        .await?;
        let id: i64 = sqlx::query(
            "SELECT id FROM search_indexes WHERE org_id = $1 AND kind = $2 AND bag = $3",
        )
        .bind(org_id)
        .bind(kind_name)
        .bind(bag)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        learned.indexes.push((key, id));
        Ok(id)
    }

    fn cached_index(&self, key: &(i64, IndexKind)) -> Option<i64> {
        self.search.indexes.lock().ok()?.get(key).copied()
    }

    /// Field ids of `terms`, creating the fields not seen before (in sorted order, so two
    /// PostgreSQL writers adding the same new fields never wait on each other in a cycle).
    async fn field_ids_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        terms: &[&Term],
        learned: &mut Learned,
    ) -> StoreResult<HashMap<(String, String), i64>> {
        let mut ids = HashMap::new();
        let mut missing: Vec<(String, String)> = Vec::new();
        {
            let cache = self.search.fields.lock().ok();
            for t in terms {
                let key = (t.path.clone(), t.leaf.clone());
                if ids.contains_key(&key) {
                    continue;
                }
                match cache.as_ref().and_then(|c| c.get(&key)) {
                    Some(&id) => {
                        ids.insert(key, id);
                    }
                    None => missing.push(key),
                }
            }
        }
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(CHUNK) {
            for row in ensure_pairs(tx, "search_fields", ("path", "leaf"), chunk).await? {
                let key: (String, String) = (row.try_get("path")?, row.try_get("leaf")?);
                let id: i64 = row.try_get("id")?;
                learned.fields.push((key.clone(), id));
                ids.insert(key, id);
            }
        }
        Ok(ids)
    }

    /// Indexes every stored object and client that has no index entry yet: documents stored
    /// before the index existed, at the first start of this release. Returns how many.
    pub async fn index_unindexed(&self) -> StoreResult<usize> {
        let mut done = 0;
        loop {
            let rows = sqlx::query(
                "SELECT o.org_id, o.kind, o.parent, o.name FROM objects o \
                 WHERE o.kind IN ('role', 'environment', 'data_bag_item') AND NOT EXISTS ( \
                   SELECT 1 FROM search_indexes i JOIN search_docs d ON d.index_id = i.id \
                   WHERE i.org_id = o.org_id \
                   AND i.kind = (CASE o.kind WHEN 'data_bag_item' THEN 'data_bag' ELSE o.kind END) \
                   AND i.bag = (CASE o.kind WHEN 'data_bag_item' THEN o.parent ELSE '' END) \
                   AND d.name = o.name) \
                 LIMIT 200",
            )
            .fetch_all(&self.write)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let org_id: i64 = row.try_get("org_id")?;
                let kind: String = row.try_get("kind")?;
                let parent: Option<String> = row.try_get("parent")?;
                let name: String = row.try_get("name")?;
                let (index, path) = match (kind.as_str(), parent) {
                    ("role", _) => (IndexKind::Role, format!("/roles/{name}")),
                    ("environment", _) => (IndexKind::Environment, format!("/environments/{name}")),
                    (_, Some(bag)) => (
                        IndexKind::DataBag(bag.clone()),
                        format!("/data/{bag}/{name}"),
                    ),
                    _ => continue,
                };
                self.index_one(org_id, &index, &name, &path).await?;
                done += 1;
            }
        }
        loop {
            let rows = sqlx::query(
                "SELECT c.org_id, c.name FROM clients c WHERE NOT EXISTS ( \
                   SELECT 1 FROM search_indexes i JOIN search_docs d ON d.index_id = i.id \
                   WHERE i.org_id = c.org_id AND i.kind = 'client' AND d.name = c.name) \
                 LIMIT 200",
            )
            .fetch_all(&self.write)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let org_id: i64 = row.try_get("org_id")?;
                let name: String = row.try_get("name")?;
                self.index_client(org_id, &name).await?;
                done += 1;
            }
        }
        Ok(done)
    }

    /// Indexes one stored object as it is now, under its org's lock (a write racing this one
    /// waits, then diffs against what this wrote).
    async fn index_one(
        &self,
        org_id: i64,
        index: &IndexKind,
        name: &str,
        path: &str,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        if self.lock_org(&mut tx, org_id).await.is_err() {
            return Ok(());
        }
        let body: Option<String> =
            sqlx::query("SELECT body FROM objects WHERE org_id = $1 AND path = $2")
                .bind(org_id)
                .bind(path)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("body"))
                .transpose()?;
        let Some(body) = body else {
            return Ok(());
        };
        let learned = self
            .reindex(&mut tx, org_id, index, name, None, Some(&body))
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// The index of `kind` in an org, if anything was ever indexed there.
    pub async fn search_index(&self, org_id: i64, kind: &IndexKind) -> StoreResult<Option<i64>> {
        let key = (org_id, kind.clone());
        if let Some(id) = self.cached_index(&key) {
            return Ok(Some(id));
        }
        let (kind_name, bag) = kind.columns();
        let row = sqlx::query(
            "SELECT id FROM search_indexes WHERE org_id = $1 AND kind = $2 AND bag = $3",
        )
        .bind(org_id)
        .bind(kind_name)
        .bind(bag)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.try_get("id")?;
        if let Ok(mut map) = self.search.indexes.lock() {
            map.insert(key, id);
        }
        Ok(Some(id))
    }

    /// The names of the documents of index `index_id` that match, sorted (byte order).
    pub async fn search_names(&self, index_id: i64, query: &Query) -> StoreResult<Vec<String>> {
        let mut budget = Budget {
            left: MAX_ENTRIES_READ,
        };
        let ids = self.eval(index_id, query, &mut budget).await?;
        let mut names = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            // The ids come from this index's own entries, so the primary key alone finds
            // them; with `index_id` in the condition too, PostgreSQL's generic plan for the
            // prepared statement read every document of the index through the (index, name)
            // key and tested the IN list on each.
            let sql = format!(
                "SELECT name FROM search_docs WHERE id IN ({})",
                numbered(chunk.len(), 1)
            );
            let params: Vec<rusqlite::types::Value> = chunk.iter().map(|id| (*id).into()).collect();
            let sql_inline = sql.clone();
            if let Some(found) = self
                .read_inline(move |r| r.texts(&sql_inline, params))
                .await
            {
                names.extend(found);
                continue;
            }
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                names.push(row.try_get::<String, _>("name")?);
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Sorted, distinct ids of the matching documents.
    fn eval<'a>(
        &'a self,
        index_id: i64,
        query: &'a Query,
        budget: &'a mut Budget,
    ) -> Pin<Box<dyn Future<Output = StoreResult<Vec<i64>>> + Send + 'a>> {
        Box::pin(async move {
            match query {
                Query::All => self.all_docs(index_id, budget).await,
                Query::Term { field, value } => {
                    let fields = self.field_ids(field, budget).await?;
                    self.term_docs(index_id, &fields, value, budget).await
                }
                Query::Or(any) => {
                    let mut out = Vec::new();
                    for q in any {
                        let ids = self.eval(index_id, q, budget).await?;
                        out = union(&out, &ids);
                    }
                    Ok(out)
                }
                Query::And(all) => {
                    // Intersect the positive parts first; then take the negated ones away.
                    let mut out: Option<Vec<i64>> = None;
                    for q in all.iter().filter(|q| !matches!(q, Query::Not(_))) {
                        let ids = self.eval(index_id, q, budget).await?;
                        out = Some(match out {
                            None => ids,
                            Some(acc) => intersect(&acc, &ids),
                        });
                        if out.as_ref().is_some_and(Vec::is_empty) {
                            return Ok(Vec::new());
                        }
                    }
                    let mut out = match out {
                        Some(ids) => ids,
                        None => self.all_docs(index_id, budget).await?,
                    };
                    for q in all {
                        if let Query::Not(inner) = q {
                            let ids = self.eval(index_id, inner, budget).await?;
                            out = difference(&out, &ids);
                        }
                    }
                    Ok(out)
                }
                Query::Not(inner) => {
                    let all = self.all_docs(index_id, budget).await?;
                    let ids = self.eval(index_id, inner, budget).await?;
                    Ok(difference(&all, &ids))
                }
            }
        })
    }

    async fn all_docs(&self, index_id: i64, budget: &mut Budget) -> StoreResult<Vec<i64>> {
        let limit = budget.left;
        let sql = "SELECT id FROM search_docs WHERE index_id = $1 ORDER BY id";
        let inline = self
            .read_inline(move |r| r.ids(sql, vec![index_id.into()], None, limit))
            .await;
        if let Some((ids, read)) = inline {
            budget.spend(read)?;
            return Ok(ids);
        }
        let mut rows = sqlx::query("SELECT id FROM search_docs WHERE index_id = $1 ORDER BY id")
            .bind(index_id)
            .fetch(&self.read);
        let mut ids = Vec::new();
        while let Some(row) = rows.try_next().await? {
            budget.spend_one().await?;
            ids.push(row.try_get::<i64, _>("id")?);
        }
        Ok(ids)
    }

    async fn field_ids(&self, field: &FieldName, budget: &mut Budget) -> StoreResult<Vec<i64>> {
        let mut ids = Vec::new();
        match field {
            FieldName::Exact(name) => {
                let rows = sqlx::query(
                    "SELECT id FROM search_fields WHERE path = $1 \
                     UNION SELECT id FROM search_fields WHERE leaf = $1",
                )
                .bind(name)
                .fetch_all(&self.read)
                .await?;
                budget.spend(rows.len())?;
                for row in rows {
                    ids.push(row.try_get::<i64, _>("id")?);
                }
            }
            FieldName::Pattern(_) => {
                let mut rows =
                    sqlx::query("SELECT id, path, leaf FROM search_fields").fetch(&self.read);
                while let Some(row) = rows.try_next().await? {
                    budget.spend_one().await?;
                    let path: String = row.try_get("path")?;
                    let leaf: String = row.try_get("leaf")?;
                    if field.matches(&path, &leaf) {
                        ids.push(row.try_get::<i64, _>("id")?);
                    }
                }
            }
        }
        Ok(ids)
    }

    async fn term_docs(
        &self,
        index_id: i64,
        fields: &[i64],
        value: &ValueMatch,
        budget: &mut Budget,
    ) -> StoreResult<Vec<i64>> {
        let (low, high, pattern) = match value {
            ValueMatch::Exact(v) => (Bound::Included(v.clone()), Bound::Included(v.clone()), None),
            ValueMatch::Prefix(p) => {
                let (low, high) = prefix_bounds(p);
                (low, high, None)
            }
            ValueMatch::Pattern(g) => {
                let (low, high) = prefix_bounds(&g.prefix);
                (low, high, Some(g))
            }
            ValueMatch::Range(low, high) => (low.clone(), high.clone(), None),
        };
        let mut conditions = String::new();
        let mut binds: Vec<String> = Vec::new();
        for (bound, op_in, op_ex) in [(&low, ">=", ">"), (&high, "<=", "<")] {
            let (op, text) = match bound {
                Bound::Included(t) => (op_in, t),
                Bound::Excluded(t) => (op_ex, t),
                Bound::Unbounded => continue,
            };
            binds.push(text.clone());
            conditions.push_str(&format!(" AND value {op} ${}", binds.len() + 1));
        }
        let mut out = Vec::new();
        for chunk in fields.chunks(ID_CHUNK) {
            let first = binds.len() + 2;
            let sql = format!(
                "SELECT doc_id, value FROM search_terms WHERE index_id = $1{conditions} \
                 AND field_id IN ({})",
                numbered(chunk.len(), first)
            );
            let params: Vec<rusqlite::types::Value> = std::iter::once(index_id.into())
                .chain(binds.iter().map(|b| b.clone().into()))
                .chain(chunk.iter().map(|id| (*id).into()))
                .collect();
            let (sql_inline, glob, limit) = (sql.clone(), pattern.cloned(), budget.left);
            let inline = self
                .read_inline(move |r| r.ids(&sql_inline, params, glob.as_ref(), limit))
                .await;
            if let Some((ids, read)) = inline {
                budget.spend(read)?;
                out.extend(ids);
                continue;
            }
            let mut q: SqlQuery<'_, Any, AnyArguments<'_>> = sqlx::query(&sql).bind(index_id);
            for b in &binds {
                q = q.bind(b.as_str());
            }
            for id in chunk {
                q = q.bind(*id);
            }
            let mut rows = q.fetch(&self.read);
            while let Some(row) = rows.try_next().await? {
                budget.spend_one().await?;
                if let Some(glob) = pattern {
                    let value: String = row.try_get("value")?;
                    if !glob.matches(&value) {
                        continue;
                    }
                }
                out.push(row.try_get::<i64, _>("doc_id")?);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Indexes a client as `GET /clients/NAME` shows it (name, validator, org).
    pub(super) async fn reindex_client(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        name: &str,
        before: Option<bool>,
        after: Option<bool>,
    ) -> StoreResult<Learned> {
        let org: String = sqlx::query("SELECT name FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("name")?;
        let doc = |validator: bool| client_document(&org, name, validator).to_string();
        let before = before.map(doc);
        let after = after.map(doc);
        self.reindex(
            tx,
            org_id,
            &IndexKind::Client,
            name,
            before.as_deref(),
            after.as_deref(),
        )
        .await
    }

    async fn index_client(&self, org_id: i64, name: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query("SELECT validator FROM clients WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(()) };
        let validator: i64 = row.try_get("validator")?;
        let learned = self
            .reindex_client(&mut tx, org_id, name, None, Some(validator != 0))
            .await?;
        tx.commit().await?;
        self.learn(learned);
        Ok(())
    }

    /// Removes every index entry of an org (its index and document rows go with the org).
    pub(super) async fn drop_org_index(
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM search_terms WHERE index_id IN \
             (SELECT id FROM search_indexes WHERE org_id = $1)",
        )
        .bind(org_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A client's search document, as Chef indexes clients.
pub fn client_document(org: &str, name: &str, validator: bool) -> Value {
    serde_json::json!({
        "name": name,
        "clientname": name,
        "orgname": org,
        "validator": validator,
        "admin": false,
        "json_class": "Chef::ApiClient",
        "chef_type": "client",
    })
}

/// `(…), (…)` rows of `width` placeholders each, numbered after `offset` binds.
fn placeholders(rows: usize, width: usize, offset: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", numbered(width, offset + r * width + 1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One document's change for [`Store::reindex_many`].
pub(super) struct IndexChange {
    pub kind: IndexKind,
    pub name: String,
    /// Stored before (None: not stored).
    pub old: Option<String>,
    /// Stored after.
    pub new: String,
}

/// The row ids of documents `keys` (index id, name), creating the missing rows.
async fn doc_ids_in(
    tx: &mut Transaction<'static, Any>,
    keys: &[(i64, &str)],
) -> StoreResult<HashMap<(i64, String), i64>> {
    let mut ids = HashMap::with_capacity(keys.len());
    let keys: Vec<(i64, String)> = keys.iter().map(|(i, n)| (*i, (*n).to_owned())).collect();
    for chunk in keys.chunks(CHUNK) {
        for row in ensure_pairs(tx, "search_docs", ("index_id", "name"), chunk).await? {
            let key: (i64, String) = (row.try_get("index_id")?, row.try_get("name")?);
            ids.insert(key, row.try_get("id")?);
        }
    }
    Ok(ids)
}

async fn delete_terms(
    tx: &mut Transaction<'static, Any>,
    index_id: i64,
    doc_id: i64,
    terms: &[&Term],
    ids: &HashMap<(String, String), i64>,
) -> StoreResult<()> {
    for chunk in terms.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM search_terms WHERE index_id = $1 AND doc_id = $2 \
             AND (field_id, value) IN ({})",
            placeholders(chunk.len(), 2, 2)
        );
        let mut q = sqlx::query(&sql).bind(index_id).bind(doc_id);
        for t in chunk {
            q = q.bind(field_id(ids, t)?).bind(t.value.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts the rows `pairs` (values of columns `a`, `b`, a unique key) of `table` that are
/// missing, and reads back `id`, `a`, `b` of all of them: the ids of index fields and of
/// index documents, created on first use.
async fn ensure_pairs<A, B>(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    (a, b): (&str, &str),
    pairs: &[(A, B)],
) -> StoreResult<Vec<sqlx::any::AnyRow>>
where
    A: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + 'static,
    B: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send + 'static,
{
    let values = placeholders(pairs.len(), 2, 0);
    let sql =
        format!("INSERT INTO {table} ({a}, {b}) VALUES {values} ON CONFLICT ({a}, {b}) DO NOTHING");
    let mut q = sqlx::query(&sql);
    for (x, y) in pairs {
        q = q.bind(x.clone()).bind(y.clone());
    }
    q.execute(&mut **tx).await?;
    let sql = format!("SELECT id, {a}, {b} FROM {table} WHERE ({a}, {b}) IN ({values})");
    let mut q = sqlx::query(&sql);
    for (x, y) in pairs {
        q = q.bind(x.clone()).bind(y.clone());
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

/// Index entries `(index id, document id, term)`, of one document or many.
async fn insert_terms(
    tx: &mut Transaction<'static, Any>,
    rows: &[(i64, i64, &Term)],
    ids: &HashMap<(String, String), i64>,
) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO search_terms (index_id, field_id, value, doc_id) VALUES {} \
             ON CONFLICT DO NOTHING",
            placeholders(chunk.len(), 4, 0)
        );
        let mut q = sqlx::query(&sql);
        for (index_id, doc_id, t) in chunk {
            q = q
                .bind(*index_id)
                .bind(field_id(ids, t)?)
                .bind(t.value.as_str())
                .bind(*doc_id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn field_id(ids: &HashMap<(String, String), i64>, t: &Term) -> StoreResult<i64> {
    ids.get(&(t.path.clone(), t.leaf.clone()))
        .copied()
        .ok_or_else(|| StoreError::Refused(format!("search field '{}' has no id", t.path)))
}

/// The byte-order range holding every text that starts with `prefix`.
fn prefix_bounds(prefix: &str) -> (Bound<String>, Bound<String>) {
    if prefix.is_empty() {
        return (Bound::Unbounded, Bound::Unbounded);
    }
    let mut end: Vec<char> = prefix.chars().collect();
    while let Some(last) = end.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            end.push(next);
            return (
                Bound::Included(prefix.to_owned()),
                Bound::Excluded(end.into_iter().collect()),
            );
        }
    }
    (Bound::Included(prefix.to_owned()), Bound::Unbounded)
}

fn union(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn intersect(a: &[i64], b: &[i64]) -> Vec<i64> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_ok())
        .collect()
}

fn difference(a: &[i64], b: &[i64]) -> Vec<i64> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_cover_exactly_the_prefixed_texts() {
        let (low, high) = prefix_bounds("web");
        assert_eq!(low, Bound::Included("web".into()));
        assert_eq!(high, Bound::Excluded("wec".into()));
        let (_, high) = prefix_bounds("a\u{10FFFF}");
        assert_eq!(high, Bound::Excluded("b".into()));
        assert_eq!(prefix_bounds("").0, Bound::Unbounded);
    }

    #[test]
    fn sorted_set_operations() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), [1, 2, 3, 5, 6]);
        assert_eq!(intersect(&[1, 3, 5], &[2, 3, 5]), [3, 5]);
        assert_eq!(difference(&[1, 3, 5], &[3]), [1, 5]);
        assert_eq!(placeholders(2, 2, 2), "($3, $4), ($5, $6)");
    }
}
