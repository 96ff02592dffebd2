//! Replicated objects (roles, environments, data bags and items, cookbook versions) and the
//! change-log entries written with them.

use std::collections::{HashMap, HashSet};

use chef_sync_shared::{ObjectKind, ObjectPath};
use sqlx::any::Any;
use sqlx::{Row, Transaction};

use super::change_log::Entries;
use super::search_index::{IndexChange, Learned};
use super::{MAX_BINDS, Store, StoreError, StoreResult, now_millis, numbered};

/// Paths per prefetch query.
const PREFETCH_CHUNK: usize = MAX_BINDS - 1;
/// Rows per multi-row object upsert (10 binds each).
const ROWS_PER_UPSERT: usize = MAX_BINDS / 10;
use crate::search::IndexKind;

/// How a write treats an existing or missing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST: the object must not exist (409).
    Create,
    /// PUT: the object must exist (404).
    Update,
    /// Cookbook PUT: create or replace.
    Upsert,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// New object; its change-log id.
    Created(i64),
    /// Replaced with different content; its change-log id.
    Updated(i64),
    /// Same content as stored: nothing written, no change-log entry.
    Unchanged,
}

/// The columns that index an object besides its path.
struct Placement {
    kind: &'static str,
    parent: Option<String>,
    name: String,
    version: Option<(i64, i64, i64)>,
}

/// Policyfile objects live in tables of their own (`store::policyfiles`), never here.
fn placement(path: &ObjectPath) -> StoreResult<Placement> {
    let plain = |kind, name: &String| Placement {
        kind,
        parent: None,
        name: name.clone(),
        version: None,
    };
    Ok(match path {
        ObjectPath::Role { name } => plain(ObjectKind::Role.as_str(), name),
        ObjectPath::Environment { name } => plain(ObjectKind::Environment.as_str(), name),
        ObjectPath::DataBag { bag } => plain(ObjectKind::DataBag.as_str(), bag),
        ObjectPath::DataBagItem { bag, item } => Placement {
            kind: ObjectKind::DataBagItem.as_str(),
            parent: Some(bag.clone()),
            name: item.clone(),
            version: None,
        },
        ObjectPath::CookbookVersion { cookbook, version } => Placement {
            kind: ObjectKind::CookbookVersion.as_str(),
            parent: Some(cookbook.clone()),
            name: version.to_string(),
            version: Some((version.major, version.minor, version.patch)),
        },
        ObjectPath::Policy { .. }
        | ObjectPath::PolicyRevision { .. }
        | ObjectPath::PolicyGroup { .. }
        | ObjectPath::PolicyAssignment { .. }
        | ObjectPath::CookbookArtifact { .. } => {
            return Err(StoreError::Refused(format!(
                "{path} is a Policyfile object, not a replicated document"
            )));
        }
    })
}

/// The search index and document name of an object, if it is searchable.
fn search_entry(path: &ObjectPath) -> Option<(IndexKind, &str)> {
    match path {
        ObjectPath::Role { name } => Some((IndexKind::Role, name)),
        ObjectPath::Environment { name } => Some((IndexKind::Environment, name)),
        ObjectPath::DataBagItem { bag, item } => Some((IndexKind::DataBag(bag.clone()), item)),
        _ => None,
    }
}

/// What a transaction already read of the stored objects, so that a batch of writes reads
/// each object once and each data bag once, not once per item; and, for a batch, the object
/// rows and index changes held back to be written by a few multi-row statements
/// ([`Store::write_held`]) before anything reads them from the database.
#[derive(Default)]
pub(super) struct Known {
    /// Paths known to be stored in this transaction.
    present: HashSet<String>,
    /// Bodies as stored in this transaction (`None`: not stored).
    bodies: HashMap<String, Option<String>>,
    /// Writes held back (a batch), or `None` (each write goes to the database at once).
    held: Option<Held>,
}

#[derive(Default)]
struct Held {
    rows: Vec<(ObjectPath, String)>,
    index: Vec<IndexChange>,
    /// Position in `index` of each document's change.
    index_at: HashMap<(IndexKind, String), usize>,
}

impl Known {
    /// Holds writes back until [`Store::write_held`].
    pub(super) fn holding() -> Self {
        Known {
            held: Some(Held::default()),
            ..Known::default()
        }
    }

