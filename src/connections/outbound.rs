//! Reaching a remote SSH server: policy check, then the SSH work, with failures mapped
//! to the API's codes in one place.

use actix_web::http::StatusCode;

use crate::gateway::ApiError;
use crate::ssh::{OutboundError, SshFailure};

pub fn outbound_error(err: OutboundError) -> ApiError {
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

pub fn ssh_error(err: SshFailure) -> ApiError {
    let (status, code) = match &err {
        SshFailure::Unreachable(_) => (StatusCode::BAD_GATEWAY, "remote_unreachable"),
        SshFailure::Timeout => (StatusCode::GATEWAY_TIMEOUT, "remote_timeout"),
        SshFailure::NotSsh => (StatusCode::BAD_GATEWAY, "not_ssh"),
        SshFailure::NoAcceptableHostKey => (StatusCode::BAD_GATEWAY, "no_acceptable_host_key"),
        SshFailure::Protocol(_) => (StatusCode::BAD_GATEWAY, "ssh_protocol_error"),
    };
    ApiError::new(status, code, err.to_string())
}
