#![no_main]
//! The HousesInfo.txt parser never panics; whatever it accepts is valid.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(houses) = appraise::data::dataset::parse_houses(text, Path::new("HousesInfo.txt")) {
            for h in houses {
                assert!(h.price > 0.0 && h.bedrooms >= 0.0 && h.area.is_finite());
            }
        }
    }
});
