//! Which TLS certificates chef-syncd and chef-sync-ctl accept. Chef servers elsewhere are
//! verified against the system's roots (`/etc/ssl/certs`, where an internal CA is added with
//! `update-ca-certificates`) and the bundled public ones. A Chef server on this host itself,
//! addressed as `https://127.0.0.1`, `https://[::1]` or `https://localhost`, is accepted with
//! whatever certificate it presents: Chef Infra Server answers there with a self-signed
//! certificate made out to its public name, its own local tools talk to it that way, and the
//! original chef-sync's `replica "https://127.0.0.1"` must keep working. Traffic to this host
//! never crosses a network, so nothing is lost by not checking it.

use std::time::Duration;

/// The two HTTP clients, with the daemon's timeouts; every request picks by its own URL, so a
/// file URL a local server hands out for another host is verified. Neither follows redirects:
/// a signed request's `X-Ops-*` headers would go along to wherever the server points (reqwest
/// drops only `Authorization` and cookies on a cross-host redirect), and an unsigned file
/// download has no business being sent elsewhere either. A redirect is answered as what it is,
/// a refusal (see `chef_client::classify`).
#[derive(Debug, Clone)]
pub struct Http {
    verified: reqwest::Client,
    this_host: reqwest::Client,
}

impl Http {
    /// Clients whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Http {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .redirect(reqwest::redirect::Policy::none())
        };
        Http {
            verified: builder().build().unwrap_or_default(),
            this_host: builder()
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap_or_default(),
        }
    }

    /// The client for a request to `url`.
    pub fn for_url(&self, url: &reqwest::Url) -> &reqwest::Client {
        if is_this_host_https(url) {
            &self.this_host
        } else {
            &self.verified
        }
    }
}

/// `https` to a loopback address or `localhost`.
pub fn is_this_host_https(url: &reqwest::Url) -> bool {
    if url.scheme() != "https" {
        return false;
    }
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(url: &str) -> bool {
        is_this_host_https(&reqwest::Url::parse(url).unwrap())
    }

    #[test]
    fn only_https_to_this_host_goes_unverified() {
        assert!(local("https://127.0.0.1"));
        assert!(local("https://127.0.0.1:8443/organizations/acme"));
        assert!(local("https://[::1]/organizations/acme"));
        assert!(local("https://LOCALHOST/x"));
        assert!(!local("http://127.0.0.1"));
        assert!(!local("https://chef.example.com"));
        assert!(!local("https://127.0.0.1.example.com"));
        assert!(!local("https://localhost.example.com"));
        assert!(!local("https://10.0.0.1"));
    }
}
