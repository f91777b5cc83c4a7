//! The certificate from `server.tls.cert_file` and `key_file`, re-read when either changes: a
//! renewed certificate (certbot, cert-manager, a secret mount) is served without a restart.
//! A new pair that does not load is logged and the previous one kept.
use std::{
    fmt,
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use rustls::{
    pki_types::{PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use super::{TlsError, display, expiry::Expiry, provider, read_certificates, read_file};

const CERT_KEY: &str = "server.tls.cert_file";
const KEY_KEY: &str = "server.tls.key_file";

/// Serves the current pair to every handshake; swapped atomically on reload.
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    current: ArcSwap<CertifiedKey>,
    /// The files as last read, to notice a change without re-reading them.
    seen: Mutex<Stamp>,
    expiry: Arc<Expiry>,
}

/// What identifies each file's contents without reading them: a change of either file means a
/// new pair.
type Stamp = [Option<FileStamp>; 2];

/// Modification time and length, plus (on Unix) the inode and the change time: a renewal of
/// the same length within the clock's resolution, or a copy that keeps the modification time
/// (`cp -p`, a secret mount swapping a symlink), still changes one of those.
#[derive(Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    changed: (i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (inode, changed) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), (meta.ctime(), meta.ctime_nsec()))
        };
        #[cfg(not(unix))]
        let (inode, changed) = (0, (0, 0));
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
            changed,
        }
    }
}

impl CertFiles {
    /// Reads and checks the pair; `every` is how often [`watch`](Self::watch) looks again.
    pub async fn load(cert: &Path, key: &Path, every: Duration) -> Result<Self, TlsError> {
        let seen = stamp(cert, key).await;
        let pair = read_pair(cert, key).await?;
        warn_if_key_is_readable_by_others(key).await;
        let expiry = Arc::new(Expiry::new("files"));
        expiry.serving(leaf(&pair));
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            every,
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new(seen),
            expiry,
        })
    }

    pub(super) fn expiry(&self) -> Arc<Expiry> {
        self.expiry.clone()
    }

    /// Checks the files every `every` until `stop` resolves, loading a changed pair.
    pub async fn watch(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.reload_if_changed().await,
                () = &mut stop => return,
            }
        }
    }

    /// Loads the pair if either file changed since last seen. A failure is logged once per
    /// change (a cert written before its key loads on the next change).
    async fn reload_if_changed(&self) {
        let now = stamp(&self.cert, &self.key).await;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return;
            }
            *seen = now;
        }
        match read_pair(&self.cert, &self.key).await {
            Ok(pair) => {
                self.expiry.serving(leaf(&pair));
                self.current.store(Arc::new(pair));
                tracing::info!(cert_file = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS certificate files changed but do not load: still serving the previous certificate");
            }
        }
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl fmt::Debug for CertFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertFiles")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

async fn stamp(cert: &Path, key: &Path) -> Stamp {
    let of = |path: &Path| {
        let path = path.to_owned();
        async move {
            let meta = tokio::fs::metadata(path).await.ok()?;
            Some(FileStamp::of(&meta))
        }
    };
    [of(cert).await, of(key).await]
}

/// The key file should be this user's alone; others reading it can impersonate the service.
/// A warning, not a refusal: the file may belong to another tool (certbot, a secret mount)
/// whose choice of mode this process should not overrule.
async fn warn_if_key_is_readable_by_others(key: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = tokio::fs::metadata(key).await
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key_file = %key.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "{KEY_KEY} can be read by other users: chmod 600 it"
            );
        }
    }
}

/// The first certificate of the chain (there is one: [`read_certificates`] checks).
fn leaf(pair: &CertifiedKey) -> &rustls::pki_types::CertificateDer<'static> {
    &pair.cert[0]
}

/// The chain and its key, checked to belong together.
async fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(CERT_KEY, cert, "certificate").await?;
    let key_pem = read_file(KEY_KEY, key).await?;
    // The parse error is not shown: it could quote the key file.
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoPem {
        key: KEY_KEY,
        path: display(key),
        what: "private key",
    })?;
    match CertifiedKey::from_der(chain, private, &provider()) {
        Ok(pair) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch),
        Err(rustls::Error::InvalidCertificate(err)) => Err(TlsError::Invalid {
            key: CERT_KEY,
            detail: format!("{}: {err}", display(cert)),
        }),
        Err(_) => Err(TlsError::UnusableKey { path: display(key) }),
    }
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[tokio::test]
    async fn a_file_replaced_with_the_same_length_and_modification_time_is_a_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "certificate one").unwrap();
        std::fs::write(&key, "key").unwrap();
        let before = stamp(&cert, &key).await;
        let modified = std::fs::metadata(&cert).unwrap().modified().unwrap();

        // A renewal as a tool that keeps timestamps does it: same length, same mtime.
        let new = dir.path().join("cert.new");
        std::fs::write(&new, "certificate two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        std::fs::rename(&new, &cert).unwrap();

        let after = stamp(&cert, &key).await;
        assert_eq!(
            before[0].as_ref().map(|s| (s.modified, s.len)),
            after[0].as_ref().map(|s| (s.modified, s.len)),
            "the old stamp could not tell"
        );
        assert_ne!(before, after);
    }
}
