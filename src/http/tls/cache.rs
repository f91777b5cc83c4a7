//! The ACME cache on disk: the account key and each certificate with its private key, one file
//! each. rustls-acme's own `DirCache` writes them with the process umask (usually readable by
//! every user) and in place (a crash mid-write leaves a truncated account key). Here every
//! file is written readable by this user only, to a temporary file renamed over the old one,
//! and the directory must be private.
use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use base64::{Engine, prelude::BASE64_URL_SAFE_NO_PAD};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use rustls_acme::{AccountCache, CertCache};
use sha2::{Digest, Sha256};

use super::{TlsError, display, expiry::Expiry};

const CACHE_KEY: &str = "server.tls.acme.cache_dir";

pub struct PrivateDirCache {
    dir: PathBuf,
    /// Told of every certificate loaded or stored: the one rustls-acme serves.
    expiry: Arc<Expiry>,
}

impl PrivateDirCache {
    /// Creates `dir` (mode 0700) if missing. An existing directory that other users can read
    /// or enter refuses the start: it may already have handed out the keys, and changing its
    /// mode could break whoever shares it on purpose, so the operator decides.
    pub async fn open(dir: &Path, expiry: Arc<Expiry>) -> Result<Self, TlsError> {
        let owned = dir.to_owned();
        let opened = tokio::task::spawn_blocking(move || create_private_dir(&owned))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        match opened {
            Ok(()) => Ok(Self {
                dir: dir.to_owned(),
                expiry,
            }),
            Err(cause) if cause.kind() == io::ErrorKind::PermissionDenied => {
                Err(TlsError::Invalid {
                    key: CACHE_KEY,
                    detail: format!("{}: {cause}", display(dir)),
                })
            }
            Err(cause) => Err(TlsError::File {
                key: CACHE_KEY,
                path: display(dir),
                cause,
            }),
        }
    }

    async fn read(&self, name: String) -> io::Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        match tokio::fs::read(path).await {
            Ok(contents) => Ok(Some(contents)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// rustls-acme's PEM: the private key, then the chain, leaf first.
    fn serving(&self, pem: &[u8]) {
        if let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(pem).next() {
            self.expiry.serving(&leaf);
        }
    }

    async fn write(&self, name: String, contents: &[u8]) -> io::Result<()> {
        let (dir, contents) = (self.dir.clone(), contents.to_vec());
        tokio::task::spawn_blocking(move || write_private(&dir, &name, &contents))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)))
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mode {:o} lets other users read the private keys it holds: chmod 700 it",
                    mode & 0o777
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `name` in `dir` as a whole or not at all: a temporary file (mode 0600), synced, then
/// renamed over the old one.
fn write_private(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    // Left by a crash: created anew, so that its mode is ours.
    match std::fs::remove_file(&tmp) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    // The rename itself, durable.
    std::fs::File::open(dir)?.sync_all()
}

/// rustls-acme's file names (so a cache its `DirCache` wrote still loads): a hash of what the
/// entry is for.
fn file_name(kind: &str, parts: &[String], directory_url: &str) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(directory_url.as_bytes());
    format!(
        "cached_{kind}_{}",
        BASE64_URL_SAFE_NO_PAD.encode(hash.finalize())
    )
}

#[async_trait::async_trait]
impl CertCache for PrivateDirCache {
    type EC = io::Error;

    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> io::Result<Option<Vec<u8>>> {
        let cert = self.read(file_name("cert", domains, directory_url)).await?;
        if let Some(pem) = &cert {
            self.serving(pem);
        }
        Ok(cert)
    }

    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> io::Result<()> {
        // Already deployed when rustls-acme stores it.
        self.serving(cert);
        self.write(file_name("cert", domains, directory_url), cert)
            .await
    }
}

#[async_trait::async_trait]
impl AccountCache for PrivateDirCache {
    type EA = io::Error;

    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> io::Result<Option<Vec<u8>>> {
        self.read(file_name("account", contact, directory_url))
            .await
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> io::Result<()> {
        self.write(file_name("account", contact, directory_url), account)
            .await
    }
}
