//! Last touches on the OpenAPI document that utoipa's derives cannot express, made once
//! here so they apply to every plugin's operations alike:
//!
//! - A parameter is never `null`: a query value or header is present or absent
//!   (`required`), and utoipa's `Option<T>` → `T | null` told generators and fuzzers
//!   that `null` (or an empty value) is a thing to send.
//! - An optional request body is `required: false` with its object schema, not a
//!   `oneOf` with `null` (which declared the JSON text `null` a valid body).
//! - `If-Match` has the one form the server reads (see `versioning::IfMatch`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

/// What `versioning::IfMatch` accepts: `*`, or a version of at most 18 digits, quoted
/// as the `ETag` has it or bare.
pub const IF_MATCH_PATTERN: &str = r#"^(\*|"[0-9]{1,18}"|[0-9]{1,18})$"#;

/// What `Versioned` sends: the version, quoted.
pub const ETAG_PATTERN: &str = r#"^"[0-9]{1,18}"$"#;

pub fn refine(document: &mut OpenApi) {
    link_created_resources(document);
    describe_etags(document);
    for item in document.paths.paths.values_mut() {
        for operation in super::responses::operations_mut(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                rewrite(parameter, refine_parameter);
            }
            if let Some(body) = operation.request_body.as_mut() {
                rewrite(body, refine_optional_body);
            }
        }
    }
}

/// `Problem.code` as the enum of every code the server can answer with (each code's
/// meaning in the description, for readers of the document), and the members plugins
/// add to their problems as typed, optional properties.
pub fn declare_problems(
    document: &mut OpenApi,
    codes: &[super::ProblemCode],
    members: Vec<(
        &'static str,
        utoipa::openapi::RefOr<utoipa::openapi::Schema>,
    )>,
) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};
    let Some(RefOr::T(Schema::Object(problem))) = document
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("Problem"))
    else {
        return;
    };
    let meanings: String = codes
        .iter()
        .map(|c| format!("\n- `{}`: {}", c.name(), c.meaning()))
        .collect();
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.iter().map(|c| c.name())))
        .description(Some(format!(
            "Stable, machine-readable error code (also the end of `type`):{meanings}"
        )))
        .build();
    problem
        .properties
        .insert("code".to_owned(), RefOr::T(Schema::Object(code)));
    for (name, schema) in members {
        problem.properties.entry(name.to_owned()).or_insert(schema);
    }
}

/// The `request_id` of every example problem.
const EXAMPLE_REQUEST_ID: &str = "b3c1f0e2-6d4a-4f8e-9a27-1c5e8d0b4f6a";

/// Gives every request and response body of every operation an `example`, so each
/// operation shows what to send and what comes back (and fuzzers start from something
/// realistic): a body whose schema names a component takes that component's first
/// `examples` entry (declared beside its type with `#[schema(examples(...))]`); a list
/// page is one item and a `next_cursor`; a problem is the first code its description
/// names, with that code's meaning as its detail. A body that already has an example
/// (text downloads, declared by their handler) keeps it.
pub fn exemplify(document: &mut OpenApi, codes: &[super::ProblemCode]) {
    use utoipa::openapi::{RefOr, Schema};
    let Some(components) = document.components.as_mut() else {
        return;
    };
    let first_example = |schema: &RefOr<Schema>| match schema {
        RefOr::T(Schema::Object(object)) => object.examples.first().cloned(),
        // A type with a flattened part (`CreatedApiKey`).
        RefOr::T(Schema::AllOf(all_of)) => all_of.examples.first().cloned(),
        _ => None,
    };
    let mut examples: std::collections::BTreeMap<String, Value> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| Some((name.clone(), first_example(schema)?)))
        .collect();
    let pages: Vec<(String, Value)> = components
        .schemas
        .keys()
        .filter_map(|name| {
            let item = examples.get(name.strip_prefix("Paged_")?)?;
            Some((name.clone(), json!({"items": [item], "next_cursor": "42"})))
        })
        .collect();
    examples.extend(pages);
    for (name, response) in components.responses.iter_mut() {
        if let RefOr::T(response) = response {
            let status = super::responses::status_of_shared(name).unwrap_or(400);
            exemplify_response(response, status, &examples, codes);
        }
    }
    for item in document.paths.paths.values_mut() {
        for operation in super::responses::operations_mut(item) {
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    exemplify_content(content, &examples);
                }
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response {
                    let status = status.parse().unwrap_or(400);
                    exemplify_response(response, status, &examples, codes);
                }
            }
        }
    }
}

