//! The pairing routes. `POST /pairing/ssh` (scope `pairing`) authorizes a caller's key;
//! `DELETE /pairing/ssh/{id}` takes the pairing's revocation token instead of an API key;
//! `/authorized-keys` (scope `pairing:admin`) lists and revokes any pairing.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use russh::keys::ssh_key::PublicKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::aggregate::{AuthorizedKeyError, RevocationReason};
use super::codes;
use super::service::{PairRequest, PairingFailure, PairingService};
use super::view::AuthorizedKeyView;
use crate::auth::codes as auth_codes;
use crate::auth::{FailureThrottle, digest_of, require};
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{
    ApiError, Authorized, FieldErrors, Forbidden, JsonBody, JsonBodyOrEmpty, NotFound, client_of,
    current_request_id,
};
use crate::names::Name;
use crate::ssh::Username;
use crate::ssh::client::acceptable_host_key;
use crate::store::{CommandError, CommandMetadata};

/// The header that carries a revocation token (or send `{"revocation_token": …}`).
pub const REVOCATION_TOKEN_HEADER: &str = "x-revocation-token";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"username": "root", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp/VBApBDZU07LOwvReCfbOeprRRN7vqNu3hSgyoLRo backup@nas", "label": "offsite nas (from backup-01)", "sudo": false})))]
pub struct PairSshRequest {
    /// The local user whose authorized_keys receives the key; must be in this host's
    /// `pairing.allowed_users`.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$", example = "root")]
    pub username: String,
    /// One OpenSSH public key line: ed25519, ecdsa, or rsa of at least 2048 bits.
    #[schema(min_length = 1, max_length = 16384)]
    pub public_key: String,
    /// For the people who list pairings here (1–120 characters).
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub label: Option<String>,
    /// Ask for passwordless `sudo /usr/sbin/zfs`; granted only when this host
    /// configures `pairing.sudoers_dir` (see `sudo_granted`).
    #[serde(default)]
    pub sudo: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"authorized_key_id": "5e2d7b9c-4a1f-4c3e-9b8d-2f6a0c1e7d35", "revocation_token": "cgr_ytEuGZOhAd-7UnbSDKD2ZB1iGPR05amHnvW9Gizovbk", "ssh_port": 22, "host_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8="], "sudo_granted": false})))]
pub struct PairSshResponse {
    pub authorized_key_id: Uuid,
    /// Revokes exactly this pairing later (`DELETE /api/v1/pairing/ssh/{id}`), without
    /// an API key. Shown only in this response; store it like a password.
    pub revocation_token: String,
    /// The port this host's sshd listens on.
    pub ssh_port: u16,
    /// This host's public host keys (`type base64`), to pin.
    pub host_keys: Vec<String>,
    pub sudo_granted: bool,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"revocation_token": "cgr_ytEuGZOhAd-7UnbSDKD2ZB1iGPR05amHnvW9Gizovbk"})))]
pub struct RevokePairingRequest {
    /// The token the pairing answered with (or send it in `X-Revocation-Token`).
    pub revocation_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"id": "5e2d7b9c-4a1f-4c3e-9b8d-2f6a0c1e7d35", "username": "root", "fingerprint": "SHA256:5/qzpPZ9asg47Ope3r65SlFiDibgFNBf2RAo2K+QHg0", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp/VBApBDZU07LOwvReCfbOeprRRN7vqNu3hSgyoLRo", "label": "offsite nas (from backup-01)", "sudo_granted": false, "paired_by": "nas pairing", "paired_from": "192.0.2.10", "paired_at": "2026-12-01T09:30:00Z", "present": true})))]
pub struct AuthorizedKeyResponse {
    pub id: Uuid,
    pub username: String,
    pub fingerprint: String,
    /// `type base64`.
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub sudo_granted: bool,
    /// The API key (its name) that paired it.
    pub paired_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paired_from: Option<String>,
    pub paired_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_because: Option<RevocationReason>,
    /// Whether the line is in the authorized_keys file now (a line removed by hand
    /// shows as `false` while the pairing is live); absent when the file could not be
    /// read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

impl TryFrom<PairSshRequest> for PairRequest {
    type Error = ApiError;

