#![no_main]
//! The prediction-input parsers (a CSV table, or HousesInfo.txt style) never panic.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("houses.csv");
    match std::str::from_utf8(data) {
        Ok(text) if appraise::data::dataset::looks_like_houses_info(text) => {
            if let Ok(frame) = appraise::data::dataset::query_table(text, path) {
                let _ = appraise::data::dataset::check_attributes(&frame);
            }
        }
        _ => {
            let _ = appraise::data::table::from_csv(data, path);
        }
    }
});