fn exemplify_response(
    response: &mut utoipa::openapi::Response,
    status: u16,
    examples: &std::collections::BTreeMap<String, Value>,
    codes: &[super::ProblemCode],
) {
    use utoipa::openapi::RefOr;
    for (media_type, content) in response.content.iter_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        if media_type == super::PROBLEM_JSON {
            if content.example.is_none() {
                content.example = problem_example(&response.description, status, codes);
            }
        } else {
            exemplify_content_of(content, examples);
        }
    }
}

fn exemplify_content(
    content: &mut utoipa::openapi::RefOr<utoipa::openapi::Content>,
    examples: &std::collections::BTreeMap<String, Value>,
) {
    if let utoipa::openapi::RefOr::T(content) = content {
        exemplify_content_of(content, examples);
    }
}

fn exemplify_content_of(
    content: &mut utoipa::openapi::Content,
    examples: &std::collections::BTreeMap<String, Value>,
) {
    use utoipa::openapi::RefOr;
    if content.example.is_some() || !content.examples.is_empty() {
        return;
    }
    if let Some(RefOr::Ref(reference)) = &content.schema
        && let Some(name) = reference.ref_location.rsplit('/').next()
    {
        content.example = examples.get(name).cloned();
    }
}

/// The problem a response with this description and status answers: the first
/// backticked word of the description that is a code (the gateway's descriptions and
/// the handlers' name their codes that way).
fn problem_example(description: &str, status: u16, codes: &[super::ProblemCode]) -> Option<Value> {
    let code = description
        .split('`')
        .skip(1)
        .step_by(2)
        .find_map(|word| codes.iter().find(|c| c.name() == word))?;
    let title = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut example = json!({
        "type": format!("urn:credgate:problem:{}", code.name()),
        "title": title,
        "status": status,
        "detail": code.meaning(),
        "code": code.name(),
        "request_id": EXAMPLE_REQUEST_ID,
    });
    if code.name() == super::problem_code::VALIDATION_FAILED.name() {
        example["detail"] = json!("name: must not be empty");
        example["errors"] = json!([{"field": "name", "message": "must not be empty"}]);
    }
    Some(example)
}

/// Adds OpenAPI links from each `201 Created` to the operations on what it created,
/// so generators and stateful fuzzers know that the `id` in the body names
/// `…/{id}`: `POST /x` (or `POST /x/verb`) → every operation on `/x/{id}` and below.
/// Only a created body with a top-level `id` gets links (an API key's is nested with its
/// one-time secret: fuzzers need not revoke keys).
fn link_created_resources(document: &mut OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::{RefOr, Schema};
    let has_id = |schema_name: &str| {
        document
            .components
            .as_ref()
            .and_then(|c| c.schemas.get(schema_name))
            .is_some_and(
                |s| matches!(s, RefOr::T(Schema::Object(o)) if o.properties.contains_key("id")),
            )
    };
    // (creating path, created body schema) for every POST answering 201.
    let creators: Vec<(String, String)> = document
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let created = item.post.as_ref()?.responses.responses.get("201")?;
            let RefOr::T(created) = created else {
                return None;
            };
            let RefOr::T(content) = created.content.get("application/json")? else {
                return None;
            };
            let schema = content.schema.as_ref()?;
            let RefOr::Ref(reference) = schema else {
                return None;
            };
            let name = reference.ref_location.rsplit('/').next()?.to_owned();
            has_id(&name).then(|| (path.clone(), name))
        })
        .collect();
    let targets: Vec<(String, String)> = document
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            super::responses::operations(item)
                .filter_map(|(_, op)| op.operation_id.clone())
                .map(|id| (path.clone(), id))
                .collect::<Vec<_>>()
        })
        .collect();
    for (creator, _) in creators {
        let collections = [
            creator.clone(),
            creator
                .rsplit_once('/')
                .map(|(parent, _)| parent.to_owned())
                .unwrap_or_default(),
        ];
        let Some(collection) = collections
            .iter()
            .find(|c| targets.iter().any(|(p, _)| *p == format!("{c}/{{id}}")))
        else {
            continue;
        };
        let member = format!("{collection}/{{id}}");
        let links: Vec<(String, RefOr<utoipa::openapi::link::Link>)> = targets
            .iter()
            .filter(|(path, _)| *path == member || path.starts_with(&format!("{member}/")))
            .map(|(_, operation_id)| {
                let link = LinkBuilder::new()
                    .operation_id(operation_id.clone())
                    .parameter("id", "$response.body#/id")
                    .description("The `id` of the created resource")
                    .build();
                (operation_id.clone(), RefOr::T(link))
            })
            .collect();
        if let Some(RefOr::T(created)) = document
            .paths
            .paths
            .get_mut(&creator)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut("201"))
        {
            created.links.extend(links);
        }
    }
}

