//! Reading the change log.

use std::collections::HashMap;
use std::fmt::Write;

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

/// Most document bytes one `updated_since` page carries: a page of large data bag items is cut
/// short there (at least one entry is always sent) and the rest follow on the next page.
pub const MAX_PAGE_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// What a page carries besides each entry's action, id and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDocuments {
    /// Entries only.
    None,
    /// Each path's current document on its last entry in the page (see [`Store::changes_since`]).
    Current,
}

/// One page of the change log, as the `updated_since` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// The JSON array.
    pub json: String,
    /// Entries on it.
    pub entries: usize,
    /// The org's newest id as the page was read (at least the page's last).
    pub last_seq: i64,
}

/// Paths whose documents are read by one query: few enough that their bodies (each at most a
/// request's size) stay small beside the page's byte budget.
const DOCUMENTS_PER_QUERY: usize = 16;

/// A change-log entry as read for a page.
struct Entry {
    seq: i64,
    action: String,
    path: String,
}

impl Entry {
    /// Whether a page with documents carries this entry's: writes of roles, environments,
    /// data bags and items. A cookbook version's manifest is read through its route, which
    /// hands out the URLs of its files; Policyfile objects live in tables of their own.
    fn has_document(&self) -> bool {
        use chef_sync_shared::ObjectKind as K;
        self.action != "delete"
            && self
                .path
                .parse::<chef_sync_shared::ObjectPath>()
                .is_ok_and(|p| {
                    matches!(
                        p.kind(),
                        K::Role | K::Environment | K::DataBag | K::DataBagItem
                    )
                })
    }
}

impl Store {
    /// Entries with id > `after`, ascending, at most `limit`, as a JSON array of
    /// `{"action","id","path"}` (the `updated_since` body). `Pruned` when entries after `after`
    /// may have been removed.
    ///
    /// With [`PageDocuments::Current`] the last entry of each role's, environment's, data
    /// bag's and item's path on the page (not a delete) also gets `"document"`: the object's
    /// stored JSON, or `null` when it no longer exists. Documents are read after the entries,
    /// so each is the object as it is at or after its entry, never older. The page ends early
    /// once its documents pass [`MAX_PAGE_DOCUMENT_BYTES`] (one entry is always sent).
    pub async fn changes_since(
        &self,
        org_id: i64,
        after: i64,
        limit: i64,
        documents: PageDocuments,
    ) -> StoreResult<FeedPage> {
        let org = sqlx::query("SELECT pruned_through, last_seq FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        let pruned: i64 = org.try_get("pruned_through")?;
        let last_seq: i64 = org.try_get("last_seq")?;
        if after < pruned {
            return Err(StoreError::Pruned(pruned));
        }
        if documents == PageDocuments::None
            && let Some(sql) = self.dialect.feed_page_sql()
        {
            let row = sqlx::query(sql)
                .bind(org_id)
                .bind(after)
                .bind(limit)
                .fetch_one(&self.read)
                .await?;
            let json: String = row.try_get("page")?;
            let entries: i64 = row.try_get("entries")?;
            let last: Option<i64> = row.try_get("last")?;
            return Ok(FeedPage {
                json,
                entries: usize::try_from(entries).unwrap_or(0),
                last_seq: last_seq.max(last.unwrap_or(0)),
            });
        }
        let rows = sqlx::query(
            "SELECT seq, action, path FROM change_log WHERE org_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(org_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let entries = rows
            .iter()
            .map(|r| {
                Ok(Entry {
                    seq: r.try_get("seq")?,
                    action: r.try_get("action")?,
                    path: r.try_get("path")?,
                })
            })
            .collect::<StoreResult<Vec<Entry>>>()?;
        self.page(org_id, entries, documents, last_seq).await
    }

    /// The page of `entries`, with their documents when asked for.
    async fn page(
        &self,
        org_id: i64,
        entries: Vec<Entry>,
        documents: PageDocuments,
        last_seq: i64,
    ) -> StoreResult<FeedPage> {
        let mut page = match documents {
            PageDocuments::None => page_json(&entries, &HashMap::new()),
            PageDocuments::Current => self.page_with_documents(org_id, entries).await?,
        };
        page.last_seq = page.last_seq.max(last_seq);
        Ok(page)
    }

    async fn page_with_documents(&self, org_id: i64, entries: Vec<Entry>) -> StoreResult<FeedPage> {
        // The entry that carries each path's document: its last on the page.
        let mut carrier: HashMap<&str, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.has_document() {
                carrier.insert(&e.path, i);
            } else {
                carrier.remove(e.path.as_str());
            }
        }
        let mut wanted: Vec<(usize, &str)> = carrier.into_iter().map(|(p, i)| (i, p)).collect();
        wanted.sort_unstable();
        let mut bodies: HashMap<usize, Option<String>> = HashMap::new();
        let mut bytes = 0usize;
        let mut end = entries.len();
        'read: for chunk in wanted.chunks(DOCUMENTS_PER_QUERY) {
            let mut found = self.bodies(org_id, chunk.iter().map(|(_, p)| *p)).await?;
            for (i, path) in chunk {
                let body = found.remove(*path);
                let size = body.as_ref().map_or(0, String::len);
                if bytes + size > MAX_PAGE_DOCUMENT_BYTES && *i > 0 {
                    end = *i;
                    break 'read;
                }
                bytes += size;
                bodies.insert(*i, body);
            }
        }
        Ok(page_json(&entries[..end], &bodies))
    }

