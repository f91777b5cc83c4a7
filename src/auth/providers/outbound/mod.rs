//! The one way ironquill talks to identity providers: no redirects, timeouts, no proxy,
//! public addresses only (unless the provider is configured as on a private network), and a
//! cap on the size of every answer, so a hostile provider can neither reach inside our
//! network through us nor exhaust our memory.
use std::{future::Future, net::IpAddr, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse, reqwest};

mod addresses;
mod resolver;

/// The largest answer read from a provider. Discovery documents and key sets are a few KiB;
/// a megabyte leaves room for the largest real ones.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The address a provider's host stands for is not public.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {ip} is a {reason} address (set allow_private_network to allow it)")]
pub struct NotPublic {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    NotPublic(#[from] NotPublic),
    #[error("the answer exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("not a valid request: {0}")]
    Request(String),
    /// Connection, TLS, timeout or read failures, with their causes (reqwest's own message
    /// leaves them out).
    #[error("{0}")]
    Transport(String),
}

impl OutboundError {
    fn from_reqwest(err: reqwest::Error) -> Self {
        // The resolver's refusal arrives wrapped in reqwest's connect error: surface it.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut chain = Vec::new();
        while let Some(e) = source {
            if let Some(refused) = e.downcast_ref::<NotPublic>() {
                return OutboundError::NotPublic(NotPublic {
                    host: refused.host.clone(),
                    ip: refused.ip,
                    reason: refused.reason,
                });
            }
            chain.push(e.to_string());
            source = e.source();
        }
        OutboundError::Transport(chain.join(": "))
    }
}

/// The HTTP client for one provider.
#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    allow_private_network: bool,
}

impl ProviderHttp {
    pub fn new(allow_private_network: bool) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            // Following redirects would let a provider (or whoever answers for it) send us
            // elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, out of the address guard's reach.
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        if !allow_private_network {
            builder = builder.dns_resolver(Arc::new(resolver::PublicOnly));
        }
        let client = builder
            .build()
            .context("could not build the identity-provider HTTP client")?;
        Ok(Self {
            client,
            allow_private_network,
        })
    }

    /// Sends `request` and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| OutboundError::Request(e.to_string()))?;
        self.check_literal_address(request.url())?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(OutboundError::from_reqwest)?;
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(OutboundError::TooLarge);
        }
        let mut builder = openidconnect::http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        // Counted as it arrives: a chunked answer declares no length.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(OutboundError::from_reqwest)?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(OutboundError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| OutboundError::Request(e.to_string()))
    }

    /// An address written in the URL is connected to without resolution, so the resolver
    /// never sees it: it is judged here.
    fn check_literal_address(&self, url: &url::Url) -> Result<(), OutboundError> {
        if self.allow_private_network {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match addresses::non_public(ip) {
            Some(reason) => Err(NotPublic {
                host: ip.to_string(),
                ip,
                reason,
            }
            .into()),
            None => Ok(()),
        }
    }
}

/// What sending through the provider client returns, for the clients built on it.
pub type Sending<'c> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

/// So the `openidconnect` and `oauth2` clients send through the guard too.
impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = OutboundError;
    type Future = Sending<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> HttpRequest {
        openidconnect::http::Request::builder()
            .uri(url)
            .body(Vec::new())
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[tokio::test]
    async fn literal_private_addresses_are_refused_without_connecting() {
        let http = ProviderHttp::new(false).expect("client");
        for url in [
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:10.0.0.1]/",
            "http://2130706433/",
        ] {
            let err = http.send(get(url)).await.expect_err(url);
            assert!(matches!(err, OutboundError::NotPublic(_)), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let http = ProviderHttp::new(false).expect("client");
        let err = http
            .send(get("http://localhost:1/"))
            .await
            .expect_err("localhost is loopback");
        assert!(matches!(err, OutboundError::NotPublic(_)), "{err}");
    }

    #[tokio::test]
    async fn a_private_network_provider_may_use_private_addresses() {
        let http = ProviderHttp::new(true).expect("client");
        // Nothing listens on port 1: the connection is attempted, and refused by the peer.
        let err = http
            .send(get("http://127.0.0.1:1/"))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, OutboundError::Transport(_)), "{err}");
    }
}
