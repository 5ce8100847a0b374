//! Where a remote credgate is, and how much its TLS certificate is trusted: parsed once
//! from the request, kept in a connection so its pairing can be revoked later.

use serde::{Deserialize, Serialize};

use crate::ssh::{Host, Port};

/// An `http`/`https` URL with a host and nothing else but an optional port and path
/// prefix (no credentials, query or fragment). Stored as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RemoteEndpoint {
    url: reqwest::Url,
    host: Host,
}

impl RemoteEndpoint {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not carry credentials (send the API key as remote_api_key)".to_owned(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".to_owned());
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => Host::parse(name),
            Some(url::Host::Ipv4(ip)) => Host::parse(&ip.to_string()),
            Some(url::Host::Ipv6(ip)) => Host::parse(&ip.to_string()),
            None => return Err("must name a host".to_owned()),
        }
        .map_err(|m| format!("host: {m}"))?;
        Ok(Self { url, host })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port the URL names, or its scheme's default.
    pub fn port(&self) -> Port {
        let port = self.url.port_or_known_default().unwrap_or(443);
        Port::parse(i64::from(port)).unwrap_or(Port::SSH)
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The host name to pin to a checked address (none for an IP literal).
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }

    /// `path` (starting with `/api/`) under the URL's own path prefix.
    pub fn join(&self, path: &str) -> reqwest::Url {
        let mut url = self.url.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

impl TryFrom<String> for RemoteEndpoint {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<RemoteEndpoint> for String {
    fn from(endpoint: RemoteEndpoint) -> String {
        endpoint.url.into()
    }
}

/// How the remote's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsTrust {
    /// `false`: any certificate is accepted (the caller chose so, and the pinned host
    /// keys say `tls_verified: false`).
    pub verify: bool,
    /// PEM certificates trusted for this remote besides the system roots.
    pub extra_roots_pem: Option<String>,
}

impl TlsTrust {
    /// Checks a PEM bundle: at least one certificate, each one a usable trust anchor
    /// (rustls reads it as such now, not at the first connection).
    pub fn parse_roots(pem: &str) -> Result<String, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut store = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let certificate = certificate.map_err(|_| "is not PEM".to_owned())?;
            store
                .add(certificate)
                .map_err(|e| format!("holds a certificate that cannot be trusted: {e}"))?;
        }
        if store.is_empty() {
            return Err("holds no PEM certificate".to_owned());
        }
        Ok(pem.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_strictly_and_hosts_canonically() {
        let endpoint = RemoteEndpoint::parse("https://nas.example:8443/credgate/").unwrap();
        assert_eq!(endpoint.host().as_str(), "nas.example");
        assert_eq!(endpoint.port().get(), 8443);
        assert_eq!(
            endpoint.join("/api/v1/pairing/ssh").as_str(),
            "https://nas.example:8443/credgate/api/v1/pairing/ssh"
        );
        assert_eq!(
            RemoteEndpoint::parse("http://10.0.0.1")
                .unwrap()
                .port()
                .get(),
            80
        );
        // What resolvers read as 169.254.169.254 is that address, not a name.
        let sneaky = RemoteEndpoint::parse("http://0251.0376.0251.0376/").unwrap();
        assert_eq!(sneaky.host().as_str(), "169.254.169.254");
        assert_eq!(
            RemoteEndpoint::parse("http://[::1]:8080")
                .unwrap()
                .host()
                .as_str(),
            "::1"
        );
        for bad in [
            "ftp://nas",
            "https://user:pw@nas",
            "https://nas/?x=1",
            "https://nas/#f",
            "nas.example",
            "unix:/run/sock",
        ] {
            assert!(RemoteEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
