//! Copying Policyfile objects: cookbook artifacts (their files as a cookbook version's), policy
//! revisions and the revision each policy group is assigned. Revisions and artifacts never
//! change on a Chef server, so one present on both sides is copied only when the replica's
//! differs (then it is replaced); policies and groups come into being with their first
//! revision or assignment, so their own paths only ever delete.
//!
//! Servers without Policyfile endpoints (goiardi, Chef servers before 12.1) are told apart
//! from a refusal: a replica that cannot hold them parks each with that reason; a primary
//! that has none lists none, and the replica's are then left alone rather than deleted.

use std::collections::BTreeSet;

use chef_sync_shared::ObjectPath;
use chef_sync_shared::objects::{CookbookFile, SEGMENTS};
use serde_json::{Map, Value};

use super::cookbooks::{comparable_manifest, manifest, put_with_files};
use super::sides::{Applied, Sides};
use crate::chef_client::{ChefError, ChefServer};

/// The listing that tells whether a server serves Policyfiles.
const PROBE: &str = "/policy_groups";

/// Whether an answer means "this server has no such endpoint" rather than a failure:
/// 404 or 405, or goiardi's 200 with a body that is not JSON.
pub fn not_served(e: &ChefError) -> bool {
    matches!(
        e,
        ChefError::NotFound | ChefError::Malformed(_) | ChefError::Rejected { status: 405, .. }
    )
}

