//! The one error type every handler answers with: a status and a JSON body
//! `{"error": "...", "field": "..."}` (the Open Inference Protocol's error object, plus the
//! field at fault when there is one).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A request the server refuses, or (500 only) a failure of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do.
    pub message: String,
    /// The request field at fault (`houses[0].area`, `inputs[2].data`), when there is one.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 400 about the request as a whole.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::status(StatusCode::BAD_REQUEST, message)
    }

    /// Any status, no field.
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The model named in the path does not exist.
    pub fn unknown_model(name: &str, known: &[&str]) -> Self {
        Self::status(
            StatusCode::NOT_FOUND,
            format!(
                "no model named {name:?}; this server has: {}",
                known.join(", ")
            ),
        )
    }

    /// The library's error pricing houses: a field at fault, bad usage, or (never the
    /// client's doing) a failure of the server.
    pub fn from_pricing(error: appraise::Error, houses_field: &str) -> Self {
        match error {
            appraise::Error::Field {
                house,
                field,
                message,
            } => Self::field(format!("{houses_field}[{house}].{field}"), message),
            e @ (appraise::Error::Usage(_)
            | appraise::Error::Input { .. }
            | appraise::Error::Parse { .. }) => Self::bad(e.to_string()),
            e => Self::status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error: &self.message,
            field: self.field.as_deref(),
        })
        .expect("an error serializes");
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_error_of_the_library_names_the_request_field() {
        let e = ApiError::from_pricing(
            appraise::Error::Field {
                house: 2,
                field: "area".into(),
                message: "must be a number".into(),
            },
            "houses",
        );
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("houses[2].area"));
    }
}
