//! The web page at `/`: a form built from a model's fields (a drop-down of the categories it
//! knows, number fields with the training range as a hint, photo pickers for photo models)
//! that shows the price, its range and the model's card. One self-contained file, served by
//! the binary: no CDN, no network.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page.
pub const HTML: &str = include_str!("page.html");

/// `GET /`.
pub async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on the page may come from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:",
            ),
        ],
        HTML,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        assert!(!super::HTML.contains("http://") && !super::HTML.contains("https://"));
    }
}
