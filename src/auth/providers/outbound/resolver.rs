//! Name resolution that keeps only public addresses. It runs for every connection the
//! provider client opens, so a name that is re-pointed after start-up (DNS rebinding) is
//! caught where it matters: at connection time.
use std::net::SocketAddr;

use openidconnect::reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{NotPublic, addresses::non_public};

pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // Drop what is not public; a name with a public address left still works (a
            // hostile record mixing both cannot steer us to the private one).
            let mut refused = None;
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match non_public(addr.ip()) {
                    Some(reason) => {
                        refused = Some((addr.ip(), reason));
                        false
                    }
                    None => true,
                })
                .collect();
            match (public.is_empty(), refused) {
                (true, Some((ip, reason))) => Err(Box::new(NotPublic { host, ip, reason }) as _),
                _ => Ok(Box::new(public.into_iter()) as Addrs),
            }
        })
    }
}
