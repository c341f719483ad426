#![no_main]
//! The model-file loader never panics on any bytes; a loaded model summarizes.
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = appraise::io::artifact::from_bytes(data, Path::new("m.appraise")) {
        let _ = appraise::io::artifact::summary(&model);
    }
});
