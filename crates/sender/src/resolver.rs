//! Name resolution that only hands out addresses Hookline may connect to.
//!
//! reqwest connects to exactly the addresses this resolver returns, so filtering here is what
//! makes DNS rebinding impossible: there is no second lookup between the check and the connect.
//! Guarded by the sender tests `a_name_resolving_to_a_private_address_is_blocked_without_connecting`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use urlguard::UrlPolicy;

/// Looks a host name up. The system resolver in production; tests answer as they like.
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver (getaddrinfo through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|a| a.ip()).collect())
        })
    }
}

/// Resolves only `localhost` and `*.localhost` (to loopback, as RFC 6761 reserves them) and
/// sends no DNS query at all: for tests and air-gapped runs (`offline_dns`).
pub struct LoopbackOnlyLookup;

impl Lookup for LoopbackOnlyLookup {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let local = name == "localhost" || name.ends_with(".localhost");
        Box::pin(async move {
            if local {
                Ok(vec![
                    IpAddr::from([127, 0, 0, 1]),
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                ])
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "name resolution is off (offline_dns): only localhost names resolve",
                ))
            }
        })
    }
}

/// Why a name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("every address of the host is forbidden ({0})")]
    Blocked(IpAddr),
    #[error("the host name does not resolve")]
    Lookup(#[source] std::io::Error),
}

pub(crate) struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    policy: UrlPolicy,
}

impl GuardedResolver {
    pub(crate) fn new(lookup: Arc<dyn Lookup>, policy: UrlPolicy) -> GuardedResolver {
        GuardedResolver { lookup, policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = Arc::clone(&self.lookup);
        let policy = self.policy;
        Box::pin(async move {
            let found = lookup
                .lookup(name.as_str().to_owned())
                .await
                .map_err(ResolveError::Lookup)?;
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|ip| urlguard::may_connect(*ip, policy))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            match (allowed.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(first)) => {
                    Err(Box::new(ResolveError::Blocked(*first)) as Box<dyn std::error::Error + Send + Sync>)
                }
                (true, None) => Err(Box::new(ResolveError::Lookup(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no addresses",
                ))) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offline_lookup_resolves_localhost_names_only() {
        for name in ["localhost", "LOCALHOST.", "api.localhost"] {
            let found = LoopbackOnlyLookup
                .lookup(name.to_owned())
                .await
                .expect("a localhost name resolves");
            assert!(found.iter().all(IpAddr::is_loopback), "{name}: {found:?}");
        }
        for name in ["example.com", "localhost.example.com", "notlocalhost"] {
            assert!(
                LoopbackOnlyLookup.lookup(name.to_owned()).await.is_err(),
                "{name}"
            );
        }
    }
}
