//! The houses of a run, chosen, split and preprocessed: which houses to keep
//! ([`DataConfig`], [`filter`]), the split, the fitted preprocessing, the training and test
//! tables, and what was read from their photos ([`PhotoInputs`]).

use serde::{Deserialize, Serialize};

use crate::data::dataset::{self, House};
use crate::data::split::{Split, train_test_split};
use crate::error::{Error, Result};
use crate::features::preprocess::Preprocessor;
use crate::fit::train::Table;
use crate::photos::extractor::PhotoFeatures;
use crate::photos::montage::{self as photos, MONTAGE_BYTES, Montages};

/// Which houses to use and how to split them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// Drop houses whose zip code occurs fewer times than this.
    pub min_zip_count: usize,
    /// Fraction of houses held out for testing.
    pub test_size: f64,
    /// `random_state` of scikit-learn's `train_test_split`.
    pub split_seed: u32,
}

impl Default for DataConfig {
    /// The tutorial's settings.
    fn default() -> Self {
        Self {
            min_zip_count: 25,
            test_size: 0.25,
            split_seed: 42,
        }
    }
}

/// What a run reads from the houses' photos, per house in the order of the kept houses.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PhotoInputs {
    /// Nothing (attributes only).
    #[default]
    None,
    /// The 64x64 montages the tutorial's photo networks read.
    Montages(Montages),
    /// The pretrained network's embeddings of every photo ([`crate::photos::extractor`]), which the
    /// recipe and the pretrained photo model read.
    Features(PhotoFeatures),
}

/// The houses of a run, split and preprocessed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Houses kept by the zip filter, in file order.
    pub houses: Vec<House>,
    /// Positions into `houses`.
    pub split: Split,
    /// Preprocessing fitted on the training houses.
    pub preprocessor: Preprocessor,
    /// Training features and targets.
    pub train: Table,
    /// Test features and targets.
    pub test: Table,
    /// The pretrained photo features of each house of `houses` (`None` when the run does not
    /// read them).
    pub photo_features: Option<PhotoFeatures>,
}

impl Prepared {
    /// The test houses, in split order.
    pub fn test_houses(&self) -> Vec<House> {
        pick(&self.houses, &self.split.test)
    }

    /// The training houses, in split order.
    pub fn train_houses(&self) -> Vec<House> {
        pick(&self.houses, &self.split.train)
    }

    /// The photo features of the training and the test houses, in split order (`None` when
    /// not read).
    pub fn split_photo_features(&self) -> Option<(PhotoFeatures, PhotoFeatures)> {
        let f = self.photo_features.as_ref()?;
        Some((f.pick(&self.split.train), f.pick(&self.split.test)))
    }
}

fn pick(houses: &[House], rows: &[usize]) -> Vec<House> {
    rows.iter().map(|&i| houses[i]).collect()
}

/// Keeps the houses whose zip code is common enough; refuses when fewer than 2 remain.
pub fn filter(all: &[House], config: &DataConfig) -> Result<Vec<House>> {
    let houses = dataset::filter_min_zip_count(all, config.min_zip_count);
    if houses.len() < 2 {
        return Err(Error::Usage(format!(
            "only {} of {} houses have a zip code that occurs at least {} times (`min_zip_count`); \
             at least 2 are needed to train and test",
            houses.len(),
            all.len(),
            config.min_zip_count
        )));
    }
    Ok(houses)
}

/// Preprocesses `houses` (already filtered) for a given split. `photos` holds what was read
/// from the photos of every house of `houses`, in the same order: with montages, the tables
/// carry images.
pub fn prepare_split(houses: Vec<House>, split: Split, photos: &PhotoInputs) -> Prepared {
    let montages = match photos {
        PhotoInputs::Montages(m) => Some(m),
        _ => None,
    };
    let train_houses = pick(&houses, &split.train);
    let test_houses = pick(&houses, &split.test);
    let preprocessor = Preprocessor::fit(&houses, &train_houses);
    let table = |h: &[House], rows: &[usize]| {
        let mut images = Vec::new();
        if let Some(m) = montages {
            debug_assert_eq!(m.ids.len(), houses.len());
            images.reserve(rows.len() * MONTAGE_BYTES);
            for &row in rows {
                photos::push_network_input(m.get(row), &mut images);
            }
        }
        Table {
            features: preprocessor.features(h),
            n_features: preprocessor.n_features(),
            targets: preprocessor.targets(h),
            images,
        }
    };
    let (train, test) = (
        table(&train_houses, &split.train),
        table(&test_houses, &split.test),
    );
    Prepared {
        houses,
        split,
        preprocessor,
        train,
        test,
        photo_features: match photos {
            PhotoInputs::Features(f) => Some(f.clone()),
            _ => None,
        },
    }
}

/// Filters, splits and preprocesses `all` houses as the tutorial does (attributes only).
pub fn prepare(all: &[House], config: &DataConfig) -> Result<Prepared> {
    let houses = filter(all, config)?;
    let split = train_test_split(houses.len(), config.test_size, config.split_seed)?;
    Ok(prepare_split(houses, split, &PhotoInputs::None))
}
