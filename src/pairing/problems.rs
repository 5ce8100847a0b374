//! How a pairing failure reads over HTTP (the one mapping; handlers use `?`).

use actix_web::http::StatusCode;

use super::accounts::AccountRefusal;
use super::aggregate::AuthorizedKeyError;
use super::service::PairingFailure;
use super::sudoers::SudoersError;
use crate::gateway::{ApiError, rejection};

impl From<PairingFailure> for ApiError {
    fn from(err: PairingFailure) -> Self {
        let detail = err.to_string();
        match err {
            PairingFailure::Account(refusal) => {
                let (status, code) = match refusal {
                    AccountRefusal::NotAllowed(_) => (StatusCode::FORBIDDEN, "user_not_allowed"),
                    AccountRefusal::NotFound(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "user_not_found")
                    }
                    AccountRefusal::HomeMissing(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "home_missing")
                    }
                    AccountRefusal::CannotLogIn(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "user_cannot_login")
                    }
                    AccountRefusal::Lookup(cause) => return ApiError::internal(cause),
                };
                ApiError::new(status, code, detail.clone()).with_field_error("username", &detail)
            }
            PairingFailure::NoHostKeys => ApiError::unavailable("host_keys_unavailable", detail),
            PairingFailure::KeyFile(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "authorized_keys_unwritable",
                detail,
            ),
            PairingFailure::Sudoers(SudoersError::Refused(_)) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "sudoers_refused", detail)
            }
            PairingFailure::Sudoers(SudoersError::Io(_)) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sudoers_unwritable",
                detail,
            ),
            PairingFailure::NotFound => ApiError::not_found("pairing"),
            PairingFailure::TokenRefused => ApiError::new(
                StatusCode::FORBIDDEN,
                "revocation_token_refused",
                "the revocation token does not revoke this pairing",
            ),
            PairingFailure::Command(e) => match rejection(e) {
                Err(api_error) => api_error,
                Ok(AuthorizedKeyError::AlreadyRevoked) => {
                    ApiError::conflict("already_revoked", "the pairing is already revoked")
                }
                Ok(AuthorizedKeyError::NotFound) => ApiError::not_found("pairing"),
                Ok(other) => ApiError::conflict("refused", other.to_string()),
            },
        }
    }
}
