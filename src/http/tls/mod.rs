//! HTTPS served by this process: rustls (TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1 by ALPN) with the
//! certificate from files that are re-read when they change ([`files`]) or from an ACME CA
//! ([`acme`]). The handshake runs inside our own serve loop, under its connection defences.
use std::{future::Future, io, path::Path, sync::Arc};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, pem::PemObject},
    server::{ResolvesServerCert, ServerConnection},
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;

use crate::config::TlsSettings;

pub mod acme;
mod cache;
mod expiry;
mod files;

pub use acme::{AcmeCertificates, Http01Answers};
pub use files::CertFiles;

/// ALPN name of the ACME TLS-ALPN-01 validation (RFC 8737).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A configuration problem found while setting TLS up: one line naming the key, never any key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The cause is part of the line (not a separate source), so it is shown once.
    #[error("{key}: {path}: {cause}")]
    File {
        key: &'static str,
        path: String,
        cause: io::Error,
    },
    #[error("{key}: {path} holds no PEM {what}")]
    NoPem {
        key: &'static str,
        path: String,
        what: &'static str,
    },
    #[error(
        "server.tls.key_file: {path} is not a private key rustls can use (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519)"
    )]
    UnusableKey { path: String },
    #[error("server.tls.key_file does not belong to the certificate in server.tls.cert_file")]
    KeyMismatch,
    #[error("{key}: {detail}")]
    Invalid { key: &'static str, detail: String },
}

/// The one crypto provider of this build, named rather than looked up from process-wide state.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the HTTPS listener needs: the handshake configuration, and what keeps its certificate
/// current (run by [`CertificateSource::maintain`] next to the server).
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub source: CertificateSource,
}

/// Where the served certificate comes from.
pub enum CertificateSource {
    Files(Arc<CertFiles>),
    Acme(AcmeCertificates),
}

impl Tls {
    /// Loads the certificate files, or prepares the ACME client, as `settings` say. `None` when
    /// TLS is off. Fails on a missing, unreadable or mismatched file.
    pub async fn from_settings(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        if let Some(acme) = &settings.acme {
            let certificates = AcmeCertificates::new(acme).await?;
            let mut alpn = http_alpn();
            if certificates.answers_tls_alpn() {
                alpn.push(ACME_TLS_ALPN.to_vec());
            }
            let acceptor = TlsAcceptor::new(certificates.resolver(), alpn);
            return Ok(Some(Self {
                acceptor,
                source: CertificateSource::Acme(certificates),
            }));
        }
        let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
            return Ok(None);
        };
        let every = std::time::Duration::from_secs(settings.reload_interval_secs);
        let files = Arc::new(CertFiles::load(cert, key, every).await?);
        Ok(Some(Self {
            acceptor: TlsAcceptor::new(files.clone(), http_alpn()),
            source: CertificateSource::Files(files),
        }))
    }

    /// Answers to HTTP-01 challenges, when ACME validates that way.
    pub fn http01_answers(&self) -> Option<Http01Answers> {
        match &self.source {
            CertificateSource::Acme(acme) => acme.http01_answers(),
            CertificateSource::Files(_) => None,
        }
    }
}

impl CertificateSource {
    /// Keeps the certificate current until `stop` resolves: watches the files, or orders and
    /// renews from the CA; and checks hourly that it is not about to expire.
    pub async fn maintain(self, stop: impl Future<Output = ()>) {
        let expiry = match &self {
            CertificateSource::Files(files) => files.expiry(),
            CertificateSource::Acme(acme) => acme.expiry(),
        };
        let checks = async {
            let mut ticks = tokio::time::interval(expiry::CHECK_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                expiry.check();
            }
        };
        let maintain = async {
            match self {
                CertificateSource::Files(files) => files.watch(stop).await,
                CertificateSource::Acme(acme) => acme.drive(stop).await,
            }
        };
        tokio::select! {
            () = maintain => {}
            () = checks => {}
        }
    }
}

/// HTTP/2 preferred, HTTP/1.1 for the rest (a client offering no ALPN gets HTTP/1.1 too).
fn http_alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The server side of the handshake. Cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl TlsAcceptor {
    fn new(resolver: Arc<dyn ResolvesServerCert>, alpn: Vec<Vec<u8>>) -> Self {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            // The ring provider supports both versions: this cannot fail.
            .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = alpn;
        Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// Completes the handshake on `io`. `None` when the connection was an ACME TLS-ALPN-01
    /// validation: the handshake itself was the answer, and there is nothing to serve.
    pub async fn accept<IO>(&self, io: IO) -> io::Result<Option<TlsStream<IO>>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut stream = self.inner.accept(io).await?;
        if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
            let _ = stream.shutdown().await;
            return Ok(None);
        }
        Ok(Some(stream))
    }
}

/// Whether the client and we agreed on HTTP/2.
pub fn negotiated_h2(conn: &ServerConnection) -> bool {
    conn.alpn_protocol() == Some(b"h2")
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The certificates of the PEM file at `path` (for `key`): at least one.
async fn read_certificates(
    key: &'static str,
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(key, path).await?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Invalid {
            key,
            detail: format!("{}: {err}", display(path)),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            key,
            path: display(path),
            what,
        });
    }
    Ok(certs)
}

async fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|cause| TlsError::File {
        key,
        path: display(path),
        cause,
    })
}