/// A listing's object, `None` when the server does not serve it.
async fn listing(server: &ChefServer, rel: &str) -> Result<Option<Map<String, Value>>, ChefError> {
    match server.get(rel).await {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Ok(None),
        Err(e) if not_served(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every Policyfile object on one side; `None` when the server has no Policyfile endpoints.
/// Policies and groups are listed too, so that a reconcile can delete those the primary no
/// longer has.
pub async fn list(server: &ChefServer) -> Result<Option<BTreeSet<ObjectPath>>, ChefError> {
    let (Some(policies), Some(groups), Some(artifacts)) = (
        listing(server, "/policies").await?,
        listing(server, PROBE).await?,
        listing(server, "/cookbook_artifacts").await?,
    ) else {
        return Ok(None);
    };
    let keys = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut paths = BTreeSet::new();
    // A name that breaks the grammar cannot be addressed; it is left out as elsewhere.
    for (policy, entry) in &policies {
        paths.extend(ObjectPath::policy(policy));
        for revision in keys(entry.get("revisions")) {
            paths.extend(ObjectPath::policy_revision(policy, &revision));
        }
    }
    for (group, entry) in &groups {
        paths.extend(ObjectPath::policy_group(group));
        for policy in keys(entry.get("policies")) {
            paths.extend(ObjectPath::policy_assignment(group, &policy));
        }
    }
    for (name, entry) in &artifacts {
        let versions = entry.get("versions").and_then(Value::as_array);
        for version in versions.into_iter().flatten() {
            if let Some(id) = version.get("identifier").and_then(Value::as_str) {
                paths.extend(ObjectPath::cookbook_artifact(name, id));
            }
        }
    }
    Ok(Some(paths))
}

/// Makes the replica's object at `path` what the primary has.
pub async fn copy(
    sides: &Sides,
    path: &ObjectPath,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let copied = match path {
        ObjectPath::Policy { .. } | ObjectPath::PolicyGroup { .. } => {
            copy_container(sides, path).await
        }
        ObjectPath::PolicyRevision { policy, revision } => {
            copy_revision(sides, policy, revision, replica_has).await
        }
        ObjectPath::PolicyAssignment { group, policy } => {
            copy_assignment(sides, group, policy, replica_has).await
        }
        ObjectPath::CookbookArtifact { name, identifier } => {
            copy_artifact(sides, name, identifier, replica_has).await
        }
        other => Err(ChefError::Malformed(format!(
            "{other} is not a Policyfile object"
        ))),
    };
    match copied {
        Err(e) => Err(explained(sides, e).await),
        done => done,
    }
}

/// Removes the replica's object at `path` (a policy or group with everything in it).
pub async fn remove(sides: &Sides, path: &ObjectPath) -> Result<Applied, ChefError> {
    match sides.replica_delete(&path.to_string()).await {
        Err(e) => Err(explained(sides, e).await),
        done => done,
    }
}

/// A failure on a replica without Policyfile endpoints, said as that (so the parked object
/// tells the operator what to do); any other failure as it was.
async fn explained(sides: &Sides, e: ChefError) -> ChefError {
    if e.is_transient() {
        return e;
    }
    let why = match sides.replica.get(PROBE).await {
        Ok(Value::Object(_)) => return e,
        Ok(_) => "an answer that is not a listing".to_owned(),
        Err(probe) if not_served(&probe) => probe.to_string(),
        Err(_) => return e,
    };
    ChefError::Rejected {
        status: 404,
        message: format!(
            "the replica's Chef server has no Policyfile endpoints (GET {PROBE}: {why}); \
             Policyfile objects stay parked until it serves them (Chef Infra Server 12.1 or \
             later, chef-sync-server)"
        ),
    }
}

/// A policy or a group: present on the replica once its revisions or assignments are, so
/// only its removal is copied.
async fn copy_container(sides: &Sides, path: &ObjectPath) -> Result<Applied, ChefError> {
    let rel = path.to_string();
    if sides.primary_get(&rel).await?.is_none() {
        return sides.replica_delete(&rel).await;
    }
    Ok(Applied::Unchanged)
}

/// A revision as a document to compare and send: what the server adds on reading
/// (`policy_group_list`) left out.
pub fn revision_document(value: Value, rel: &str) -> Result<Map<String, Value>, ChefError> {
    let Value::Object(mut doc) = value else {
        return Err(ChefError::Malformed(format!(
            "{rel}: the answer is not an object"
        )));
    };
    doc.remove("policy_group_list");
    Ok(doc)
}

async fn copy_revision(
    sides: &Sides,
    policy: &str,
    revision: &str,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = format!("/policies/{policy}/revisions/{revision}");
    let Some(source) = sides.primary_get(&rel).await? else {
        return sides.replica_delete(&rel).await;
    };
    let groups = |doc: &Value| -> Vec<String> {
        doc.get("policy_group_list")
            .and_then(|g| serde_json::from_value::<Vec<String>>(g.clone()).ok())
            .unwrap_or_default()
    };
    // The groups the primary assigns this revision to: what is copied again after a
    // replacement (the replica's list is not kept by a replacement that fails half-way).
    let mut reassign = groups(&source);
    let wanted = revision_document(source, &rel)?;
    let mut replaced = false;
    if replica_has != Some(false)
        && let Some(current) = sides.replica_get(&rel).await?
    {
        reassign.extend(groups(&current));
        if revision_document(current, &rel)? == wanted {
            return Ok(Applied::Unchanged);
        }
        // Revisions never change on a Chef server: a different one under this id came from
        // elsewhere. It goes, with its assignments, which are copied again after it.
        sides.replica_delete(&rel).await?;
        replaced = true;
    }
    let body = Value::Object(wanted);
    match sides
        .replica_post(&format!("/policies/{policy}/revisions"), &body)
        .await
    {
        // Created since it was looked at: revisions are immutable, so it is this one.
        Ok(()) | Err(ChefError::Rejected { status: 409, .. }) => {}
        Err(e) => return Err(e),
    }
    if replaced {
        reassign.sort();
        reassign.dedup();
        for group in reassign {
            Box::pin(copy_assignment(sides, &group, policy, Some(false))).await?;
        }
    }
    Ok(Applied::Written)
}

async fn copy_assignment(
    sides: &Sides,
    group: &str,
    policy: &str,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = format!("/policy_groups/{group}/policies/{policy}");
    let Some(source) = sides.primary_get(&rel).await? else {
        return sides.replica_delete(&rel).await;
    };
    if !source.is_object() {
        return Err(ChefError::Malformed(format!(
            "{rel}: the primary's answer is not an object"
        )));
    }
    if replica_has != Some(false)
        && let Some(current) = sides.replica_get(&rel).await?
    {
        if current == source {
            return Ok(Applied::Unchanged);
        }
        // The same revision id with other content: an assignment never replaces a stored
        // revision, so the revision itself is put right first.
        let revision = source.get("revision_id").and_then(Value::as_str);
        if let Some(revision) = revision
            && current.get("revision_id").and_then(Value::as_str) == Some(revision)
        {
            Box::pin(copy_revision(sides, policy, revision, Some(true))).await?;
        }
    }
    sides.replica_put(&rel, &source).await?;
    Ok(Applied::Written)
}

/// The manifest without the server's file URLs, otherwise as the primary answered it.
fn without_file_urls(mut doc: Map<String, Value>) -> Value {
    for field in SEGMENTS.iter().copied().chain(["all_files"]) {
        if let Some(Value::Array(files)) = doc.get_mut(field) {
            for file in files.iter_mut().filter_map(Value::as_object_mut) {
                file.remove("url");
            }
        }
    }
    Value::Object(doc)
}

async fn copy_artifact(
    sides: &Sides,
    name: &str,
    identifier: &str,
    replica_has: Option<bool>,
) -> Result<Applied, ChefError> {
    let rel = format!("/cookbook_artifacts/{name}/{identifier}");
    let Some(source) = sides.primary_get(&rel).await? else {
        return sides.replica_delete(&rel).await;
    };
    let wanted = comparable_manifest(source.clone(), &rel)?;
    if replica_has != Some(false)
        && let Some(current) = sides.replica_get(&rel).await?
    {
        if comparable_manifest(current, &rel)? == wanted {
            return Ok(Applied::Unchanged);
        }
        // Artifacts never change either: a different one under this identifier is replaced.
        sides.replica_delete(&rel).await?;
    }
    let parsed = manifest(source.clone(), &rel)?;
    let files: Vec<&CookbookFile> = parsed.all_file_entries();
    let Value::Object(doc) = source else {
        return Err(ChefError::Malformed(format!("{rel}: not an object")));
    };
    let body = without_file_urls(doc);
    match put_with_files(sides, &rel, &rel, &body, &files).await {
        // Created since it was looked at, and artifacts are immutable: it is this one.
        Ok(()) | Err(ChefError::Rejected { status: 409, .. }) => Ok(Applied::Written),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_urls_go_and_everything_else_stays() {
        let doc = json!({"name": "app", "identifier": "abc", "extra": {"url": "kept"},
            "recipes": [{"name": "default.rb", "url": "http://p/x", "checksum": "c"}],
            "all_files": [{"name": "recipes/default.rb", "url": "http://p/x"}, 7]});
        let Value::Object(map) = doc else { panic!() };
        assert_eq!(
            without_file_urls(map),
            json!({"name": "app", "identifier": "abc", "extra": {"url": "kept"},
                "recipes": [{"name": "default.rb", "checksum": "c"}],
                "all_files": [{"name": "recipes/default.rb"}, 7]})
        );
    }

    #[test]
    fn a_revision_is_compared_without_its_group_list() {
        let read = json!({"revision_id": "1", "name": "app", "policy_group_list": ["dev"]});
        let doc = revision_document(read, "/policies/app/revisions/1").unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({"revision_id": "1", "name": "app"})
        );
        assert!(revision_document(json!([1]), "/x").is_err());
    }

    #[test]
    fn missing_endpoints_are_told_from_failures() {
        assert!(not_served(&ChefError::NotFound));
        assert!(not_served(&ChefError::Malformed("empty body".into())));
        assert!(not_served(&ChefError::Rejected {
            status: 405,
            message: String::new()
        }));
        assert!(!not_served(&ChefError::Rejected {
            status: 403,
            message: String::new()
        }));
        assert!(!not_served(&ChefError::transient("", false)));
    }
}