    /// Reads ahead the stored bodies of `paths`, in a few queries.
    pub(super) async fn prefetch(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        paths: &[String],
    ) -> StoreResult<()> {
        for chunk in paths.chunks(PREFETCH_CHUNK) {
            let sql = format!(
                "SELECT path, body FROM objects WHERE org_id = $1 AND path IN ({})",
                numbered(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql).bind(org_id);
            for path in chunk {
                q = q.bind(path.as_str());
            }
            for path in chunk {
                self.bodies.insert(path.clone(), None);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let path: String = row.try_get("path")?;
                let body: String = row.try_get("body")?;
                self.present.insert(path.clone());
                self.bodies.insert(path, Some(body));
            }
        }
        Ok(())
    }

    async fn body(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        path: &str,
    ) -> StoreResult<Option<String>> {
        match self.bodies.get(path) {
            Some(body) => Ok(body.clone()),
            None => stored_body(tx, org_id, path).await,
        }
    }

    async fn exists(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        path: &str,
    ) -> StoreResult<bool> {
        if self.present.contains(path) {
            return Ok(true);
        }
        let found = sqlx::query("SELECT 1 AS one FROM objects WHERE org_id = $1 AND path = $2")
            .bind(org_id)
            .bind(path)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if found {
            self.present.insert(path.to_owned());
        }
        Ok(found)
    }

    /// Holds the write of `path` back, if writes are held: whether it was.
    fn hold(&mut self, path: &ObjectPath, old: Option<&str>, body: &str) -> bool {
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        // A cookbook version's file references are written with it, under its savepoint.
        if path.kind() == ObjectKind::CookbookVersion {
            return false;
        }
        held.rows.push((path.clone(), body.to_owned()));
        if let Some((kind, name)) = search_entry(path) {
            let key = (kind, name.to_owned());
            match held.index_at.get(&key) {
                Some(&at) => held.index[at].new = body.to_owned(),
                None => {
                    held.index_at.insert(key.clone(), held.index.len());
                    held.index.push(IndexChange {
                        kind: key.0,
                        name: key.1,
                        old: old.map(str::to_owned),
                        new: body.to_owned(),
                    });
                }
            }
        }
        true
    }

    /// `path` was deleted (a data bag: with its items).
    fn deleted(&mut self, path: &str, bag: bool) {
        self.present.remove(path);
        self.bodies.remove(path);
        if bag {
            let items = format!("{path}/");
            self.present.retain(|p| !p.starts_with(&items));
            self.bodies.retain(|p, _| !p.starts_with(&items));
        }
    }
}

/// A cookbook version as listed: name, version parts, body.
#[derive(Debug, Clone)]
pub struct CookbookVersionRow {
    /// Cookbook name.
    pub cookbook: String,
    /// `x.y.z`.
    pub version: String,
    /// Manifest JSON, when asked for.
    pub body: Option<String>,
}

impl Store {
    /// The stored JSON of one object.
    pub async fn object(&self, org_id: i64, path: &ObjectPath) -> StoreResult<Option<String>> {
        if let Some(inline) = &self.inline
            && let Ok(body) = inline.object(org_id, &path.to_string())
        {
            return Ok(body);
        }
        let row = sqlx::query("SELECT body FROM objects WHERE org_id = $1 AND path = $2")
            .bind(org_id)
            .bind(path.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Names of all objects of a kind (within `parent` for items and cookbook versions), sorted.
    pub async fn object_names(
        &self,
        org_id: i64,
        kind: ObjectKind,
        parent: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let rows = match parent {
            Some(p) => {
                sqlx::query("SELECT name FROM objects WHERE org_id = $1 AND kind = $2 AND parent = $3 ORDER BY name")
                    .bind(org_id)
                    .bind(kind.as_str())
                    .bind(p)
                    .fetch_all(&self.read)
                    .await?
            }
            None => {
                sqlx::query("SELECT name FROM objects WHERE org_id = $1 AND kind = $2 ORDER BY name")
                    .bind(org_id)
                    .bind(kind.as_str())
                    .fetch_all(&self.read)
                    .await?
            }
        };
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// `(name, body)` of objects of a kind (within `parent` for items), sorted by name;
    /// `page` is `(offset, limit)`, `None` for all of them.
    pub async fn object_bodies(
        &self,
        org_id: i64,
        kind: ObjectKind,
        parent: Option<&str>,
        page: Option<(i64, i64)>,
    ) -> StoreResult<Vec<(String, String)>> {
        let (offset, limit) = page.unwrap_or((0, i64::MAX));
        let rows = match parent {
            Some(p) => sqlx::query(
                "SELECT name, body FROM objects WHERE org_id = $1 AND kind = $2 AND parent = $3 \
                     ORDER BY name LIMIT $4 OFFSET $5",
            )
            .bind(org_id)
            .bind(kind.as_str())
            .bind(p)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?,
            None => {
                sqlx::query(
                    "SELECT name, body FROM objects WHERE org_id = $1 AND kind = $2 \
                     ORDER BY name LIMIT $3 OFFSET $4",
                )
                .bind(org_id)
                .bind(kind.as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("body")?)))
            .collect()
    }

    /// How many objects of a kind there are (within `parent` for items).
    pub async fn object_count(
        &self,
        org_id: i64,
        kind: ObjectKind,
        parent: Option<&str>,
    ) -> StoreResult<i64> {
        let row = match parent {
            Some(p) => sqlx::query(
                "SELECT COUNT(*) AS n FROM objects WHERE org_id = $1 AND kind = $2 AND parent = $3",
            )
            .bind(org_id)
            .bind(kind.as_str())
            .bind(p)
            .fetch_one(&self.read)
            .await?,
            None => {
                sqlx::query("SELECT COUNT(*) AS n FROM objects WHERE org_id = $1 AND kind = $2")
                    .bind(org_id)
                    .bind(kind.as_str())
                    .fetch_one(&self.read)
                    .await?
            }
        };
        Ok(row.try_get("n")?)
    }

    /// `(name, body)` of the named objects of a kind (within `parent` for items) that exist,
    /// in the order of `names`; read by path, the table's key.
    pub async fn objects_named(
        &self,
        org_id: i64,
        kind: ObjectKind,
        parent: Option<&str>,
        names: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let path_of = |name: &str| match kind {
            ObjectKind::Role => ObjectPath::role(name).ok(),
            ObjectKind::Environment => ObjectPath::environment(name).ok(),
            ObjectKind::DataBagItem => ObjectPath::data_bag_item(parent?, name).ok(),
            _ => None,
        };
        let paths: Vec<(String, &String)> = names
            .iter()
            .filter_map(|n| path_of(n).map(|p| (p.to_string(), n)))
            .collect();
        let keys: Vec<&str> = paths.iter().map(|(path, _)| path.as_str()).collect();
        let mut found = self.bodies_by_key("objects", "path", org_id, &keys).await?;
        Ok(paths
            .into_iter()
            .filter_map(|(path, name)| found.remove(&path).map(|b| (name.clone(), b)))
            .collect())
    }

    /// Cookbook versions, newest first within each cookbook (optionally of one cookbook);
    /// `with_body` also loads the manifests.
    pub async fn cookbook_versions(
        &self,
        org_id: i64,
        cookbook: Option<&str>,
        with_body: bool,
    ) -> StoreResult<Vec<CookbookVersionRow>> {
        let columns = if with_body {
            "parent, name, body"
        } else {
            "parent, name"
        };
        let filter = if cookbook.is_some() {
            "AND parent = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {columns} FROM objects WHERE org_id = $1 AND kind = 'cookbook_version' {filter} \
             ORDER BY parent, v_major DESC, v_minor DESC, v_patch DESC"
        );
        let mut query = sqlx::query(&sql).bind(org_id);
        if let Some(name) = cookbook {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(CookbookVersionRow {
                    cookbook: r.try_get("parent")?,
                    version: r.try_get("name")?,
                    body: if with_body {
                        Some(r.try_get("body")?)
                    } else {
                        None
                    },
                })
            })
            .collect()
    }

    /// Writes an object and its change-log entry in one transaction.
    pub async fn write_object(
        &self,
        org_id: i64,
        path: &ObjectPath,
        body: &str,
        mode: WriteMode,
    ) -> StoreResult<WriteOutcome> {
        self.write_object_with(org_id, path, mode, |_| Ok(body.to_owned()))
            .await
    }

    /// Like [`Store::write_object`], with the new body computed from the stored one inside the
    /// transaction, so rules such as "a frozen cookbook stays frozen" cannot race another
    /// writer. `make_body` may refuse the write with an error. A data bag item is written only
    /// while its bag exists (`ParentMissing` otherwise).
    pub async fn write_object_with(
        &self,
        org_id: i64,
        path: &ObjectPath,
        mode: WriteMode,
        make_body: impl FnOnce(Option<&str>) -> StoreResult<String>,
    ) -> StoreResult<WriteOutcome> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let (outcome, learned) = self
            .write_in(
                &mut tx,
                &mut entries,
                &mut Known::default(),
                path,
                mode,
                make_body,
            )
            .await?;
        if outcome == WriteOutcome::Unchanged {
            return Ok(outcome);
        }
        entries.commit(self, tx).await?;
        if let Some(learned) = learned {
            self.learn(learned);
        }
        Ok(outcome)
    }

    /// One write inside a transaction that holds the org's lock, its entry appended to
    /// `entries`. What the search index learned is to be passed to [`Store::learn`] once the
    /// transaction commits.
    pub(super) async fn write_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        entries: &mut Entries,
        known: &mut Known,
        path: &ObjectPath,
        mode: WriteMode,
        make_body: impl FnOnce(Option<&str>) -> StoreResult<String>,
    ) -> StoreResult<(WriteOutcome, Option<Learned>)> {
        let org_id = entries.org_id();
        let key = path.to_string();
        if let Some(parent) = path.parent()
            && !known.exists(tx, org_id, &parent.to_string()).await?
        {
            return Err(StoreError::ParentMissing);
        }
        let existing = known.body(tx, org_id, &key).await?;
        match (&existing, mode) {
            (Some(_), WriteMode::Create) => return Err(StoreError::Conflict),
            (None, WriteMode::Update) => return Err(StoreError::NotFound),
            _ => {}
        }
        let body = make_body(existing.as_deref())?;
        if existing.as_deref() == Some(body.as_str()) {
            return Ok((WriteOutcome::Unchanged, None));
        }
        let action = if existing.is_some() {
            "update"
        } else {
            "create"
        };
        let held = known.hold(path, existing.as_deref(), &body);
        if !held {
            insert_row(tx, org_id, path, &body).await?;
            if path.kind() == ObjectKind::CookbookVersion {
                super::cookbook_files::replace(tx, org_id, &key, existing.as_deref(), Some(&body))
                    .await?;
            }
        }
        let seq = entries.append(action, key.clone());
        let learned = match search_entry(path) {
            Some((index, name)) if !held => Some(
                self.reindex(tx, org_id, &index, name, existing.as_deref(), Some(&body))
                    .await?,
            ),
            _ => None,
        };
        // Recorded once nothing can fail: a cookbook version refused above is rolled back.
        known.present.insert(key.clone());
        known.bodies.insert(key, Some(body));
        let outcome = if existing.is_some() {
            WriteOutcome::Updated(seq)
        } else {
            WriteOutcome::Created(seq)
        };
        Ok((outcome, learned))
    }

