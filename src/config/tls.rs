//! `server.tls`: HTTPS served by this process, from certificate files or from an ACME CA, and
//! the plain-HTTP listener that redirects to it. Off unless configured: development stays plain
//! HTTP, and behind a TLS-terminating proxy none of this is needed.
use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Let's Encrypt's production directory: the default CA.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first), with `key_file`. Re-read when either file changes.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`'s leaf.
    pub key_file: Option<PathBuf>,
    /// Certificates obtained and renewed from an ACME CA instead of files.
    pub acme: Option<AcmeSettings>,
    /// Where a plain-HTTP listener answers every request with a permanent redirect to the https
    /// URL (and serves ACME HTTP-01 challenges), e.g. `0.0.0.0:80`. Unset: no such listener.
    pub redirect_http: Option<SocketAddr>,
    /// How often the certificate files are checked for a change.
    #[serde(default = "default_reload_interval")]
    pub reload_interval_secs: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            acme: None,
            redirect_http: None,
            reload_interval_secs: default_reload_interval(),
        }
    }
}

fn default_reload_interval() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// The names the certificate is for; each must resolve to this service.
    pub domains: Vec<String>,
    /// How the CA reaches the operator (expiry notices), e.g. `mailto:ops@example.com`.
    #[serde(default)]
    pub contact: Vec<String>,
    #[serde(default = "default_directory")]
    pub directory_url: url::Url,
    /// Where the account key and certificates are kept, so a restart does not order anew.
    /// Holds private keys: created readable by this user only, and refused if others can.
    pub cache_dir: PathBuf,
    /// A PEM root trusted for the directory besides the public ones (a private or test CA).
    pub directory_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub challenge: AcmeChallenge,
}

fn default_directory() -> url::Url {
    // A constant that parses.
    url::Url::parse(LETS_ENCRYPT_DIRECTORY).unwrap_or_else(|_| unreachable!())
}

/// How the CA checks that we control the domains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    /// On the HTTPS port itself (443 for a public CA): no other port needed.
    #[default]
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// On port 80, through the `redirect_http` listener.
    #[serde(rename = "http-01")]
    Http01,
}

impl TlsSettings {
    /// Whether this process serves HTTPS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some() || self.acme.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert_file, &self.key_file, &self.acme) {
            (Some(_), Some(_), None) | (None, None, _) => {}
            (_, _, Some(_)) => {
                return Err(ConfigError::new(
                    "server.tls: set either cert_file and key_file or acme, not both",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "server.tls: cert_file and key_file go together (set both)",
                ));
            }
        }
        if self.redirect_http.is_some() && !self.enabled() {
            return Err(ConfigError::new(
                "server.tls.redirect_http: redirects to https need TLS on (cert_file and key_file, or acme)",
            ));
        }
        if !(1..=3_600).contains(&self.reload_interval_secs) {
            return Err(ConfigError::new(
                "server.tls.reload_interval_secs must be between 1 and 3600",
            ));
        }
        if let Some(acme) = &self.acme {
            acme.validate(self.redirect_http.is_some())?;
        }
        Ok(())
    }
}

impl AcmeSettings {
    fn validate(&self, redirect_listener: bool) -> Result<(), ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::new(
                "server.tls.acme.domains: name at least one domain",
            ));
        }
        if let Some(bad) = self.domains.iter().find(|d| !is_dns_name(d)) {
            return Err(ConfigError::new(format!(
                "server.tls.acme.domains: {bad:?} is not a DNS name"
            )));
        }
        if let Some(bad) = self.contact.iter().find(|c| !c.contains(':')) {
            return Err(ConfigError::new(format!(
                "server.tls.acme.contact: {bad:?} is not a URL (write mailto:{bad})"
            )));
        }
        if self.directory_url.scheme() != "https" {
            return Err(ConfigError::new(
                "server.tls.acme.directory_url must be an https URL",
            ));
        }
        if self.challenge == AcmeChallenge::Http01 && !redirect_listener {
            return Err(ConfigError::new(
                "server.tls.acme.challenge = \"http-01\" is answered on port 80: set server.tls.redirect_http",
            ));
        }
        Ok(())
    }
}

/// A hostname as a CA accepts it: dot-separated labels of letters, digits and hyphens.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_dns_name;

    #[test]
    fn dns_names_are_labels_of_letters_digits_and_hyphens() {
        assert!(is_dns_name("blog.example.com"));
        assert!(is_dns_name("localhost"));
        assert!(!is_dns_name("*.example.com"));
        assert!(!is_dns_name("example..com"));
        assert!(!is_dns_name("-bad.example"));
        assert!(!is_dns_name("https://example.com"));
    }
}
