//! Benchmark of the pretrained photo features: where a photo's time goes (JPEG decode with
//! DCT downscaling, resize and crop, the network), the network alone on one thread in each
//! precision, then all photos of the real dataset on every core as `appraise` featurizes them
//! (cache off), in each precision, with the reduced precision's cosine similarity to f32.
//!
//! Run with `cargo bench --bench featurize` and `APPRAISE_DATASET` set.

use std::path::PathBuf;
use std::time::Instant;

use appraise::photos::extractor::{self, Backbone, EfficientNetLite0, Featurizer, Precision};
use appraise::photos::montage as photos;

/// Seconds per pass of the network alone on one photo-like input, over ~5 s after a warm-up.
fn network_alone(net: &EfficientNetLite0, precision: Precision) -> f64 {
    let input: Vec<f32> = (0..3 * extractor::INPUT * extractor::INPUT)
        .map(|i| ((i * 7919) % 255) as f32 / 128.0 - 1.0)
        .collect();
    for _ in 0..5 {
        net.embed_in(&input, precision);
    }
    let (mut runs, t) = (0, Instant::now());
    while t.elapsed().as_secs_f64() < 5.0 {
        assert_eq!(net.embed_in(&input, precision).len(), extractor::EMBEDDING);
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
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        println!(
            "network alone, one thread, {}: {:.2} ms a photo",
            precision.name(),
            1e3 * network_alone(net, precision)
        );
    }
    println!(
        "per photo (one thread): decode {:.1} ms, resize+crop {:.1} ms, network {:.1} ms",
        1e3 * decode / n,
        1e3 * prepare / n,
        1e3 * forward / n
    );
    let all: Vec<PathBuf> = (1..=535)
        .flat_map(|h| rooms.map(|room| photos::photo_path(&dir, h, room)))
        .collect();
    let mut reference: Option<Vec<Vec<f32>>> = None;
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        let featurizer = Featurizer {
            backbone: Backbone::default(),
            precision,
        };
        let t = Instant::now();
        let embeddings = extractor::embed_photos(
            featurizer,
            &all,
            &|_| {},
            &appraise::runtime::cancel::Cancel::default(),
        )
        .unwrap();
        let wall = t.elapsed().as_secs_f64();
        println!(
            "embed all {} photos, cold, every core, {}: {wall:.1} s ({:.1} ms a photo)",
            embeddings.len(),
            precision.name(),
            1e3 * wall / embeddings.len() as f64
        );
        match &reference {
            None => reference = Some(embeddings),
            Some(f32) => {
                let cosines: Vec<f64> = f32
                    .iter()
                    .zip(&embeddings)
                    .map(|(a, b)| cosine(a, b))
                    .collect();
                let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
                println!(
                    "  its embeddings' cosine similarity to f32: mean {:.5}, lowest {min:.5}",
                    cosines.iter().sum::<f64>() / cosines.len() as f64
                );
            }
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum::<f64>()
    };
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}
