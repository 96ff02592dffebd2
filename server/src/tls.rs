//! The optional HTTPS listener (`tls_listen`). The original chef-sync's replica setting
//! defaults to `https://127.0.0.1`, where Chef Infra Server answers through its nginx with a
//! self-signed certificate; chef-sync-server does the same here, so that default reaches a
//! local server. Without a certificate of the operator's the server makes a self-signed one
//! on first start, kept beside its data, as Chef Infra Server does at `reconfigure`.
//!
//! Handshakes run on tasks of their own (bounded in number and time), so a peer that opens a
//! connection and never speaks holds up nobody else's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// A handshake not done in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const HANDSHAKES: usize = 256;

/// Why the TLS listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading, writing or binding failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The certificate or key is unusable.
    #[error("{0}")]
    Certificate(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TlsError {
    let what = what.into();
    move |source| TlsError::Io { what, source }
}

/// Where the certificate and key are: the configured files, or `DATA_DIR/tls/`.
pub fn paths(data_dir: &Path, cert: Option<&Path>, key: Option<&Path>) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (
        cert.map_or_else(|| dir.join("server.crt"), Path::to_path_buf),
        key.map_or_else(|| dir.join("server.key"), Path::to_path_buf),
    )
}

/// Makes a self-signed certificate for this host (localhost, 127.0.0.1, ::1 and `names`)
/// unless both files exist; the key is written readable by its owner only. Returns whether
/// one was made.
pub fn ensure_certificate(cert: &Path, key: &Path, names: &[String]) -> Result<bool, TlsError> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    if cert.exists() || key.exists() {
        return Err(TlsError::Certificate(format!(
            "only one of {} and {} exists; give both or neither",
            cert.display(),
            key.display()
        )));
    }
    let mut subjects = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    subjects.extend(names.iter().filter(|n| !n.is_empty()).cloned());
    let made = rcgen::generate_simple_self_signed(subjects)
        .map_err(|e| TlsError::Certificate(format!("cannot make a certificate: {e}")))?;
    for (path, text, private) in [
        (cert, made.cert.pem(), false),
        (key, made.key_pair.serialize_pem(), true),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        }
        write_file(path, &text, private).map_err(io(format!("write {}", path.display())))?;
    }
    Ok(true)
}

fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if private { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The rustls configuration of the certificate chain and key in these PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Certificate(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Certificate(format!("{}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// Connections that finished their TLS handshake, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Binds `addr` and starts accepting with `config`.
    pub async fn bind(addr: &str, config: Arc<ServerConfig>) -> Result<TlsListener, TlsError> {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(io(format!("tls_listen {addr}: cannot listen")))?;
        let local = tcp.local_addr().map_err(io("tls_listen"))?;
        let (tx, ready) = mpsc::channel(HANDSHAKES);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }

    /// The bound address, for the start-up log line.
    pub fn local_addr_text(&self) -> String {
        self.local.to_string()
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "tls_listen: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // As on the plain listener: no waiting for delayed ACKs at the end of an answer.
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handed = ready.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = handed.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
        if ready.is_closed() {
            return;
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends with the listener: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_with_a_private_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path(), None, None);
        assert!(ensure_certificate(&cert, &key, &["chef.example".into()]).unwrap());
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = std::fs::read_to_string(&cert).unwrap();
        assert!(!ensure_certificate(&cert, &key, &[]).unwrap());
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), first);
        server_config(&cert, &key).unwrap();
    }

    #[test]
    fn half_a_pair_or_a_broken_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = paths(dir.path(), None, None);
        std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(ensure_certificate(&cert, &key, &[]).is_err());
        std::fs::write(&key, "not a key").unwrap();
        let err = server_config(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("server.crt"), "{err}");
    }
}
