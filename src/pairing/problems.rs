//! How a pairing failure reads over HTTP (the one mapping; handlers use `?`).

use actix_web::http::StatusCode;

use super::accounts::AccountRefusal;
use super::aggregate::AuthorizedKeyError;
use super::codes;
use super::service::PairingFailure;
use super::sudoers::SudoersError;
use crate::gateway::problem_code as common;
use crate::gateway::{ApiError, rejection};

impl From<PairingFailure> for ApiError {
    fn from(err: PairingFailure) -> Self {
        let detail = err.to_string();
        match err {
            PairingFailure::Account(refusal) => {
                let (status, code) = match refusal {
                    AccountRefusal::NotAllowed(_) => {
                        (StatusCode::FORBIDDEN, codes::USER_NOT_ALLOWED)
                    }
                    AccountRefusal::NotFound(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, codes::USER_NOT_FOUND)
                    }
                    AccountRefusal::HomeMissing(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, codes::HOME_MISSING)
                    }
                    AccountRefusal::CannotLogIn(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, codes::USER_CANNOT_LOGIN)
                    }
                    AccountRefusal::Lookup(cause) => return ApiError::internal(cause),
                };
                ApiError::new(status, code, detail.clone()).with_field_error("username", &detail)
            }
            PairingFailure::NoHostKeys => {
                ApiError::unavailable(codes::HOST_KEYS_UNAVAILABLE, detail)
            }
            PairingFailure::KeyFile(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::AUTHORIZED_KEYS_UNWRITABLE,
                detail,
            ),
            PairingFailure::Sudoers(SudoersError::Refused(_)) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::SUDOERS_REFUSED,
                detail,
            ),
            PairingFailure::Sudoers(SudoersError::Io(_)) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::SUDOERS_UNWRITABLE,
                detail,
            ),
            PairingFailure::NotFound => ApiError::not_found("pairing"),
            PairingFailure::TokenRefused => ApiError::new(
                StatusCode::FORBIDDEN,
                codes::REVOCATION_TOKEN_REFUSED,
                "the revocation token does not revoke this pairing",
            ),
            PairingFailure::Command(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(AuthorizedKeyError::AlreadyRevoked) => {
                    ApiError::conflict(common::ALREADY_REVOKED, "the pairing is already revoked")
                }
                Ok(AuthorizedKeyError::NotFound) => ApiError::not_found("pairing"),
                Ok(other) => ApiError::conflict(common::REFUSED, other.to_string()),
            },
        }
    }
}