    /// Writes what `known` held back: the object rows by multi-row upserts (each path's last
    /// body), then the index changes. What the index learned is for [`Store::learn`] after
    /// the commit.
    pub(super) async fn write_held(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
        known: &mut Known,
    ) -> StoreResult<Learned> {
        let Some(held) = known.held.as_mut() else {
            return Ok(Learned::default());
        };
        let rows = std::mem::take(&mut held.rows);
        let index = std::mem::take(&mut held.index);
        held.index_at.clear();
        let keys: Vec<String> = rows.iter().map(|(p, _)| p.to_string()).collect();
        let last: HashMap<&str, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        // PostgreSQL refuses an upsert that meets the same row twice.
        let unique: Vec<usize> = (0..rows.len())
            .filter(|i| last.get(keys[*i].as_str()) == Some(i))
            .collect();
        let unique: Vec<(&ObjectPath, &str)> = unique
            .into_iter()
            .map(|i| (&rows[i].0, rows[i].1.as_str()))
            .collect();
        for chunk in unique.chunks(ROWS_PER_UPSERT) {
            upsert_rows(tx, org_id, chunk).await?;
        }
        self.reindex_many(tx, org_id, index).await
    }

    /// Moves an object to a new name with a new body (Chef renames environments by PUT), in
    /// one transaction: the new object's `create` entry, then the old one's `delete`, so a
    /// replica following the feed never lacks both. `NotFound` when `from` does not exist,
    /// `Conflict` when `to` does.
    pub async fn rename_object(
        &self,
        org_id: i64,
        from: &ObjectPath,
        to: &ObjectPath,
        body: &str,
    ) -> StoreResult<i64> {
        let (from_key, to_key) = (from.to_string(), to.to_string());
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let old = stored_body(&mut tx, org_id, &from_key)
            .await?
            .ok_or(StoreError::NotFound)?;
        if stored_body(&mut tx, org_id, &to_key).await?.is_some() {
            return Err(StoreError::Conflict);
        }
        insert_row(&mut tx, org_id, to, body).await?;
        entries.append("create", to_key);
        delete_row(&mut tx, org_id, &from_key).await?;
        let seq = entries.append("delete", from_key);
        let mut learned = Vec::new();
        if let Some((index, name)) = search_entry(from) {
            learned.push(
                self.reindex(&mut tx, org_id, &index, name, Some(&old), None)
                    .await?,
            );
        }
        if let Some((index, name)) = search_entry(to) {
            learned.push(
                self.reindex(&mut tx, org_id, &index, name, None, Some(body))
                    .await?,
            );
        }
        entries.commit(self, tx).await?;
        for l in learned {
            self.learn(l);
        }
        Ok(seq)
    }

