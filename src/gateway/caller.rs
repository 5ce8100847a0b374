//! Who is calling, from where: the authenticated principal plus the request facts that
//! go into every event's metadata.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use futures_util::future::{Ready, ready};
use ipnet::IpNet;

use super::problem::ApiError;
use super::request_id::RequestId;
use crate::auth::codes as auth_codes;
use crate::auth::{Principal, Scope, grants};
use crate::clock::{Clock, SystemClock};
use crate::store::CommandMetadata;

/// Proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case
    /// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_address(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops: Vec<IpAddr> = forwarded_for
            .unwrap_or("")
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
            .copied()
            .or(Some(peer))
    }
}

/// The client's address for this request: the peer, or what a trusted proxy says
/// (`trusted_proxies`). The one place it is decided, for event metadata and for the
/// failed-authentication limit alike.
pub fn client_of(req: &HttpRequest) -> Option<IpAddr> {
    let proxies = req
        .app_data::<TrustedProxies>()
        .cloned()
        .unwrap_or_default();
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    proxies.client_address(req.peer_addr().map(|a| a.ip()), forwarded)
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// 403 unless the caller's key grants `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if grants(&self.principal.scopes, scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden_scope(scope.as_str()))
        }
    }

    pub fn metadata(&self, now: DateTime<Utc>) -> CommandMetadata {
        CommandMetadata {
            actor_id: Some(self.principal.key_id.to_string()),
            actor_name: self.principal.name.clone(),
            request_id: self.request_id.clone(),
            source_address: self.source_address.clone(),
            user_agent: self.user_agent.clone(),
            occurred_at: now,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(principal) = req.extensions().get::<Principal>().cloned() else {
            return ready(Err(ApiError::unauthorized(
                auth_codes::MISSING_API_KEY,
                "this endpoint needs an API key",
            )));
        };
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let source_address = client_of(req).map(|ip| ip.to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        ready(Ok(Caller {
            principal,
            request_id,
            source_address,
            user_agent,
        }))
    }
}

/// A caller whose key grants `S::SCOPE`; extracting it answers 403 otherwise. Put it
/// first in a handler's arguments so the scope is checked before the body is read.
/// It also stamps the metadata of the commands the handler runs (who, from where, when).
pub struct Authorized<S> {
    pub caller: Caller,
    clock: Arc<dyn Clock>,
    scope: PhantomData<S>,
}

impl<S> Authorized<S> {
    /// The metadata for a command run now on the caller's behalf.
    pub fn metadata(&self) -> CommandMetadata {
        self.caller.metadata(self.clock.now())
    }
}

impl<S: crate::auth::RequiredScope> FromRequest for Authorized<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = match Caller::from_request(req, payload).into_inner() {
            Ok(caller) => caller,
            Err(e) => return ready(Err(e)),
        };
        let clock: Arc<dyn Clock> = req.app_data::<web::Data<dyn Clock>>().map_or_else(
            || Arc::new(SystemClock) as Arc<dyn Clock>,
            |c| c.clone().into_inner(),
        );
        ready(caller.require(S::SCOPE).map(|()| Authorized {
            caller,
            clock,
            scope: PhantomData,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        let xff = Some("203.0.113.9, 198.51.100.7, 10.0.0.2");
        assert_eq!(
            proxies.client_address(Some(ip("192.0.2.1")), xff),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            proxies.client_address(Some(ip("10.0.0.1")), xff),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            proxies.client_address(Some(ip("10.0.0.1")), None),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            proxies.client_address(Some(ip("10.0.0.1")), Some("junk")),
            Some(ip("10.0.0.1"))
        );
    }
}
