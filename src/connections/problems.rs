//! How a connection operation's failure reads over HTTP: the one mapping from the
//! connection, outbound-policy and SSH failures to problem responses, so handlers just
//! use `?`.

use actix_web::http::StatusCode;

use super::semi_automatic::{PairingCause, PairingFailed};
use super::service::ConnectionFailure;
use crate::gateway::{ApiError, rejection};
use crate::keypairs::KeypairFailure;
use crate::remote::RemoteError;
use crate::ssh::{OutboundError, SshFailure};

impl From<ConnectionFailure> for ApiError {
    fn from(err: ConnectionFailure) -> Self {
        match err {
            ConnectionFailure::Invalid { field, message } => {
                ApiError::invalid_field(field, message)
            }
            ConnectionFailure::NameTaken => {
                ApiError::conflict("name_taken", "another connection has this name")
                    .with_field_error("name", "is already used by another connection")
            }
            ConnectionFailure::AliasTaken => ApiError::conflict(
                "alias_taken",
                "another connection's name gives the same ssh_config `Host` alias (names that differ only in punctuation, spaces or case do); choose a name that differs in letters or digits",
            )
            .with_field_error("name", "gives the same ssh_config alias as another connection"),
            ConnectionFailure::NotFound => ApiError::not_found("connection"),
            ConnectionFailure::Outbound(e) => e.into(),
            ConnectionFailure::HostForbidden(ip) => ApiError::new(
                StatusCode::FORBIDDEN,
                "outbound_forbidden",
                format!("the host resolves to {ip}, which this service's outbound policy forbids"),
            )
            .with_field_error("host", "is an address the outbound policy forbids"),
            ConnectionFailure::Keypair(KeypairFailure::NotFound | KeypairFailure::NoPrivateKey) => {
                ApiError::conflict(
                    "keypair_unusable",
                    "the connection's keypair is gone or has no private key; point the connection at another keypair",
                )
            }
            ConnectionFailure::Keypair(e) => ApiError::internal(format!("keypair: {e}")),
            ConnectionFailure::Command(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(other) => ApiError::conflict("refused", other.to_string()),
            },
            ConnectionFailure::Attempt(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(other) => ApiError::internal(format!("pairing attempt: {other}")),
            },
            ConnectionFailure::RemoteForbidden(ip) => ApiError::new(
                StatusCode::FORBIDDEN,
                "outbound_forbidden",
                format!("the remote's URL resolves to {ip}, which this service's outbound policy forbids"),
            )
            .with_field_error("url", "is an address the outbound policy forbids"),
            ConnectionFailure::Pairing(failed) => pairing_problem(*failed),
        }
    }
}

/// A failed semi-automatic setup: the cause's code, the phase it failed in, and
/// whether the remote's pairing was revoked again (`null`: the remote made none).
fn pairing_problem(failed: PairingFailed) -> ApiError {
    let detail = failed.cause.detail();
    let error = match failed.cause {
        PairingCause::Record(inner) => ApiError::from(inner),
        PairingCause::Remote(remote) => remote_problem(remote, detail),
        PairingCause::HostKeys(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "remote_rejected", detail)
        }
        PairingCause::Login(failure) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "login_failed", detail)
                .with_member("login_error", serde_json::json!(failure.code))
        }
    };
    error
        .with_member("phase", serde_json::json!(failed.phase))
        .with_member(
            "remote_pairing_revoked",
            serde_json::json!(failed.remote_revoked),
        )
}

fn remote_problem(error: RemoteError, detail: String) -> ApiError {
    let code = error.code();
    match error {
        RemoteError::Outbound(OutboundError::Forbidden(_)) => {
            ApiError::new(StatusCode::FORBIDDEN, code, detail)
                .with_field_error("url", "is an address the outbound policy forbids")
        }
        RemoteError::Timeout | RemoteError::Outbound(OutboundError::Timeout) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, code, detail)
        }
        RemoteError::Unreachable(_) | RemoteError::Outbound(OutboundError::Unresolvable(_)) => {
            ApiError::new(StatusCode::BAD_GATEWAY, code, detail)
        }
        RemoteError::TlsUnverified(_) => ApiError::new(StatusCode::BAD_GATEWAY, code, detail)
            .with_field_error(
                "ca_certificate",
                "the remote's certificate is not trusted: give the CA that signed it, or set verify_tls to false",
            ),
        RemoteError::AuthFailed => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            .with_field_error("remote_api_key", "the remote refused this API key"),
        RemoteError::Forbidden => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            .with_field_error("remote_api_key", "needs the `pairing` scope on the remote"),
        RemoteError::Rejected {
            status,
            code: remote_code,
            detail: remote_detail,
        } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            .with_member("remote_status", serde_json::json!(status))
            .with_member("remote_code", serde_json::json!(remote_code))
            .with_member("remote_detail", serde_json::json!(remote_detail)),
        RemoteError::InvalidAnswer(_) => ApiError::new(StatusCode::BAD_GATEWAY, code, detail),
    }
}

impl From<OutboundError> for ApiError {
    fn from(err: OutboundError) -> Self {
        match err {
            OutboundError::Forbidden(ip) => ApiError::new(
                StatusCode::FORBIDDEN,
                "outbound_forbidden",
                format!("connecting to {ip} is not allowed by this service's outbound policy"),
            ),
            OutboundError::Unresolvable(why) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "remote_unreachable",
                format!("the host name could not be resolved: {why}"),
            ),
            OutboundError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "remote_timeout",
                "resolving the host name timed out",
            ),
        }
    }
}

impl From<SshFailure> for ApiError {
    fn from(err: SshFailure) -> Self {
        let (status, code) = match &err {
            SshFailure::Unreachable(_) => (StatusCode::BAD_GATEWAY, "remote_unreachable"),
            SshFailure::Timeout => (StatusCode::GATEWAY_TIMEOUT, "remote_timeout"),
            SshFailure::NotSsh => (StatusCode::BAD_GATEWAY, "not_ssh"),
            SshFailure::NoAcceptableHostKey => (StatusCode::BAD_GATEWAY, "no_acceptable_host_key"),
            SshFailure::Protocol(_) => (StatusCode::BAD_GATEWAY, "ssh_protocol_error"),
        };
        ApiError::new(status, code, err.to_string())
    }
}