    /// Deletes an object, returning its last JSON. Deleting a data bag deletes its items
    /// first, each with its own change-log entry.
    pub async fn delete_object(&self, org_id: i64, path: &ObjectPath) -> StoreResult<String> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let (body, learned) = self
            .delete_in(&mut tx, &mut entries, &mut Known::default(), path)
            .await?;
        entries.commit(self, tx).await?;
        for l in learned {
            self.learn(l);
        }
        Ok(body)
    }

    /// One delete inside a transaction that holds the org's lock, like [`Store::write_in`];
    /// returns the object's last JSON.
    pub(super) async fn delete_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        entries: &mut Entries,
        known: &mut Known,
        path: &ObjectPath,
    ) -> StoreResult<(String, Vec<Learned>)> {
        let org_id = entries.org_id();
        let key = path.to_string();
        let body = known
            .body(tx, org_id, &key)
            .await?
            .ok_or(StoreError::NotFound)?;
        known.deleted(&key, path.kind() == ObjectKind::DataBag);
        let mut learned = Vec::new();
        if let ObjectPath::DataBag { bag } = path {
            let items = sqlx::query("SELECT path, name FROM objects WHERE org_id = $1 AND kind = 'data_bag_item' AND parent = $2 ORDER BY name")
                .bind(org_id)
                .bind(bag)
                .fetch_all(&mut **tx)
                .await?;
            let index = IndexKind::DataBag(bag.clone());
            for item in items {
                let item_path: String = item.try_get("path")?;
                let item_name: String = item.try_get("name")?;
                let item_body = stored_body(tx, org_id, &item_path).await?;
                learned.push(
                    self.reindex(tx, org_id, &index, &item_name, item_body.as_deref(), None)
                        .await?,
                );
                delete_row(tx, org_id, &item_path).await?;
                entries.append("delete", item_path);
            }
        }
        if let Some((index, name)) = search_entry(path) {
            learned.push(
                self.reindex(tx, org_id, &index, name, Some(&body), None)
                    .await?,
            );
        }
        delete_row(tx, org_id, &key).await?;
        if path.kind() == ObjectKind::CookbookVersion {
            super::cookbook_files::replace(tx, org_id, &key, Some(&body), None).await?;
        }
        entries.append("delete", key);
        Ok((body, learned))
    }

    /// Locks the org's counter for this transaction and returns the last id handed out.
    pub(super) async fn lock_org(
        &self,
        tx: &mut Transaction<'static, Any>,
        org_id: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(self.dialect.lock_org_sql())
            .bind(org_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("last_seq")?)
    }
}

