//! The request bodies of the connection routes, and their parsing into the service's
//! typed inputs: once, here, naming every bad field in one 422.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::semi_automatic::SemiAutomaticRequest;
use super::service::{ConnectionChanges, KeypairChoice, NewConnection};
use super::validation::{FieldErrors, connect_timeout, host, port, username};
use crate::auth::Scope;
use crate::gateway::ApiError;
use crate::keypairs::KeyAlgorithm;
use crate::names::Name;
use crate::remote::{RemoteEndpoint, TlsTrust};
use zeroize::Zeroizing;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite nas Key", "algorithm": "ed25519"})))]
pub struct GenerateKeypairOption {
    /// Default: "<connection name> Key".
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: Option<String>,
    /// Default `ed25519`.
    pub algorithm: Option<KeyAlgorithm>,
}

/// Manual setup. Exactly one of `keypair_id` and `generate_keypair`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite nas", "host": "backup.example.net", "port": 22, "username": "root", "keypair_id": "3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13", "remote_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd\necdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8=", "connect_timeout": 10})))]
pub struct CreateConnectionRequest {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: String,
    /// A host name (RFC 1123) or an IP address.
    #[schema(min_length = 1, max_length = 253)]
    pub host: String,
    /// 1–65535, default 22.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// Default `root`.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub username: Option<String>,
    /// A keypair that has a private key.
    #[schema(format = Uuid)]
    pub keypair_id: Option<String>,
    /// Generate a keypair for this connection (in the same transaction: if the connection
    /// cannot be created, neither is the keypair).
    pub generate_keypair: Option<GenerateKeypairOption>,
    /// One or more `type base64 [comment]` lines (known_hosts host patterns tolerated).
    #[schema(min_length = 1)]
    pub remote_host_key: String,
    /// Seconds, 1–120, default 10.
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
}

/// Semi-automatic setup: pair with a remote credgate. Exactly one of `keypair_id` and
/// `generate_keypair`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite nas", "url": "https://nas.example:8443", "remote_api_key": "cg_OKEGEnlO_S8uEiDTDsNUd7Y4OxK_MRYspcGhex8C1oc", "username": "root", "generate_keypair": {"algorithm": "ed25519"}, "verify_tls": true, "connect_timeout": 10, "sudo": false, "prove_login": true})))]
pub struct SemiAutomaticRequestBody {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: String,
    /// The remote credgate's base URL (`http://` or `https://`, a host, optionally a
    /// port and path prefix). The SSH connection goes to the same host.
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://nas.example:8443"
    )]
    pub url: String,
    /// An API key of the remote with scope `pairing`. Used for this one call; never
    /// stored, logged, or put in an event or error.
    #[schema(min_length = 1, max_length = 512)]
    pub remote_api_key: String,
    /// The remote user SSH logs in as; default `root`.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub username: Option<String>,
    #[schema(format = Uuid)]
    pub keypair_id: Option<String>,
    /// Generate a keypair for this connection; it is recorded only if the setup succeeds.
    pub generate_keypair: Option<GenerateKeypairOption>,
    /// Verify the remote's TLS certificate (default `true`). Prefer `ca_certificate`
    /// to turning this off.
    pub verify_tls: Option<bool>,
    /// PEM certificate(s) to trust for this remote besides the system roots (e.g. its
    /// self-signed certificate or private CA).
    #[schema(max_length = 65536)]
    pub ca_certificate: Option<String>,
    /// Seconds, 1–120, default 10: for the call to the remote and the SSH login.
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
    /// Ask the remote for passwordless `sudo zfs` (default `false`).
    pub sudo: Option<bool>,
    /// Log in over SSH with the new key before recording the connection (default
    /// `true`).
    pub prove_login: Option<bool>,
}

impl TryFrom<SemiAutomaticRequestBody> for SemiAutomaticRequest {
    type Error = ApiError;

