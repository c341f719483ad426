//! How prices are written: the range columns' names and CSV fields.

/// The column of the price ranges' out-of-distribution flag.
pub const OUTSIDE_COLUMN: &str = "outside_training";

/// The column names of the range at `level`: `low_80`, `high_80`.
pub fn range_columns(level: f64) -> (String, String) {
    let pct = format!("{}", (level * 1000.0).round() / 10.0);
    (format!("low_{pct}"), format!("high_{pct}"))
}

/// `text` as one CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line end.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