    /// The stored bodies of `paths` that exist.
    async fn bodies(
        &self,
        org_id: i64,
        paths: impl Iterator<Item = &str>,
    ) -> StoreResult<HashMap<String, String>> {
        let paths: Vec<&str> = paths.collect();
        let marks: Vec<String> = (0..paths.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT path, body FROM objects WHERE org_id = $1 AND path IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(org_id);
        for p in &paths {
            query = query.bind(*p);
        }
        query
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("path")?, r.try_get("body")?)))
            .collect()
    }

    /// Every org's change-log length and newest id: `(org, entries, last_seq)`.
    pub async fn feed_sizes(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT o.name AS name, o.last_seq AS last_seq, \
             (SELECT COUNT(*) FROM change_log c WHERE c.org_id = o.id) AS entries \
             FROM orgs o ORDER BY o.name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    r.try_get("entries")?,
                    r.try_get("last_seq")?,
                ))
            })
            .collect()
    }

    /// The highest change id handed out in an org.
    pub async fn last_seq(&self, org_id: i64) -> StoreResult<i64> {
        let row = sqlx::query("SELECT last_seq FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("last_seq")?)
    }

    /// Removes entries older than `before` (milliseconds since the epoch), except the latest
    /// entry of every path that still exists. Readers positioned before the highest removed id
    /// get `Pruned` (410) from then on. Returns (entries removed, new pruned-through id).
    pub async fn prune_log(&self, org_id: i64, before: i64) -> StoreResult<(u64, i64)> {
        const PRUNABLE: &str = "org_id = $1 AND created_at < $2 AND seq NOT IN ( \
             SELECT MAX(c.seq) FROM change_log c JOIN objects o ON o.org_id = c.org_id AND o.path = c.path \
             WHERE c.org_id = $1 GROUP BY c.path)";
        let mut tx = self.write.begin().await?;
        // Hold the org's counter lock so no writer interleaves with the bookkeeping.
        let locked = sqlx::query(self.dialect.lock_org_sql())
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let pruned_before: i64 = locked.try_get("pruned_through")?;
        let highest: Option<i64> = sqlx::query(&format!(
            "SELECT MAX(seq) AS highest FROM change_log WHERE {PRUNABLE}"
        ))
        .bind(org_id)
        .bind(before)
        .fetch_one(&mut *tx)
        .await?
        .try_get("highest")?;
        let Some(highest) = highest else {
            return Ok((0, pruned_before));
        };
        let removed = sqlx::query(&format!("DELETE FROM change_log WHERE {PRUNABLE}"))
            .bind(org_id)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let through = highest.max(pruned_before);
        sqlx::query("UPDATE orgs SET pruned_through = $2 WHERE id = $1")
            .bind(org_id)
            .bind(through)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((removed, through))
    }
}

/// The page's JSON: `{"action","id","path"}` per entry, plus `"document"` where `documents`
/// has the entry (a stored body is JSON the server wrote, so it goes in as it is).
fn page_json(entries: &[Entry], documents: &HashMap<usize, Option<String>>) -> FeedPage {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let mut json = String::with_capacity(entries.len() * 64 + 2);
    json.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"action\":{},\"id\":{},\"path\":{}",
            text(&e.action),
            e.seq,
            text(&e.path)
        );
        match documents.get(&i) {
            Some(Some(body)) => {
                json.push_str(",\"document\":");
                json.push_str(body);
            }
            Some(None) => json.push_str(",\"document\":null"),
            None => {}
        }
        json.push('}');
    }
    json.push(']');
    FeedPage {
        json,
        entries: entries.len(),
        last_seq: entries.last().map_or(0, |e| e.seq),
    }
}
