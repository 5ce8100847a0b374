//! The problem responses an operation can declare, shared by every plugin, and the part
//! of each operation's contract that follows from passing the gateway rather than from
//! the handler: every `/api/v1` operation needs the bearer key (401), a scope (403), may
//! find the store unavailable or run out of time (503), and may be refused for a
//! malformed path, query or body (400, 413, 415, 422). Declared here once, so a handler
//! declares only what its own command can answer (404, 409, 412, …).

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use super::problem::PROBLEM_JSON;

/// Declares a reusable `application/problem+json` response: a unit type implementing
/// `utoipa::ToResponse`, to be named in a handler's `responses(...)` as
/// `(status = 404, response = NotFound)`.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident ($status:literal) => $description:literal,)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem($description).into())
                }
            }
        )*

        /// Every shared response, for the document's `components.responses`.
        fn all_problem_responses() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$((stringify!($name), problem($description).into()),)*]
        }

        /// The status a shared response (by its component name) stands for.
        pub(super) fn status_of_shared(name: &str) -> Option<u16> {
            match name {
                $(stringify!($name) => Some($status),)*
                _ => None,
            }
        }
    };
}

problem_responses! {
    /// 400: malformed JSON, path parameter, query or header (`If-Match`).
    BadRequest (400) => "Malformed request: JSON (`malformed_json`, `unreadable_body`), a path parameter (`invalid_path_parameter`), the query (`invalid_query`) or `If-Match` (`invalid_if_match`); the problem names it",
    /// 401: no key, an unknown key, an expired or revoked one.
    Unauthorized (401) => "No valid API key (`missing_api_key`, `invalid_authorization_header`, `invalid_api_key`, `api_key_revoked`, `api_key_expired`)",
    /// 403: the key lacks the operation's scope.
    Forbidden (403) => "The API key lacks the scope this operation needs (`insufficient_scope`)",
    /// 404: the resource does not exist (or no longer does).
    NotFound (404) => "Not found (`not_found`)",
    /// 409: the change conflicts with the current state.
    Conflict (409) => "Conflicts with the current state; `code` says how (`name_taken`, `in_use` with `dependants`, `concurrent_modification`, …)",
    /// 412: `If-Match` named an older version.
    PreconditionFailed (412) => "`If-Match` names an older version (`stale_version`); read again and retry with the new `ETag`",
    /// 413: the body is larger than `limits.body_bytes`.
    PayloadTooLarge (413) => "The body is larger than the configured limit (`payload_too_large`)",
    /// 415: the body is not JSON.
    UnsupportedMediaType (415) => "The body must be `application/json` (`unsupported_media_type`)",
    /// 422: a field is missing, unknown, of the wrong type or not valid.
    Unprocessable (422) => "Invalid fields; `errors` names each one (`validation_failed`)",
    /// 429: too many failed authentications from this address.
    TooManyRequests (429) => "Too many failed authentications from this address (`too_many_failed_authentications`); wait `Retry-After` seconds",
    /// 503: the store did not answer in time, or the request outran its time limit.
    Unavailable (503) => "The store is unavailable or the request took too long (`store_unavailable`, `request_timeout`); retry later",
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Completes every operation under `prefix` with what the gateway itself adds: the
/// bearer security requirement and the gateway's problem responses (a handler's own
/// declaration of the same status wins); and gives every response a description.
pub fn complete_api_operations(document: &mut utoipa::openapi::OpenApi, prefix: &str) {
    let components = document.components.get_or_insert_with(Default::default);
    for (name, response) in all_problem_responses() {
        components.responses.insert(name.to_owned(), response);
    }
    reference_page_items(components);
    for (path, item) in document.paths.paths.iter_mut() {
        let secured = path.starts_with(prefix);
        for operation in operations_mut(item) {
            tidy_summary(operation);
            if secured {
                complete(operation);
            }
            describe_responses(operation);
        }
    }
}

/// A list page `Paged_X` refers to `X` for its items instead of a copy (utoipa inlines
/// a generic's argument; generated clients would get a second model class per list).
fn reference_page_items(components: &mut utoipa::openapi::Components) {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{ArrayItems, Schema};
    let named: Vec<String> = components.schemas.keys().cloned().collect();
    for (name, schema) in components.schemas.iter_mut() {
        let Some(item) = name
            .strip_prefix("Paged_")
            .filter(|i| named.iter().any(|n| n == i))
        else {
            continue;
        };
        if let RefOr::T(Schema::Object(page)) = schema
            && let Some(RefOr::T(Schema::Array(items))) = page.properties.get_mut("items")
        {
            items.items =
                ArrayItems::RefOrSchema(Box::new(RefOr::Ref(Ref::from_schema_name(item))));
        }
    }
}

/// OpenAPI requires every response to have a description; a handler that declares only
/// a status and a body gets the status's reason phrase.
fn describe_responses(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response")
                .to_owned();
        }
    }
}