    fn try_from(body: PairSshRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let username = errors.check(
            "username",
            Username::parse(&body.username).map_err(str::to_owned),
        );
        let public_key = errors.check("public_key", public_key(&body.public_key));
        let label = match body.label.as_deref() {
            None => Some(None),
            Some(text) => errors.check("label", Name::parse(text).map(Some).map_err(str::to_owned)),
        };
        errors.into_result()?;
        let (Some(username), Some(public_key), Some(label)) = (username, public_key, label) else {
            return Err(ApiError::internal(
                "a field passed validation without a value",
            ));
        };
        Ok(PairRequest {
            username,
            public_key,
            label,
            sudo: body.sudo,
        })
    }
}

/// One key line, of an algorithm credgate accepts everywhere.
fn public_key(text: &str) -> Result<PublicKey, String> {
    let text = text.trim();
    if text.lines().count() != 1 {
        return Err("must be exactly one line".to_owned());
    }
    let key = PublicKey::from_openssh(text)
        .map_err(|_| "is not an OpenSSH public key line (`type base64 [comment]`)".to_owned())?;
    if !acceptable_host_key(&key) {
        return Err(format!(
            "{} keys are not accepted: use ed25519, ecdsa, or rsa of at least 2048 bits",
            key.algorithm()
        ));
    }
    Ok(key)
}

fn to_response(
    (view, present): (AuthorizedKeyView, Option<bool>),
) -> Result<AuthorizedKeyResponse, ApiError> {
    Ok(AuthorizedKeyResponse {
        id: view.id.parse().map_err(ApiError::internal)?,
        username: view.key.username.as_str().to_owned(),
        fingerprint: view.key.fingerprint,
        public_key: view.key.public_key,
        label: view.key.label.map(|l| l.as_str().to_owned()),
        sudo_granted: view.key.sudo_granted,
        paired_by: view.paired_by,
        paired_from: view.paired_from,
        paired_at: view.paired_at,
        revoked_at: view.revoked_at,
        revoked_because: view.revoked_because,
        present,
    })
}

/// Authorize a public key for a local user of this host (remote side of semi-automatic
/// setup). Scope `pairing`. The same key for the same user again gives the same
/// pairing (200, and one more revocation token) and no second line.
#[utoipa::path(
    tag = "pairing",
    request_body = PairSshRequest,
    responses(
        (status = 201, description = "Paired; the revocation token is in this response only", body = PairSshResponse),
        (status = 200, description = "This key was already paired for this user: the same pairing, a new revocation token", body = PairSshResponse),
        (status = 403, response = Forbidden),
        (status = 500, description = "This host could not change the user's authorized_keys file (`authorized_keys_unwritable`) or sudoers drop-in (`sudoers_refused`, `sudoers_unwritable`); its log says why", body = crate::gateway::Problem, content_type = "application/problem+json"),
    ),
    extensions(("x-required-scopes" = json!(["pairing"]))),
)]
#[post("/ssh")]
pub async fn pair_ssh(
    who: Authorized<require::Pairing>,
    service: web::Data<PairingService>,
    JsonBody(body): JsonBody<PairSshRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = PairRequest::try_from(body)?;
    let paired = service.pair(request, &who.metadata()).await?;
    let mut response = if paired.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(PairSshResponse {
            authorized_key_id: paired.id,
            revocation_token: paired.token.expose().to_owned(),
            ssh_port: paired.ssh_port,
            host_keys: paired.host_keys,
            sudo_granted: paired.sudo_granted,
        }))
}

