//! Both ends of an org pair as the engine uses them: reads that take a 404 for "absent",
//! writes to the replica, and what applying one object did. The servers retry for themselves.

use std::sync::Arc;

use serde_json::Value;

use super::offers::Offer;
use super::progress::Progress;
use crate::chef_client::{ChefError, ChefServer};
use crate::metrics::OrgMetrics;

/// Both ends of an org pair.
#[derive(Debug, Clone)]
pub struct Sides {
    /// Where objects come from.
    pub primary: ChefServer,
    /// Where they go.
    pub replica: ChefServer,
    /// Where outcomes are counted.
    pub metrics: Option<OrgMetrics>,
    /// Told of every object applied.
    pub progress: Arc<Progress>,
    /// Whether the replica offers the bulk write (`engine::bulk_write`).
    pub bulk_write: Arc<Offer>,
}

/// What applying a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written to the replica.
    Written,
    /// The replica already had it.
    Unchanged,
    /// Removed from the replica (or it was not there).
    Deleted,
}

impl Sides {
    /// GET from `server`; `None` for a 404.
    pub async fn get(&self, server: &ChefServer, rel: &str) -> Result<Option<Value>, ChefError> {
        match server.get(rel).await {
            Ok(v) => Ok(Some(v)),
            Err(ChefError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET from the primary.
    pub async fn primary_get(&self, rel: &str) -> Result<Option<Value>, ChefError> {
        self.get(&self.primary, rel).await
    }

    /// GET from the replica.
    pub async fn replica_get(&self, rel: &str) -> Result<Option<Value>, ChefError> {
        self.get(&self.replica, rel).await
    }

    /// DELETE on the replica (a 404 counts as done).
    pub async fn replica_delete(&self, rel: &str) -> Result<Applied, ChefError> {
        self.replica.delete(rel).await?;
        Ok(Applied::Deleted)
    }

    /// PUT on the replica.
    pub async fn replica_put(&self, rel: &str, body: &Value) -> Result<(), ChefError> {
        self.replica.put(rel, body).await.map(|_| ())
    }

    /// POST on the replica.
    pub async fn replica_post(&self, rel: &str, body: &Value) -> Result<(), ChefError> {
        self.replica.post(rel, body).await.map(|_| ())
    }
}