fn complete(operation: &mut Operation) {
    describe_scope(operation);
    // An operation that declares its own security (`security(())`: none, e.g. one that
    // takes a revocation token instead of an API key) keeps it.
    if operation.security.is_none() {
        operation.security = Some(vec![SecurityRequirement::new::<_, _, &str>("bearer", [])]);
    }
    let mut shared = vec![
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("429", "TooManyRequests"),
        ("503", "Unavailable"),
    ];
    if operation.request_body.is_some() {
        shared.extend([
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Unprocessable"),
        ]);
    } else if operation.parameters.as_ref().is_some_and(|p| {
        p.iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query))
    }) {
        // A query value of the right type can still be out of range (`limit=0`).
        shared.push(("422", "Unprocessable"));
    }
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// A summary is one line, one sentence (generators turn it into a docstring's first
/// line): the rest of a handler's first doc paragraph moves to the description.
fn tidy_summary(operation: &mut Operation) {
    let Some(summary) = operation.summary.take() else {
        return;
    };
    let text = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let (first, rest) = match text.find(". ") {
        Some(end) => (
            text[..=end].trim().to_owned(),
            text[end + 1..].trim().to_owned(),
        ),
        None => (text, String::new()),
    };
    operation.summary = Some(first.trim_end_matches('.').to_owned());
    if !rest.is_empty() {
        operation.description = Some(match operation.description.take() {
            Some(more) if !more.trim().is_empty() => format!("{rest}\n\n{more}"),
            _ => rest,
        });
    }
}

/// The extension every handler behind an API key declares: the scopes its key needs
/// (the auth tests check the server against it, operation by operation).
pub const REQUIRED_SCOPES_EXTENSION: &str = "x-required-scopes";

/// Says the operation's scope in its description too, where people read it.
fn describe_scope(operation: &mut Operation) {
    let Some(scopes) = operation
        .extensions
        .as_ref()
        .and_then(|e| e.get(REQUIRED_SCOPES_EXTENSION))
        .and_then(|v| v.as_array())
    else {
        return;
    };
    let names: Vec<String> = scopes
        .iter()
        .filter_map(|s| s.as_str())
        .map(|s| format!("`{s}`"))
        .collect();
    if names.is_empty() {
        return;
    }
    let line = format!(
        "Needs an API key with scope {} (`admin` has every scope); 403 `insufficient_scope` otherwise.",
        names.join(" and ")
    );
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.trim().is_empty() => format!("{text}\n\n{line}"),
        _ => line,
    });
}

/// The operations a path item has, with their methods (upper case).
pub fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("DELETE", &item.delete),
        ("GET", &item.get),
        ("HEAD", &item.head),
        ("OPTIONS", &item.options),
        ("PATCH", &item.patch),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
}

pub(super) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.delete,
        &mut item.get,
        &mut item.head,
        &mut item.options,
        &mut item.patch,
        &mut item.post,
        &mut item.put,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}
