//! Feature and target preprocessing, fitted once and kept as one serializable value so that a
//! saved model can transform new houses exactly as it transformed its training data.

use serde::{Deserialize, Serialize};

use crate::dataset::House;

/// The continuous attributes, in feature order.
pub const CONTINUOUS: [&str; 3] = ["bedrooms", "bathrooms", "area"];

/// Fitted preprocessing: the zip-code vocabulary (one-hot), min-max bounds of the continuous
/// attributes and the price scale.
///
/// Feature vector = `[one-hot zip codes..., bedrooms, bathrooms, area]`, as in the tutorial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Sorted distinct zip codes (scikit-learn's `LabelBinarizer` classes).
    pub zip_codes: Vec<u32>,
    /// Minimum of bedrooms, bathrooms, area over the training rows.
    pub min: [f64; 3],
    /// Maximum of bedrooms, bathrooms, area over the training rows.
    pub max: [f64; 3],
    /// Prices are divided by this (the highest training price) to form the target.
    pub price_scale: f64,
}

fn continuous(house: &House) -> [f64; 3] {
    [house.bedrooms, house.bathrooms, house.area]
}

impl Preprocessor {
    /// Fits the preprocessing: bounds and price scale on `train` only, the zip vocabulary on
    /// `all` (every kept house, as the tutorial's `LabelBinarizer().fit(df["zipcode"])` does).
    ///
    /// `train` must not be empty.
    pub fn fit(all: &[House], train: &[House]) -> Self {
        let mut zip_codes: Vec<u32> = all.iter().map(|h| h.zipcode).collect();
        zip_codes.sort_unstable();
        zip_codes.dedup();
        let mut min = [f64::INFINITY; 3];
        let mut max = [f64::NEG_INFINITY; 3];
        for house in train {
            for (k, v) in continuous(house).into_iter().enumerate() {
                min[k] = min[k].min(v);
                max[k] = max[k].max(v);
            }
        }
        let price_scale = train
            .iter()
            .map(|h| h.price)
            .fold(f64::NEG_INFINITY, f64::max);
        Self {
            zip_codes,
            min,
            max,
            price_scale,
        }
    }

    /// Number of model inputs: one per zip code plus the three continuous attributes.
    pub fn n_features(&self) -> usize {
        self.zip_codes.len() + CONTINUOUS.len()
    }

    /// Position of `zipcode` in the vocabulary, if known.
    pub fn zip_index(&self, zipcode: u32) -> Option<usize> {
        self.zip_codes.binary_search(&zipcode).ok()
    }

    /// Appends the feature vector of one house to `out`. An unknown zip code gets an all-zero
    /// one-hot (what `LabelBinarizer` does); callers that must refuse unknown zips check
    /// [`Preprocessor::zip_index`] first.
    pub fn push_features(&self, house: &House, out: &mut Vec<f32>) {
        self.push_attributes(continuous(house), house.zipcode, out);
    }

    /// Like [`Preprocessor::push_features`], from the attributes alone
    /// (`[bedrooms, bathrooms, area]` and the zip code).
    pub fn push_attributes(&self, continuous: [f64; 3], zipcode: u32, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + self.zip_codes.len(), 0.0);
        if let Some(i) = self.zip_index(zipcode) {
            out[start + i] = 1.0;
        }
        for (k, v) in continuous.into_iter().enumerate() {
            // scikit-learn's MinMaxScaler: a constant column scales by 1.
            let range = self.max[k] - self.min[k];
            let range = if range == 0.0 { 1.0 } else { range };
            out.push(((v - self.min[k]) / range) as f32);
        }
    }

    /// Feature matrix of `houses`, row-major, `houses.len() x n_features()`.
    pub fn features(&self, houses: &[House]) -> Vec<f32> {
        let mut out = Vec::with_capacity(houses.len() * self.n_features());
        for house in houses {
            self.push_features(house, &mut out);
        }
        out
    }

    /// Scaled targets: price / price_scale.
    pub fn targets(&self, houses: &[House]) -> Vec<f32> {
        houses
            .iter()
            .map(|h| (h.price / self.price_scale) as f32)
            .collect()
    }

    /// The attributes of `continuous` (`[bedrooms, bathrooms, area]`) that lie outside the
    /// training range, by name.
    pub fn out_of_range(&self, continuous: [f64; 3]) -> Vec<&'static str> {
        (0..3)
            .filter(|&k| continuous[k] < self.min[k] || continuous[k] > self.max[k])
            .map(|k| CONTINUOUS[k])
            .collect()
    }

    /// Turns a scaled model output back into dollars.
    pub fn price(&self, scaled: f32) -> f64 {
        f64::from(scaled) * self.price_scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn house(
        id: usize,
        bedrooms: f64,
        bathrooms: f64,
        area: f64,
        zipcode: u32,
        price: f64,
    ) -> House {
        House {
            id,
            bedrooms,
            bathrooms,
            area,
            zipcode,
            price,
        }
    }

    #[test]
    fn fits_on_training_rows_and_encodes_like_the_tutorial() {
        let train = [
            house(1, 2.0, 1.0, 1000.0, 20, 100.0),
            house(2, 4.0, 3.0, 3000.0, 10, 400.0),
        ];
        let test = [house(3, 6.0, 2.0, 500.0, 30, 200.0)];
        let all: Vec<House> = train.iter().chain(test.iter()).copied().collect();
        let p = Preprocessor::fit(&all, &train);
        assert_eq!(p.zip_codes, vec![10, 20, 30]);
        assert_eq!(p.min, [2.0, 1.0, 1000.0]);
        assert_eq!(p.max, [4.0, 3.0, 3000.0]);
        assert_eq!(p.price_scale, 400.0);
        assert_eq!(p.n_features(), 6);
        assert_eq!(
            p.features(&train),
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
        );
        // Test rows may fall outside [0, 1].
        assert_eq!(p.features(&test), vec![0.0, 0.0, 1.0, 2.0, 0.5, -0.25]);
        assert_eq!(p.targets(&test), vec![0.5]);
        assert_eq!(p.price(0.5), 200.0);
    }

    #[test]
    fn constant_column_and_unknown_zip() {
        let train = [
            house(1, 3.0, 2.0, 1000.0, 20, 100.0),
            house(2, 3.0, 2.0, 2000.0, 20, 50.0),
        ];
        let p = Preprocessor::fit(&train, &train);
        let unknown = house(3, 4.0, 2.0, 1500.0, 99, 1.0);
        assert_eq!(p.zip_index(99), None);
        assert_eq!(p.features(&[unknown]), vec![0.0, 1.0, 0.0, 0.5]);
    }
}
