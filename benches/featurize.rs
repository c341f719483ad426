//! Benchmark of the pretrained photo features: where a photo's time goes (JPEG decode with
//! DCT downscaling, resize and crop, the network), one thread, then all photos of the real
//! dataset on every core as `appraise` featurizes them (cache off).
//!
//! Run with `cargo bench --bench featurize` and `APPRAISE_DATASET` set.

use std::path::PathBuf;
use std::time::Instant;

use appraise::photos::extractor::{self, Backbone, EfficientNetLite0};
use appraise::photos::montage as photos;

/// Seconds per pass of the network alone on one photo-like input, over ~5 s after a warm-up.
fn network_alone(net: &EfficientNetLite0) -> f64 {
    let input: Vec<f32> = (0..3 * extractor::INPUT * extractor::INPUT)
        .map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0)
        .collect();
    for _ in 0..5 {
        net.embed(&input);
    }
    let (mut runs, t) = (0, Instant::now());
    while t.elapsed().as_secs_f64() < 5.0 {
        assert_eq!(net.embed(&input).len(), extractor::EMBEDDING);
        runs += 1;
    }
    t.elapsed().as_secs_f64() / f64::from(runs)
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("APPRAISE_DATASET").expect("set APPRAISE_DATASET to the Houses Dataset"),
    );
    let rooms = photos::ROOMS;
    let houses: Vec<usize> = (1..=20).collect();
    let (mut decode, mut prepare, mut forward) = (0.0, 0.0, 0.0);
    let net = EfficientNetLite0::get();
    for &h in &houses {
        for room in rooms {
            let mut input = Vec::new();
            let t = Instant::now();
            let photo = photos::load_photo(&photos::photo_path(&dir, h, room), 256).unwrap();
            decode += t.elapsed().as_secs_f64();
            let t = Instant::now();
            extractor::network_input(&photo, &mut input);
            prepare += t.elapsed().as_secs_f64();
            let t = Instant::now();
            assert_eq!(net.embed(&input).len(), extractor::EMBEDDING);
            forward += t.elapsed().as_secs_f64();
        }
    }
    let n = (houses.len() * rooms.len()) as f64;
    println!(
        "network alone, one thread: {:.2} ms a photo",
        1e3 * network_alone(net)
    );
    println!(
        "per photo (one thread): decode {:.1} ms, resize+crop {:.1} ms, network {:.1} ms",
        1e3 * decode / n,
        1e3 * prepare / n,
        1e3 * forward / n
    );
    let all: Vec<PathBuf> = (1..=535)
        .flat_map(|h| rooms.map(|room| photos::photo_path(&dir, h, room)))
        .collect();
    let t = Instant::now();
    let embeddings = extractor::embed_photos(
        Backbone::default(),
        &all,
        &|_| {},
        &appraise::runtime::cancel::Cancel::default(),
    )
    .unwrap();
    let wall = t.elapsed().as_secs_f64();
    println!(
        "embed all {} photos, cold, every core: {wall:.1} s ({:.1} ms a photo)",
        embeddings.len(),
        1e3 * wall / embeddings.len() as f64
    );
}
