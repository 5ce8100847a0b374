//! How a connection operation's failure reads over HTTP: the one mapping from the
//! connection, outbound-policy and SSH failures to problem responses, so handlers just
//! use `?`.

use actix_web::http::StatusCode;

use super::codes;
use super::semi_automatic::{PairingCause, PairingFailed};
use super::service::ConnectionFailure;
use crate::gateway::problem_code as common;
use crate::gateway::{ApiError, rejection};
use crate::keypairs::KeypairFailure;
use crate::remote::RemoteError;
use crate::ssh::{OutboundError, SshFailure};
use utoipa::openapi::{RefOr, Schema};

impl From<ConnectionFailure> for ApiError {
    fn from(err: ConnectionFailure) -> Self {
        match err {
            ConnectionFailure::Invalid { field, message } => {
                ApiError::invalid_field(field, message)
            }
            ConnectionFailure::NameTaken => {
                ApiError::conflict(common::NAME_TAKEN, "another connection has this name")
                    .with_field_error("name", "is already used by another connection")
            }
            ConnectionFailure::AliasTaken => ApiError::conflict(
                codes::ALIAS_TAKEN,
                "another connection's name gives the same ssh_config `Host` alias (names that differ only in punctuation, spaces or case do); choose a name that differs in letters or digits",
            )
            .with_field_error("name", "gives the same ssh_config alias as another connection"),
            ConnectionFailure::NotFound => ApiError::not_found("connection"),
            ConnectionFailure::Outbound(e) => e.into(),
            ConnectionFailure::HostForbidden(ip) => ApiError::new(
                StatusCode::FORBIDDEN,
                codes::OUTBOUND_FORBIDDEN,
                format!("the host resolves to {ip}, which this service's outbound policy forbids"),
            )
            .with_field_error("host", "is an address the outbound policy forbids"),
            ConnectionFailure::Keypair(KeypairFailure::NotFound | KeypairFailure::NoPrivateKey) => {
                ApiError::conflict(
                    codes::KEYPAIR_UNUSABLE,
                    "the connection's keypair is gone or has no private key; point the connection at another keypair",
                )
            }
            ConnectionFailure::Keypair(e) => ApiError::internal(format!("keypair: {e}")),
            ConnectionFailure::Command(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(other) => ApiError::conflict(common::REFUSED, other.to_string()),
            },
            ConnectionFailure::Attempt(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(other) => ApiError::internal(format!("pairing attempt: {other}")),
            },
            ConnectionFailure::RemoteForbidden(ip) => ApiError::new(
                StatusCode::FORBIDDEN,
                codes::OUTBOUND_FORBIDDEN,
                format!("the remote's URL resolves to {ip}, which this service's outbound policy forbids"),
            )
            .with_field_error("url", "is an address the outbound policy forbids"),
            ConnectionFailure::Pairing(failed) => pairing_problem(*failed),
        }
    }
}

/// The members a connection problem may add to its body, for the document's `Problem`.
pub fn members() -> Vec<(&'static str, RefOr<Schema>)> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::{PartialSchema, openapi::Ref};
    let typed = |schema_type: Type, description: &str| {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(schema_type)
                .description(Some(description))
                .build(),
        ))
    };
    vec![
        ("phase", super::attempt::PairingPhase::schema()),
        (
            "remote_pairing_revoked",
            RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::Boolean,
                        Type::Null,
                    ]))
                    .description(Some(
                        "A failed semi-automatic setup: whether the remote's pairing was revoked again (`null`: the remote had made none)",
                    ))
                    .build(),
            )),
        ),
        ("login_error", RefOr::Ref(Ref::from_schema_name("ProbeError"))),
        (
            "remote_status",
            typed(Type::Integer, "`remote_rejected`: the HTTP status the remote answered"),
        ),
        (
            "remote_code",
            typed(Type::String, "`remote_rejected`: the remote's problem `code`"),
        ),
        (
            "remote_detail",
            typed(Type::String, "`remote_rejected`: the remote's problem `detail`"),
        ),
    ]
}