async fn stored_body(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    path: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query("SELECT body FROM objects WHERE org_id = $1 AND path = $2")
        .bind(org_id)
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.try_get("body")).transpose()?)
}

/// Inserts or replaces the row of `path`.
async fn insert_row(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    path: &ObjectPath,
    body: &str,
) -> StoreResult<()> {
    upsert_rows(tx, org_id, &[(path, body)]).await
}

/// Inserts or replaces the rows of `rows` (distinct paths: PostgreSQL refuses an upsert that
/// meets the same row twice) by one statement.
async fn upsert_rows(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    rows: &[(&ObjectPath, &str)],
) -> StoreResult<()> {
    let values = (0..rows.len())
        .map(|r| format!("({})", numbered(10, r * 10 + 1)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO objects (org_id, path, kind, parent, name, body, v_major, v_minor, v_patch, updated_at) \
         VALUES {values} \
         ON CONFLICT (org_id, path) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
    );
    let now = now_millis();
    let mut q = sqlx::query(&sql);
    for (path, body) in rows {
        let p = placement(path)?;
        let (major, minor, patch) = match p.version {
            Some((a, b, c)) => (Some(a), Some(b), Some(c)),
            None => (None, None, None),
        };
        q = q
            .bind(org_id)
            .bind(path.to_string())
            .bind(p.kind)
            .bind(p.parent)
            .bind(p.name)
            .bind(*body)
            .bind(major)
            .bind(minor)
            .bind(patch)
            .bind(now);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

async fn delete_row(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    path: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM objects WHERE org_id = $1 AND path = $2")
        .bind(org_id)
        .bind(path)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
