//! The tutorial's preprocessing of the Houses dataset, fitted once and kept as one
//! serializable value so that a saved model transforms new houses exactly as it transformed
//! its training data. It encodes through the encoder of every table ([`Encoder`]): the
//! Houses dataset is a table ([`dataset::frame`]) whose zip code is one-hot encoded over the
//! vocabulary of every kept house and whose attributes are min-max scaled. The fields below
//! are what model files have always stored.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::dataset::{self, ATTRIBUTES, House, ZIPCODE};
use crate::data::table::Frame;
use crate::features::encoder::{ColumnEncoding, Encoder, EncoderConfig};

/// The continuous attributes, in feature order.
pub const CONTINUOUS: [&str; 3] = ATTRIBUTES;

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

    /// The preprocessing as the table encoder: the zip code one-hot over the vocabulary in
    /// numeric order (an unknown zip code gets an all-zero one-hot, as `LabelBinarizer`
    /// does), then the attributes scaled as scikit-learn's `MinMaxScaler` (a constant column
    /// by 1). The Houses dataset has no missing cells, so no median is ever imputed.
    pub fn encoder(&self) -> Encoder {
        let mut columns = vec![ColumnEncoding::OneHot {
            column: ZIPCODE.to_string(),
            levels: self.zip_codes.iter().map(u32::to_string).collect(),
            other: false,
            pooled: Vec::new(),
        }];
        for (k, name) in CONTINUOUS.iter().enumerate() {
            let range = self.max[k] - self.min[k];
            columns.push(ColumnEncoding::Number {
                column: name.to_string(),
                median: self.min[k],
                indicator: false,
                log: false,
                floor: self.min[k],
                log_floor: None,
                ceiling: Some(self.max[k]),
                shift: self.min[k],
                scale: if range == 0.0 { 1.0 } else { range },
            });
        }
        Encoder {
            config: EncoderConfig::default(),
            columns,
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

    /// Feature matrix of every row of a table of the Houses columns ([`dataset::frame`] or
    /// [`dataset::attribute_frame`]), row-major, `rows x n_features()`.
    pub fn encode(&self, frame: &Frame) -> Vec<f32> {
        let rows: Vec<usize> = (0..frame.rows()).collect();
        let (features, _) = self
            .encoder()
            .encode(frame, &rows)
            .expect("a Houses table has the encoder's columns, all numbers");
        features
    }

    /// Feature matrix of `houses`, row-major, `houses.len() x n_features()`.
    pub fn features(&self, houses: &[House]) -> Vec<f32> {
        self.encode(&dataset::frame(houses, Path::new(dataset::INFO_FILE)))
    }

    /// Feature matrix of houses given by their attributes (`[bedrooms, bathrooms, area]`)
    /// and zip codes.
    pub fn attribute_features(&self, continuous: &[[f64; 3]], zipcodes: &[u32]) -> Vec<f32> {
        self.encode(&dataset::attribute_frame(
            continuous,
            zipcodes,
            Path::new("query"),
        ))
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
    fn zip_codes_keep_their_numeric_order_as_table_levels() {
        let train = [
            house(1, 2.0, 1.0, 1000.0, 10001, 100.0),
            house(2, 4.0, 3.0, 3000.0, 9000, 400.0),
        ];
        let p = Preprocessor::fit(&train, &train);
        assert_eq!(p.zip_codes, vec![9000, 10001]);
        // "10001" sorts before "9000" as text; the one-hot follows the numbers.
        assert_eq!(
            p.features(&train),
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
        );
        let frame = crate::data::dataset::frame(&train, std::path::Path::new("t"));
        let schema = crate::data::dataset::schema(&frame).unwrap();
        let roles: Vec<&str> = schema.columns.iter().map(|c| c.role.name()).collect();
        assert_eq!(
            roles,
            ["categorical", "numeric", "numeric", "numeric", "target"]
        );
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
