//! Policyfile objects: policies and their immutable revisions, policy groups and the revision
//! of each policy assigned to them, and cookbook artifacts. Writes take the org's lock, as
//! every other object write does, and append their feed entries in the same transaction, in
//! the order a replica applies them: a policy or group before what goes into it, an artifact
//! or revision before what points at it, and on removal the pointing things first.

use std::collections::BTreeMap;

use chef_sync_shared::{ObjectPath, PathError};
use sqlx::{Any, Executor, Row, Transaction};

use super::change_log::Entries;
use super::{Store, StoreError, StoreResult};

/// A Policyfile path as logged: routes check every name before it is stored, so this refuses
/// only what an earlier release might have let in (the write is refused rather than logged
/// unreadably).
fn logged(path: Result<ObjectPath, PathError>) -> StoreResult<String> {
    path.map(|p| p.to_string())
        .map_err(|e| StoreError::Refused(e.to_string()))
}

/// The groups assigned a revision of `policy` (`revision` only, when given), each with the
/// policy's revision there.
async fn assigned_groups(
    tx: &mut Transaction<'static, Any>,
    org_id: i64,
    policy: &str,
    revision: Option<&str>,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT policy_group, revision_id FROM policy_assignments \
         WHERE org_id = $1 AND policy = $2 ORDER BY policy_group",
    )
    .bind(org_id)
    .bind(policy)
    .fetch_all(&mut **tx)
    .await?;
    let mut groups = Vec::new();
    for r in rows {
        let assigned: String = r.try_get("revision_id")?;
        if revision.is_none_or(|wanted| wanted == assigned) {
            groups.push(r.try_get("policy_group")?);
        }
    }
    Ok(groups)
}

/// The policies that have revisions, with their revision ids.
pub type PolicyRevisions = BTreeMap<String, Vec<String>>;

/// Each group with the revision assigned to it per policy.
pub type GroupAssignments = BTreeMap<String, BTreeMap<String, String>>;

/// A stored revision and the groups it is assigned to, most recently assigned last.
#[derive(Debug, Clone)]
pub struct StoredRevision {
    /// The document as it was sent.
    pub body: String,
    /// The groups it is assigned to.
    pub groups: Vec<String>,
}

/// What assigning a revision to a group did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// The group had no revision of the policy.
    Created,
    /// The group's revision of the policy was replaced (or was that one already).
    Updated,
}

/// Creates `policy` (with its feed entry) unless it exists.
async fn ensure_policy(
    tx: &mut Transaction<'static, Any>,
    entries: &mut Entries,
    policy: &str,
) -> StoreResult<()> {
    let org_id = entries.org_id();
    if revision_ids(&mut **tx, org_id, policy).await?.is_some() {
        return Ok(());
    }
    sqlx::query("INSERT INTO policies (org_id, name) VALUES ($1, $2)")
        .bind(org_id)
        .bind(policy)
        .execute(&mut **tx)
        .await?;
    entries.append("create", logged(ObjectPath::policy(policy))?);
    Ok(())
}

async fn insert_revision(
    tx: &mut Transaction<'static, Any>,
    entries: &mut Entries,
    policy: &str,
    revision: &str,
    body: &str,
) -> StoreResult<()> {
    let org_id = entries.org_id();
    sqlx::query(
        "INSERT INTO policy_revisions (org_id, policy, revision_id, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(policy)
    .bind(revision)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    let path = ObjectPath::policy_revision(policy, revision);
    entries.append("create", logged(path)?);
    Ok(())
}

// Each question below is asked by a read and by a write (inside its transaction): one query
// answers both, on the pool or on the transaction's connection.

/// The revision ids of `policy`, or `None` when there is no such policy.
async fn revision_ids<'e>(
    db: impl Executor<'e, Database = Any>,
    org_id: i64,
    policy: &str,
) -> StoreResult<Option<Vec<String>>> {
    let rows = sqlx::query(
        "SELECT r.revision_id FROM policies p LEFT JOIN policy_revisions r \
         ON r.org_id = p.org_id AND r.policy = p.name \
         WHERE p.org_id = $1 AND p.name = $2 ORDER BY r.revision_id",
    )
    .bind(org_id)
    .bind(policy)
    .fetch_all(db)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::new();
    for r in rows {
        if let Some(id) = r.try_get::<Option<String>, _>("revision_id")? {
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

/// The stored document of a revision.
async fn revision_body<'e>(
    db: impl Executor<'e, Database = Any>,
    org_id: i64,
    policy: &str,
    revision: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "SELECT body FROM policy_revisions WHERE org_id = $1 AND policy = $2 \
         AND revision_id = $3",
    )
    .bind(org_id)
    .bind(policy)
    .bind(revision)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| r.try_get("body")).transpose()?)
}

