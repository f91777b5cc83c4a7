//! Certificates from an ACME CA (Let's Encrypt by default) through `rustls-acme`: ordered at
//! the first start, kept in `cache_dir` so a restart serves the cached one, and renewed when a
//! third of their lifetime is left. The CA checks that we hold the domains by TLS-ALPN-01 on
//! the HTTPS port, or by HTTP-01 on the redirect listener.
use std::{future::Future, path::Path, sync::Arc};

use futures_util::StreamExt;
use rustls::{ClientConfig, RootCertStore, server::ResolvesServerCert};
use rustls_acme::{AcmeConfig, AcmeState, ResolvesServerCertAcme, UseChallenge};

use super::{
    TlsError, cache::PrivateDirCache, display, expiry::Expiry, provider, read_certificates,
};
use crate::config::{AcmeChallenge, AcmeSettings};

const CA_KEY: &str = "server.tls.acme.directory_ca_file";

/// The ACME client's state: what it has, and its next step (load the cache, order, renew).
pub struct AcmeCertificates {
    state: AcmeState<std::io::Error>,
    challenge: AcmeChallenge,
    expiry: Arc<Expiry>,
}

impl AcmeCertificates {
    /// Prepares the client; nothing is asked of the CA until [`drive`](Self::drive) runs.
    pub async fn new(settings: &AcmeSettings) -> Result<Self, TlsError> {
        let client = client_config(settings.directory_ca_file.as_deref()).await?;
        let expiry = Arc::new(Expiry::new("acme"));
        let cache = PrivateDirCache::open(&settings.cache_dir, expiry.clone()).await?;
        let challenge = match settings.challenge {
            AcmeChallenge::TlsAlpn01 => UseChallenge::TlsAlpn01,
            AcmeChallenge::Http01 => UseChallenge::Http01,
        };
        let state = AcmeConfig::new_with_client_config(&settings.domains, client)
            .contact(&settings.contact)
            .directory(settings.directory_url.as_str())
            .cache(cache)
            .challenge_type(challenge)
            .state();
        Ok(Self {
            state,
            challenge: settings.challenge,
            expiry,
        })
    }

    pub(super) fn expiry(&self) -> Arc<Expiry> {
        self.expiry.clone()
    }

    /// The certificate for handshakes: the current one, or the TLS-ALPN-01 answer to the CA.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        self.state.resolver()
    }

    /// Whether the CA validates on the HTTPS port (so `acme-tls/1` must be offered there).
    pub fn answers_tls_alpn(&self) -> bool {
        self.challenge == AcmeChallenge::TlsAlpn01
    }

    pub fn http01_answers(&self) -> Option<Http01Answers> {
        (self.challenge == AcmeChallenge::Http01).then(|| Http01Answers(self.state.resolver()))
    }

    /// Loads the cache, orders, deploys and renews, until `stop` resolves. Failed orders are
    /// retried with a growing pause (the library's backoff).
    pub async fn drive(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                event = self.state.next() => match event {
                    Some(Ok(done)) => tracing::info!(event = ?done, "ACME certificate"),
                    Some(Err(err)) => tracing::error!(error = %err, "ACME certificate: step failed, will retry"),
                    None => return,
                },
                () = &mut stop => return,
            }
        }
    }
}

/// The key authorizations the CA fetches from `/.well-known/acme-challenge/{token}`.
#[derive(Clone)]
pub struct Http01Answers(Arc<ResolvesServerCertAcme>);

impl Http01Answers {
    pub fn key_authorization(&self, token: &str) -> Option<String> {
        self.0.get_http_01_key_auth(token)
    }
}

/// How we reach the CA: the public roots, plus `directory_ca_file` when given.
async fn client_config(extra_root: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_root {
        let certs = read_certificates(CA_KEY, path, "CA certificate").await?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TlsError::Invalid {
                key: CA_KEY,
                detail: format!("{}: no usable CA certificate", display(path)),
            });
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Invalid {
            key: CA_KEY,
            detail: err.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
