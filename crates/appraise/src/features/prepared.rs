//! Which houses of the Houses dataset a model of formats 1 to 7 was trained on ([`DataConfig`],
//! stored in those files) and the zip-code filter that chose them ([`filter`]), which its
//! `evaluate` applies again.

use serde::{Deserialize, Serialize};

use crate::data::dataset::{self, House};
use crate::error::{Error, Result};

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