/// Edits `part` through its JSON form. Only small parts make the trip (a parameter, a
/// request body): utoipa cannot read back every schema it writes (one without a `type`),
/// so the document as a whole never does. A part that would not read back stays as it was.
fn rewrite<T: Serialize + DeserializeOwned>(part: &mut T, edit: fn(&mut Value)) {
    let Ok(mut value) = serde_json::to_value(&*part) else {
        return;
    };
    edit(&mut value);
    if let Ok(edited) = serde_json::from_value(value) {
        *part = edited;
    }
}

fn refine_parameter(parameter: &mut Value) {
    let is_if_match = parameter
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("If-Match"));
    if is_if_match {
        let said = parameter
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('.')
            .to_owned();
        let form = "`\"N\"` as the `ETag` has it, bare `N`, or `*`. Optional: without it the change applies to the current version, so no operation answers 428.";
        parameter["description"] = json!(if said.is_empty() {
            form.to_owned()
        } else {
            format!("{said}. {form}")
        });
    }
    let Some(schema) = parameter.get_mut("schema") else {
        return;
    };
    drop_null_type(schema);
    if is_if_match {
        schema["pattern"] = json!(IF_MATCH_PATTERN);
        schema["examples"] = json!(["\"3\""]);
    }
}

/// The `ETag` header every versioned response sets: its exact form.
fn describe_etags(document: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    for item in document.paths.paths.values_mut() {
        for operation in super::responses::operations_mut(item) {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if let Some(header) = response.headers.get_mut("ETag") {
                    rewrite(header, describe_etag);
                }
            }
        }
    }
}

fn describe_etag(header: &mut Value) {
    header["description"] = json!(
        "The resource's edit version, quoted (`\"3\"`); it moves only when an editable setting changes. Send it back in `If-Match`."
    );
    header["schema"] = json!({"type": "string", "pattern": ETAG_PATTERN, "examples": ["\"3\""]});
}

/// `"type": ["string", "null"]` → `"type": "string"`.
fn drop_null_type(schema: &mut Value) {
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let kept: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        schema["type"] = match kept.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(kept),
        };
    }
}

/// `oneOf: [X, {type: null}]` as a body's schema → `X`, the body not required.
fn refine_optional_body(body: &mut Value) {
    let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    let mut optional = false;
    for media in content.values_mut() {
        let Some(one_of) = media
            .pointer("/schema/oneOf")
            .and_then(Value::as_array)
            .cloned()
        else {
            continue;
        };
        let (nulls, others): (Vec<Value>, Vec<Value>) = one_of
            .into_iter()
            .partition(|s| s.get("type").and_then(Value::as_str) == Some("null"));
        if let ([_], [only]) = (nulls.as_slice(), others.as_slice()) {
            media["schema"] = only.clone();
            optional = true;
        }
    }
    if optional {
        body["required"] = json!(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_parameters_and_optional_bodies_are_spelled_plainly() {
        let mut if_match =
            json!({"name": "If-Match", "in": "header", "schema": {"type": ["string", "null"]}});
        refine_parameter(&mut if_match);
        assert_eq!(
            if_match["schema"],
            json!({"type": "string", "pattern": IF_MATCH_PATTERN, "examples": ["\"3\""]})
        );
        let mut cursor =
            json!({"name": "cursor", "in": "query", "schema": {"type": ["string", "null"]}});
        refine_parameter(&mut cursor);
        assert_eq!(cursor["schema"], json!({"type": "string"}));
        let mut many =
            json!({"name": "ids", "in": "query", "schema": {"type": ["array", "string", "null"]}});
        refine_parameter(&mut many);
        assert_eq!(many["schema"], json!({"type": ["array", "string"]}));
        let mut body = json!({"required": true, "content": {"application/json": {"schema": {
            "oneOf": [{"$ref": "#/components/schemas/Body"}, {"type": "null"}]
        }}}});
        refine_optional_body(&mut body);
        assert_eq!(
            body,
            json!({"required": false, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Body"
            }}}})
        );
    }

    /// The edits survive utoipa's own types (what the served document is made of).
    #[test]
    fn a_refined_part_reads_back() {
        let mut parameter: utoipa::openapi::path::Parameter = serde_json::from_value(
            json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": ["string", "null"]}}),
        )
        .unwrap();
        rewrite(&mut parameter, refine_parameter);
        let written = serde_json::to_value(&parameter).unwrap();
        assert_eq!(written["schema"]["pattern"], IF_MATCH_PATTERN);
        assert_eq!(written["schema"]["type"], "string");
    }
}