/// A failed semi-automatic setup: the cause's code, the phase it failed in, and
/// whether the remote's pairing was revoked again (`null`: the remote made none).
fn pairing_problem(failed: PairingFailed) -> ApiError {
    let detail = failed.cause.detail();
    let error = match failed.cause {
        PairingCause::Record(inner) => ApiError::from(inner),
        PairingCause::Remote(remote) => remote_problem(remote, detail),
        PairingCause::HostKeys(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, codes::REMOTE_REJECTED, detail)
        }
        PairingCause::Login(failure) => {
            ApiError::new(StatusCode::BAD_GATEWAY, codes::LOGIN_FAILED, detail)
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

/// The problem code of a pairing client failure. The client keeps its own name for
/// each (`RemoteError::code`, recorded in the attempt's events); they agree (test).
fn remote_code(error: &RemoteError) -> crate::gateway::ProblemCode {
    match error {
        RemoteError::Outbound(OutboundError::Forbidden(_)) => codes::OUTBOUND_FORBIDDEN,
        RemoteError::Outbound(OutboundError::Timeout) | RemoteError::Timeout => {
            codes::REMOTE_TIMEOUT
        }
        RemoteError::Outbound(OutboundError::Unresolvable(_)) | RemoteError::Unreachable(_) => {
            codes::REMOTE_UNREACHABLE
        }
        RemoteError::TlsUnverified(_) => codes::REMOTE_TLS_UNVERIFIED,
        RemoteError::AuthFailed => codes::REMOTE_AUTH_FAILED,
        RemoteError::Forbidden => codes::REMOTE_FORBIDDEN,
        RemoteError::Rejected { .. } | RemoteError::InvalidAnswer(_) => codes::REMOTE_REJECTED,
    }
}

fn remote_problem(error: RemoteError, detail: String) -> ApiError {
    let code = remote_code(&error);
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
                codes::OUTBOUND_FORBIDDEN,
                format!("connecting to {ip} is not allowed by this service's outbound policy"),
            ),
            OutboundError::Unresolvable(why) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                codes::REMOTE_UNREACHABLE,
                format!("the host name could not be resolved: {why}"),
            ),
            OutboundError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                codes::REMOTE_TIMEOUT,
                "resolving the host name timed out",
            ),
        }
    }
}

impl From<SshFailure> for ApiError {
    fn from(err: SshFailure) -> Self {
        let (status, code) = match &err {
            SshFailure::Unreachable(_) => (StatusCode::BAD_GATEWAY, codes::REMOTE_UNREACHABLE),
            SshFailure::Timeout => (StatusCode::GATEWAY_TIMEOUT, codes::REMOTE_TIMEOUT),
            SshFailure::NotSsh => (StatusCode::BAD_GATEWAY, codes::NOT_SSH),
            SshFailure::NoAcceptableHostKey => {
                (StatusCode::BAD_GATEWAY, codes::NO_ACCEPTABLE_HOST_KEY)
            }
            SshFailure::Protocol(_) => (StatusCode::BAD_GATEWAY, codes::SSH_PROTOCOL_ERROR),
        };
        ApiError::new(status, code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_problem_code_of_a_remote_failure_is_the_name_its_events_record() {
        let failures = [
            RemoteError::Outbound(OutboundError::Forbidden("10.0.0.1".parse().unwrap())),
            RemoteError::Outbound(OutboundError::Timeout),
            RemoteError::Outbound(OutboundError::Unresolvable("no such name".into())),
            RemoteError::Timeout,
            RemoteError::Unreachable("refused".into()),
            RemoteError::TlsUnverified("unknown issuer".into()),
            RemoteError::AuthFailed,
            RemoteError::Forbidden,
            RemoteError::Rejected {
                status: 422,
                code: "user_not_found".into(),
                detail: "no such user".into(),
            },
            RemoteError::InvalidAnswer("not JSON".into()),
        ];
        for failure in failures {
            assert_eq!(remote_code(&failure).name(), failure.code(), "{failure:?}");
            let problem = remote_problem(failure, "detail".into());
            assert!(
                codes::CONNECTION_CODES.contains(&problem.code()),
                "{}",
                problem.code()
            );
        }
    }
}
