//! Cursor pagination for list endpoints. The cursor is the sort key of the last item
//! returned (a decimal number), so pages stay stable while items are added. Clients pass
//! back what they were given; any number of the declared form is a valid place to
//! continue from, so the document's pattern and the server agree on every value.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::ApiError;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page; omit for the first page.
    #[param(pattern = r"^(0|[1-9][0-9]{0,17})$", example = "42")]
    pub cursor: Option<String>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl PageParams {
    /// The sort key to continue after, and the page size.
    pub fn resolve(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                "must be between 1 and 200",
            ));
        }
        let after = match &self.cursor {
            None => 0,
            Some(cursor) => decode(cursor).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor this service issued")
            })?,
        };
        Ok((after, limit))
    }
}

pub fn encode(sort_key: i64) -> String {
    sort_key.to_string()
}

/// The inverse of `encode`, exactly the document's pattern: `0` or up to 18 digits
/// without a leading zero (so it always fits an `i64`).
pub fn decode(cursor: &str) -> Option<i64> {
    crate::decimal::parse_canonical(cursor)
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    /// The items, each the same schema as one read alone (the document refers to it:
    /// see `responses::reference_page_items`).
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of read models as a `200` response, each turned into its API form by `to_item`.
pub fn page_response<V, T: ToSchema + Serialize>(
    page: crate::store::Page<V>,
    to_item: impl Fn(V) -> Result<T, ApiError>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let items = page
        .items
        .into_iter()
        .map(to_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(actix_web::HttpResponse::Ok().json(Paged {
        items,
        next_cursor: page.next_after.map(encode),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode(&encode(42)), Some(42));
        assert_eq!(decode("not-a-cursor"), None);
        let params = PageParams {
            cursor: Some("%%".into()),
            limit: None,
        };
        assert_eq!(params.resolve().unwrap_err().code(), "validation_failed");
        let params = PageParams {
            cursor: None,
            limit: Some(0),
        };
        assert!(params.resolve().is_err());
        let params = PageParams {
            cursor: Some(encode(7)),
            limit: Some(10),
        };
        assert_eq!(params.resolve().unwrap(), (7, 10));
    }
}
