//! The base of the OpenAPI document: info, the security scheme and tags. Paths come from
//! the handlers themselves (utoipa-actix-web collects every `.service(...)`), so a route
//! cannot be served undocumented.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "credgate",
        description = "Keeps SSH keypairs and SSH connections for backup and replication jobs, with an audit trail of every change. Errors are `application/problem+json` with a stable `code` and the `request_id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "The service this document was fetched from")),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "api-keys", description = "API keys and their scopes (scope `admin`)"),
        (name = "ssh-connections", description = "SSH connections: host-key discovery, manual setup, tests, credentials for jobs"),
        (name = "ssh-keypairs", description = "SSH keypairs: generate, import, export (audited), delete (crypto-shredded)"),
        (name = "pairing", description = "The remote side of semi-automatic setup: authorize a caller's public key for a local user, and revoke it"),
        (name = "audit", description = "The audit trail: every change, secret read and refused access; export, follow, and the tamper-evidence check (scope `audit:read`)"),
    )
)]
pub struct BaseDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
    }
}
