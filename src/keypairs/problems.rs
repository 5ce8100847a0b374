//! How a keypair operation's failure reads over HTTP: the one mapping from
//! [`KeypairFailure`] to a problem response, so handlers just use `?`.

use super::codes;
use super::service::KeypairFailure;
use crate::gateway::problem_code as common;
use crate::gateway::{ApiError, rejection};

impl From<KeypairFailure> for ApiError {
    fn from(err: KeypairFailure) -> Self {
        match err {
            KeypairFailure::Invalid(problem) => {
                ApiError::invalid_field(problem.field, problem.message)
            }
            KeypairFailure::NameTaken => {
                ApiError::conflict(common::NAME_TAKEN, "another keypair has this name")
                    .with_field_error("name", "is already used by another keypair")
            }
            KeypairFailure::NotFound => ApiError::not_found("keypair"),
            KeypairFailure::NoPrivateKey => {
                ApiError::conflict(codes::NO_PRIVATE_KEY, "this keypair has only a public key")
            }
            KeypairFailure::InUse(dependants) => {
                let listed: Vec<_> = dependants
                    .iter()
                    .map(|d| serde_json::json!({"kind": d.kind, "id": d.id, "name": d.name}))
                    .collect();
                ApiError::conflict(
                    codes::IN_USE,
                    format!(
                        "the keypair is used by {} object(s); delete them first or pass cascade=true",
                        listed.len()
                    ),
                )
                .with_member("dependants", serde_json::Value::Array(listed))
            }
            KeypairFailure::Cascade(message) => ApiError::conflict(codes::CASCADE_FAILED, message),
            KeypairFailure::Secret(message) => ApiError::internal(message),
            KeypairFailure::Command(err) => match rejection(err) {
                Err(api_error) => api_error,
                Ok(other) => ApiError::conflict(common::REFUSED, other.to_string()),
            },
        }
    }
}
