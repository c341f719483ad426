#![no_main]
//! The prediction-input parser (CSV or HousesInfo.txt style) never panics.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(queries) = appraise::io::predict::parse_queries(text, Path::new("houses.csv")) {
            for q in queries.rows {
                assert!(q.continuous.iter().all(|v| v.is_finite() && *v >= 0.0));
            }
        }
    }
});
