//! The state every request handler, middleware and metric reads: built once at start and
//! passed by `State`. Routes, authentication and metrics depend on this module; `app` builds
//! the router on top of them.

use std::sync::Arc;
use std::time::Duration;

use crate::blob::BlobStore;
use crate::config::Config;
use crate::file_url::UrlSigner;
use crate::store::{Store, StoreError};

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings, loaded once.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// Cookbook file contents.
    pub blobs: BlobStore,
    /// Signs and checks the pre-signed file URLs.
    pub urls: UrlSigner,
    /// Parsed public keys.
    pub keys: Arc<crate::auth::KeyCache>,
    /// Signature checks that try several keys run on this many blocking threads at most (one
    /// core fewer than the machine has, at least one): requests beyond wait without using CPU,
    /// so a flood of junk signatures always leaves a core to every other request.
    pub verify_slots: Arc<tokio::sync::Semaphore>,
    /// Request and feed metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once the server is shutting down: long-polls answer at once instead of holding the
    /// shutdown for up to their whole wait.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// The cookbook dependency solver and the universes it keeps.
    pub depsolver: Arc<crate::depsolver::Depsolver>,
}

impl AppState {
    /// Builds the state: the blob backend from the config, and the file-URL key shared by
    /// every server process over the same database.
    pub async fn new(config: Config, store: Store) -> Result<AppState, StoreError> {
        let fresh: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let key = store.shared_secret("file_url_key", &fresh).await?;
        let urls = UrlSigner::new(key.as_bytes(), Duration::from_secs(config.file_url_ttl))
            .map_err(|e| StoreError::Refused(format!("file URL key unusable: {e}")))?;
        Ok(AppState {
            blobs: BlobStore::from_config(&config, &store),
            config: Arc::new(config),
            store,
            urls,
            keys: Arc::default(),
            verify_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get().saturating_sub(1))
                    .max(1),
            )),
            metrics: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            depsolver: Arc::default(),
        })
    }
}