/// A group's assignments (policy → revision), or `None` when there is no such group.
async fn group_assignments<'e>(
    db: impl Executor<'e, Database = Any>,
    org_id: i64,
    group: &str,
) -> StoreResult<Option<BTreeMap<String, String>>> {
    let rows = sqlx::query(
        "SELECT a.policy, a.revision_id FROM policy_groups g LEFT JOIN policy_assignments a \
         ON a.org_id = g.org_id AND a.policy_group = g.name \
         WHERE g.org_id = $1 AND g.name = $2",
    )
    .bind(org_id)
    .bind(group)
    .fetch_all(db)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut assignments = BTreeMap::new();
    for r in rows {
        let policy: Option<String> = r.try_get("policy")?;
        let revision: Option<String> = r.try_get("revision_id")?;
        if let (Some(policy), Some(revision)) = (policy, revision) {
            assignments.insert(policy, revision);
        }
    }
    Ok(Some(assignments))
}

/// The document of the revision of `policy` assigned to `group`.
async fn assigned_body<'e>(
    db: impl Executor<'e, Database = Any>,
    org_id: i64,
    group: &str,
    policy: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "SELECT r.body FROM policy_assignments a JOIN policy_revisions r \
         ON r.org_id = a.org_id AND r.policy = a.policy AND r.revision_id = a.revision_id \
         WHERE a.org_id = $1 AND a.policy_group = $2 AND a.policy = $3",
    )
    .bind(org_id)
    .bind(group)
    .bind(policy)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| r.try_get("body")).transpose()?)
}

/// The stored document of an artifact.
async fn artifact_body<'e>(
    db: impl Executor<'e, Database = Any>,
    org_id: i64,
    name: &str,
    identifier: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "SELECT body FROM cookbook_artifacts WHERE org_id = $1 AND name = $2 \
         AND identifier = $3",
    )
    .bind(org_id)
    .bind(name)
    .bind(identifier)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| r.try_get("body")).transpose()?)
}

impl Store {
    /// Every policy that has revisions, with their revision ids.
    pub async fn policies(&self, org_id: i64) -> StoreResult<PolicyRevisions> {
        let rows = sqlx::query(
            "SELECT policy, revision_id FROM policy_revisions WHERE org_id = $1 \
             ORDER BY policy, revision_id",
        )
        .bind(org_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = PolicyRevisions::new();
        for r in rows {
            out.entry(r.try_get("policy")?)
                .or_default()
                .push(r.try_get("revision_id")?);
        }
        Ok(out)
    }

    /// The revision ids of `policy`, or `None` when there is no such policy.
    pub async fn policy(&self, org_id: i64, policy: &str) -> StoreResult<Option<Vec<String>>> {
        revision_ids(&self.read, org_id, policy).await
    }

    /// Deletes `policy` with its revisions and their assignments; its revision ids, or
    /// `NotFound`.
    pub async fn delete_policy(&self, org_id: i64, policy: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let revisions = revision_ids(&mut *tx, org_id, policy)
            .await?
            .ok_or(StoreError::NotFound)?;
        for group in assigned_groups(&mut tx, org_id, policy, None).await? {
            let path = ObjectPath::policy_assignment(&group, policy);
            entries.append("delete", logged(path)?);
        }
        for revision in &revisions {
            let path = ObjectPath::policy_revision(policy, revision);
            entries.append("delete", logged(path)?);
        }
        entries.append("delete", logged(ObjectPath::policy(policy))?);
        sqlx::query("DELETE FROM policies WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(policy)
            .execute(&mut *tx)
            .await?;
        entries.commit(self, tx).await?;
        Ok(revisions)
    }

    /// Stores a new revision of `policy` (the policy is created with its first revision);
    /// `Conflict` when that revision exists: revisions never change.
    pub async fn create_policy_revision(
        &self,
        org_id: i64,
        policy: &str,
        revision: &str,
        body: &str,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        if revision_body(&mut *tx, org_id, policy, revision)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict);
        }
        ensure_policy(&mut tx, &mut entries, policy).await?;
        insert_revision(&mut tx, &mut entries, policy, revision, body).await?;
        entries.commit(self, tx).await?;
        Ok(())
    }