    fn try_from(body: SemiAutomaticRequestBody) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", name(&body.name));
        let endpoint = errors.check("url", RemoteEndpoint::parse(&body.url));
        let username = errors.check("username", username(body.username.as_deref()));
        let timeout = errors.check("connect_timeout", connect_timeout(body.connect_timeout));
        let keypair = keypair_choice(&mut errors, body.keypair_id, body.generate_keypair);
        let remote_api_key = Zeroizing::new(body.remote_api_key);
        if remote_api_key.trim().is_empty() {
            errors.add("remote_api_key", "must not be empty");
        } else if !remote_api_key.chars().all(|c| c.is_ascii_graphic()) {
            // It goes into an Authorization header: visible ASCII only.
            errors.add(
                "remote_api_key",
                "must be visible ASCII characters only (no spaces, control or non-ASCII characters)",
            );
        }
        let roots = match body.ca_certificate.as_deref() {
            None => Some(None),
            Some(pem) => errors.check("ca_certificate", TlsTrust::parse_roots(pem).map(Some)),
        };
        errors.into_result()?;
        let (Some(name), Some(endpoint), Some(username), Some(timeout), Some(keypair), Some(roots)) =
            (name, endpoint, username, timeout, keypair, roots)
        else {
            return Err(ApiError::internal(
                "a field passed validation without a value",
            ));
        };
        Ok(SemiAutomaticRequest {
            name,
            endpoint,
            remote_api_key,
            username,
            keypair,
            tls: TlsTrust {
                verify: body.verify_tls.unwrap_or(true),
                extra_roots_pem: roots,
            },
            connect_timeout_secs: timeout,
            sudo: body.sudo.unwrap_or(false),
            prove_login: body.prove_login.unwrap_or(true),
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite nas (zurich)", "connect_timeout": 20})))]
pub struct UpdateConnectionRequest {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 253)]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub username: Option<String>,
    #[schema(format = Uuid)]
    pub keypair_id: Option<String>,
    /// Replacing the host keys is the only way to re-pin; the event records old and new.
    #[schema(min_length = 1)]
    pub remote_host_key: Option<String>,
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
}

/// A connection request that touches a keypair needs that capability's scope as well
/// as `connections:write`. Binding an existing keypair hands its private key to whoever
/// may fetch this connection's credentials (`connections:use`), so it needs the scope
/// that may read the key itself, `secrets:export`; generating one needs
/// `keypairs:write`. Without this, `connections:write` + `connections:use` would read
/// any keypair's private key.
pub fn keypair_scope(choice: &KeypairChoice) -> Scope {
    match choice {
        KeypairChoice::Existing(_) => Scope::SecretsExport,
        KeypairChoice::Generate { .. } => Scope::KeypairsWrite,
    }
}

fn keypair_id(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| format!("`{text}` is not a keypair id (UUID)"))
}

fn name(text: &str) -> Result<Name, String> {
    Name::parse(text).map_err(str::to_owned)
}

impl TryFrom<CreateConnectionRequest> for NewConnection {
    type Error = ApiError;

    fn try_from(body: CreateConnectionRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", name(&body.name));
        let host = errors.check("host", host(&body.host));
        let port = errors.check("port", port(body.port));
        let username = errors.check("username", username(body.username.as_deref()));
        let timeout = errors.check("connect_timeout", connect_timeout(body.connect_timeout));
        let keypair = keypair_choice(&mut errors, body.keypair_id, body.generate_keypair);
        if body.remote_host_key.trim().is_empty() {
            errors.add(
                "remote_host_key",
                "at least one host key is required (see POST /api/v1/ssh/host-key-scan)",
            );
        }
        errors.into_result()?;
        let (Some(name), Some(host), Some(port), Some(username), Some(timeout), Some(keypair)) =
            (name, host, port, username, timeout, keypair)
        else {
            return Err(ApiError::internal(
                "a field passed validation without a value",
            ));
        };
        Ok(NewConnection {
            name,
            host,
            port,
            username,
            keypair,
            remote_host_key: body.remote_host_key,
            connect_timeout_secs: timeout,
        })
    }
}

/// Exactly one of `keypair_id` and `generate_keypair`.
fn keypair_choice(
    errors: &mut FieldErrors,
    existing: Option<String>,
    generate: Option<GenerateKeypairOption>,
) -> Option<KeypairChoice> {
    match (existing, generate) {
        (Some(id), None) => errors
            .check("keypair_id", keypair_id(&id))
            .map(KeypairChoice::Existing),
        (None, Some(generate)) => {
            let name = match &generate.name {
                Some(n) => errors.check("generate_keypair.name", name(n).map(Some)),
                None => Some(None),
            };
            name.map(|name| KeypairChoice::Generate {
                name,
                algorithm: generate.algorithm,
            })
        }
        (Some(_), Some(_)) => {
            errors.add(
                "keypair_id",
                "give either keypair_id or generate_keypair, not both",
            );
            None
        }
        (None, None) => {
            errors.add("keypair_id", "give keypair_id or generate_keypair");
            None
        }
    }
}

impl TryFrom<UpdateConnectionRequest> for ConnectionChanges {
    type Error = ApiError;

    fn try_from(body: UpdateConnectionRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let changes = ConnectionChanges {
            name: body
                .name
                .as_deref()
                .and_then(|n| errors.check("name", name(n))),
            host: body
                .host
                .as_deref()
                .and_then(|h| errors.check("host", host(h))),
            port: body.port.and_then(|p| errors.check("port", port(Some(p)))),
            username: body
                .username
                .as_deref()
                .and_then(|u| errors.check("username", username(Some(u)))),
            keypair_id: body
                .keypair_id
                .as_deref()
                .and_then(|k| errors.check("keypair_id", keypair_id(k))),
            remote_host_key: body.remote_host_key,
            connect_timeout_secs: body
                .connect_timeout
                .and_then(|t| errors.check("connect_timeout", connect_timeout(Some(t)))),
        };
        errors.into_result()?;
        Ok(changes)
    }
}
