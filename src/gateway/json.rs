//! Request bodies. `JsonBody<T>` reads at most the configured number of bytes (413
//! beyond), refuses non-JSON content types (415), and names the offending field in its
//! errors: 400 for malformed JSON, 422 for a wrong type, a missing or an unknown field.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use super::problem_code as codes;

/// The largest body a request may carry, in bytes (set from `limits.body_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty body means `T::default()` (for requests whose
/// fields are all optional, such as an export without a passphrase).
pub struct JsonBodyOrEmpty<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { parse(&body.await?).map(JsonBody) })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonBodyOrEmpty<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(JsonBodyOrEmpty(T::default()));
            }
            parse(&body).map(JsonBodyOrEmpty)
        })
    }
}

/// Reads the whole body, refusing non-JSON content types (415) and bodies over the
/// limit (413) without reading more than the limit.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<BytesMut, ApiError>> {
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    let content_type_ok = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(is_json_media_type);
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        if !content_type_ok {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        if declared_length.is_some_and(|n| n > limit) {
            return Err(ApiError::payload_too_large(limit));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    codes::UNREADABLE_BODY,
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
}

fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `body` as `T`, turning serde's errors into problem responses that name the field.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            codes::MALFORMED_JSON,
            "the request body is empty; a JSON object is expected",
        ));
    }
    // Every request body is an object; serde would also read a struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            return Err(ApiError::bad_request(
                codes::MALFORMED_JSON,
                "the request body is not valid JSON",
            ));
        }
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(to_api_error)?;
    deserializer.end().map_err(|e| {
        ApiError::bad_request(
            codes::MALFORMED_JSON,
            format!("the request body is not valid JSON: {}", strip_location(&e)),
        )
    })?;
    Ok(value)
}

fn to_api_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = strip_location(&inner);
    if !inner.is_data() {
        return ApiError::bad_request(
            codes::MALFORMED_JSON,
            format!("the request body is not valid JSON: {message}"),
        );
    }
    // serde reports a missing field at its parent's path, with the field's name in the
    // message between backticks; an unknown field's path already ends with its name.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    let at_root = matches!(path.as_str(), "." | "");
    let field = match (missing, unknown) {
        (Some(name), _) if at_root => name.to_owned(),
        (Some(name), _) => format!("{path}.{name}"),
        (None, Some(name)) if at_root => name.to_owned(),
        (None, _) if at_root => "body".to_owned(),
        (None, _) => path,
    };
    ApiError::invalid_field(field, message)
}

/// serde_json appends " at line L column C"; clients get the field name instead.
fn strip_location(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
        tags: Option<Vec<u8>>,
    }

    fn field_of(body: &str) -> (String, String) {
        let err = parse::<Body>(body.as_bytes()).unwrap_err();
        let field = err
            .field_errors()
            .first()
            .map(|e| e.field.clone())
            .unwrap_or_default();
        (err.code().name().to_owned(), field)
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"name":"a","count":"x"}"#),
            ("validation_failed".into(), "count".into())
        );
        assert_eq!(
            field_of(r#"{"count":1}"#),
            ("validation_failed".into(), "name".into())
        );
        assert_eq!(
            field_of(r#"{"name":"a","count":1,"extra":1}"#),
            ("validation_failed".into(), "extra".into())
        );
        assert_eq!(
            field_of(r#"{"name":"a","count":1,"tags":[1,"x"]}"#),
            ("validation_failed".into(), "tags[1]".into())
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert_eq!(field_of(r#"{"name":"#).0, "malformed_json");
        assert_eq!(field_of("").0, "malformed_json");
        assert_eq!(
            field_of(r#"{"name":"a","count":1} trailing"#).0,
            "malformed_json"
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
    }
}