    /// A revision with the groups it is assigned to.
    pub async fn policy_revision(
        &self,
        org_id: i64,
        policy: &str,
        revision: &str,
    ) -> StoreResult<Option<StoredRevision>> {
        let Some(body) = revision_body(&self.read, org_id, policy, revision).await? else {
            return Ok(None);
        };
        let groups = sqlx::query(
            "SELECT policy_group FROM policy_assignments WHERE org_id = $1 AND policy = $2 \
             AND revision_id = $3 ORDER BY assigned",
        )
        .bind(org_id)
        .bind(policy)
        .bind(revision)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| r.try_get("policy_group"))
        .collect::<Result<_, _>>()?;
        Ok(Some(StoredRevision { body, groups }))
    }

    /// Deletes a revision and its assignments (the policy stays); its document, or
    /// `NotFound`.
    pub async fn delete_policy_revision(
        &self,
        org_id: i64,
        policy: &str,
        revision: &str,
    ) -> StoreResult<String> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let body = revision_body(&mut *tx, org_id, policy, revision)
            .await?
            .ok_or(StoreError::NotFound)?;
        for group in assigned_groups(&mut tx, org_id, policy, Some(revision)).await? {
            let path = ObjectPath::policy_assignment(&group, policy);
            entries.append("delete", logged(path)?);
        }
        let path = ObjectPath::policy_revision(policy, revision);
        entries.append("delete", logged(path)?);
        sqlx::query(
            "DELETE FROM policy_revisions WHERE org_id = $1 AND policy = $2 AND revision_id = $3",
        )
        .bind(org_id)
        .bind(policy)
        .bind(revision)
        .execute(&mut *tx)
        .await?;
        entries.commit(self, tx).await?;
        Ok(body)
    }

    /// Every policy group with its assignments (empty for a group without any).
    pub async fn policy_groups(&self, org_id: i64) -> StoreResult<GroupAssignments> {
        let rows = sqlx::query(
            "SELECT g.name, a.policy, a.revision_id FROM policy_groups g \
             LEFT JOIN policy_assignments a ON a.org_id = g.org_id AND a.policy_group = g.name \
             WHERE g.org_id = $1",
        )
        .bind(org_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = GroupAssignments::new();
        for r in rows {
            let assignments = out.entry(r.try_get("name")?).or_default();
            let policy: Option<String> = r.try_get("policy")?;
            let revision: Option<String> = r.try_get("revision_id")?;
            if let (Some(policy), Some(revision)) = (policy, revision) {
                assignments.insert(policy, revision);
            }
        }
        Ok(out)
    }

    /// A group's assignments, or `None` when there is no such group.
    pub async fn policy_group(
        &self,
        org_id: i64,
        group: &str,
    ) -> StoreResult<Option<BTreeMap<String, String>>> {
        group_assignments(&self.read, org_id, group).await
    }

    /// Deletes a group and its assignments (policies and revisions stay); its assignments, or
    /// `NotFound`.
    pub async fn delete_policy_group(
        &self,
        org_id: i64,
        group: &str,
    ) -> StoreResult<BTreeMap<String, String>> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let assignments = group_assignments(&mut *tx, org_id, group)
            .await?
            .ok_or(StoreError::NotFound)?;
        for policy in assignments.keys() {
            let path = ObjectPath::policy_assignment(group, policy);
            entries.append("delete", logged(path)?);
        }
        entries.append("delete", logged(ObjectPath::policy_group(group))?);
        sqlx::query("DELETE FROM policy_groups WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        entries.commit(self, tx).await?;
        Ok(assignments)
    }

    /// The document of the revision of `policy` assigned to `group`.
    pub async fn assigned_revision(
        &self,
        org_id: i64,
        group: &str,
        policy: &str,
    ) -> StoreResult<Option<String>> {
        assigned_body(&self.read, org_id, group, policy).await
    }

    /// Assigns revision `revision` of `policy` to `group`, creating the policy, the group and
    /// the revision (from `body`) as needed; an existing revision is kept as it is.
    pub async fn assign_policy_revision(
        &self,
        org_id: i64,
        group: &str,
        policy: &str,
        revision: &str,
        body: &str,
    ) -> StoreResult<Assignment> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        ensure_policy(&mut tx, &mut entries, policy).await?;
        let current = group_assignments(&mut *tx, org_id, group).await?;
        if current.is_none() {
            sqlx::query("INSERT INTO policy_groups (org_id, name) VALUES ($1, $2)")
                .bind(org_id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            let path = ObjectPath::policy_group(group);
            entries.append("create", logged(path)?);
        }
        if revision_body(&mut *tx, org_id, policy, revision)
            .await?
            .is_none()
        {
            insert_revision(&mut tx, &mut entries, policy, revision, body).await?;
        }
        let was = current.as_ref().and_then(|c| c.get(policy));
        let outcome = match was {
            Some(_) => Assignment::Updated,
            None => Assignment::Created,
        };
        // `assigned` orders a revision's groups by when they were last assigned it.
        sqlx::query(
            "INSERT INTO policy_assignments (org_id, policy_group, policy, revision_id, assigned) \
             SELECT $1, $2, $3, $4, COALESCE(MAX(assigned), 0) + 1 FROM policy_assignments \
             WHERE org_id = $1 \
             ON CONFLICT (org_id, policy_group, policy) \
             DO UPDATE SET revision_id = excluded.revision_id, assigned = excluded.assigned",
        )
        .bind(org_id)
        .bind(group)
        .bind(policy)
        .bind(revision)
        .execute(&mut *tx)
        .await?;
        if was.map(String::as_str) != Some(revision) {
            let action = if was.is_some() { "update" } else { "create" };
            let path = ObjectPath::policy_assignment(group, policy);
            entries.append(action, logged(path)?);
        }
        entries.commit(self, tx).await?;
        Ok(outcome)
    }

    /// Removes `policy`'s assignment from `group` (the group, policy and revision stay); the
    /// revision's document, or `NotFound`.
    pub async fn unassign_policy(
        &self,
        org_id: i64,
        group: &str,
        policy: &str,
    ) -> StoreResult<String> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let body = assigned_body(&mut *tx, org_id, group, policy)
            .await?
            .ok_or(StoreError::NotFound)?;
        let path = ObjectPath::policy_assignment(group, policy);
        entries.append("delete", logged(path)?);
        sqlx::query(
            "DELETE FROM policy_assignments WHERE org_id = $1 AND policy_group = $2 \
             AND policy = $3",
        )
        .bind(org_id)
        .bind(group)
        .bind(policy)
        .execute(&mut *tx)
        .await?;
        entries.commit(self, tx).await?;
        Ok(body)
    }
    /// The identifiers of every cookbook artifact (of `name` only, when given), by name.
    pub async fn cookbook_artifacts(
        &self,
        org_id: i64,
        name: Option<&str>,
    ) -> StoreResult<BTreeMap<String, Vec<String>>> {
        let rows = match name {
            Some(name) => {
                sqlx::query(
                    "SELECT name, identifier FROM cookbook_artifacts WHERE org_id = $1 \
                     AND name = $2 ORDER BY identifier",
                )
                .bind(org_id)
                .bind(name)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT name, identifier FROM cookbook_artifacts WHERE org_id = $1 \
                     ORDER BY name, identifier",
                )
                .bind(org_id)
                .fetch_all(&self.read)
                .await?
            }
        };
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            out.entry(r.try_get("name")?)
                .or_default()
                .push(r.try_get("identifier")?);
        }
        Ok(out)
    }

    /// One artifact's stored document.
    pub async fn cookbook_artifact(
        &self,
        org_id: i64,
        name: &str,
        identifier: &str,
    ) -> StoreResult<Option<String>> {
        artifact_body(&self.read, org_id, name, identifier).await
    }

    /// Stores a new artifact; `Conflict` when it exists (artifacts never change),
    /// `UnknownChecksum` when it names a file the org has not uploaded.
    pub async fn create_cookbook_artifact(
        &self,
        org_id: i64,
        name: &str,
        identifier: &str,
        body: &str,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        if artifact_body(&mut *tx, org_id, name, identifier)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "INSERT INTO cookbook_artifacts (org_id, name, identifier, body) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(org_id)
        .bind(name)
        .bind(identifier)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        let key = artifact_key(name, identifier);
        super::cookbook_files::replace(&mut tx, org_id, &key, None, Some(body)).await?;
        let path = ObjectPath::cookbook_artifact(name, identifier);
        entries.append("create", logged(path)?);
        entries.commit(self, tx).await?;
        Ok(())
    }

    /// Deletes an artifact, releasing the files nothing else of the org references; its
    /// document, or `NotFound`.
    pub async fn delete_cookbook_artifact(
        &self,
        org_id: i64,
        name: &str,
        identifier: &str,
    ) -> StoreResult<String> {
        let mut tx = self.write.begin().await?;
        let mut entries = Entries::lock(self, &mut tx, org_id).await?;
        let body = artifact_body(&mut *tx, org_id, name, identifier)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "DELETE FROM cookbook_artifacts WHERE org_id = $1 AND name = $2 AND identifier = $3",
        )
        .bind(org_id)
        .bind(name)
        .bind(identifier)
        .execute(&mut *tx)
        .await?;
        let key = artifact_key(name, identifier);
        super::cookbook_files::replace(&mut tx, org_id, &key, Some(&body), None).await?;
        let path = ObjectPath::cookbook_artifact(name, identifier);
        entries.append("delete", logged(path)?);
        entries.commit(self, tx).await?;
        Ok(body)
    }
}

/// The key an artifact's files are recorded under (beside cookbook versions' paths).
fn artifact_key(name: &str, identifier: &str) -> String {
    format!("/cookbook_artifacts/{name}/{identifier}")
}