/// Revoke one pairing with its revocation token — no API key needed. Its line leaves
/// the authorized_keys file (and its sudo drop-in goes). A token for an already revoked
/// pairing answers 204 again; a wrong token and an unknown id both answer 403
/// `revocation_token_refused`. Failed tokens count against the address like failed API
/// keys (429 after `limits.auth_failures_per_minute`).
#[utoipa::path(
    tag = "pairing",
    params(
        ("id" = Uuid, Path, description = "The pairing's `authorized_key_id`"),
        ("X-Revocation-Token" = Option<String>, Header, description = "The pairing's revocation token (or send it in the body)"),
    ),
    request_body(content = Option<RevokePairingRequest>),
    security(()),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 403, response = Forbidden),
        (status = 500, description = "This host could not remove the line from the user's authorized_keys file (`authorized_keys_unwritable`) or sudoers drop-in (`sudoers_refused`, `sudoers_unwritable`); its log says why", body = crate::gateway::Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("")]
pub async fn revoke_pairing(
    request: HttpRequest,
    service: web::Data<PairingService>,
    throttle: web::Data<FailureThrottle>,
    clock: web::Data<dyn crate::clock::Clock>,
    id: web::Path<Uuid>,
    JsonBodyOrEmpty(body): JsonBodyOrEmpty<RevokePairingRequest>,
) -> Result<HttpResponse, ApiError> {
    let source = client_of(&request);
    if let Some(source) = source
        && let Some(wait) = throttle.blocked(source, Instant::now())
    {
        return Err(ApiError::too_many_requests(
            auth_codes::TOO_MANY_FAILED_AUTHENTICATIONS,
            format!("too many failed authentications from this address; retry in {wait} s"),
            wait,
        ));
    }
    let from_header = request
        .headers()
        .get(REVOCATION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = from_header
        .or(body.revocation_token)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                codes::MISSING_REVOCATION_TOKEN,
                "send the pairing's revocation token in `X-Revocation-Token` or as `revocation_token`",
            )
        })?;
    let metadata = CommandMetadata {
        actor_id: None,
        actor_name: "revocation token".to_owned(),
        request_id: current_request_id(),
        source_address: source.map(|ip| ip.to_string()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
        occurred_at: clock.now(),
    };
    let digest = digest_of(token.trim());
    match service
        .revoke_with_token(id.into_inner(), &digest, &metadata)
        .await
    {
        Ok(())
        | Err(PairingFailure::Command(CommandError::Rejected(
            AuthorizedKeyError::AlreadyRevoked,
        ))) => Ok(HttpResponse::NoContent().finish()),
        Err(PairingFailure::TokenRefused) => {
            if let Some(source) = source {
                throttle.count(source, Instant::now());
            }
            Err(PairingFailure::TokenRefused.into())
        }
        Err(other) => Err(other.into()),
    }
}

/// Every pairing on this host, oldest first, with whether its line is still in the
/// file. Scope `pairing:admin`.
#[utoipa::path(
    tag = "pairing",
    params(PageParams),
    responses((status = 200, body = Paged<AuthorizedKeyResponse>)),
    extensions(("x-required-scopes" = json!(["pairing:admin"]))),
)]
#[get("")]
pub async fn list_authorized_keys(
    _who: Authorized<require::PairingAdmin>,
    service: web::Data<PairingService>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = params.resolve()?;
    pagination::page_response(service.list(after, limit).await?, to_response)
}

/// Revoke any pairing on this host. Scope `pairing:admin`.
#[utoipa::path(
    tag = "pairing",
    params(("id" = Uuid, Path, description = "Pairing id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 404, response = NotFound),
        (status = 500, description = "This host could not remove the line from the user's authorized_keys file (`authorized_keys_unwritable`) or sudoers drop-in (`sudoers_refused`, `sudoers_unwritable`); its log says why", body = crate::gateway::Problem, content_type = "application/problem+json"),
    ),
    extensions(("x-required-scopes" = json!(["pairing:admin"]))),
)]
#[delete("/{id}")]
pub async fn revoke_authorized_key(
    who: Authorized<require::PairingAdmin>,
    service: web::Data<PairingService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    match service
        .revoke_as_admin(id.into_inner(), &who.metadata())
        .await
    {
        Ok(())
        | Err(PairingFailure::Command(CommandError::Rejected(
            AuthorizedKeyError::AlreadyRevoked,
        ))) => Ok(HttpResponse::NoContent().finish()),
        Err(other) => Err(other.into()),
    }
}
