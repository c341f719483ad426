//! Simple rules a network has to beat, fitted on the training houses only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::dataset::House;

/// A pricing rule without learning beyond medians.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Baseline {
    /// The median training price of the house's zip code.
    ZipMedianPrice,
    /// The median training price per square foot of the house's zip code, times its area.
    ZipMedianPricePerSqft,
}

/// Both baselines, in report order.
pub const ALL: [Baseline; 2] = [Baseline::ZipMedianPrice, Baseline::ZipMedianPricePerSqft];

/// numpy's median: the mean of the two middle values for an even count. `values` non-empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

impl Baseline {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::ZipMedianPrice => "zip median price",
            Baseline::ZipMedianPricePerSqft => "zip median $/sqft x area",
        }
    }

    fn value(self, house: &House) -> f64 {
        match self {
            Baseline::ZipMedianPrice => house.price,
            Baseline::ZipMedianPricePerSqft => house.price / house.area.max(1.0),
        }
    }

    /// Fits on `train` (non-empty) and prices `test`. A zip code absent from the training
    /// houses falls back to the median over all training houses.
    pub fn fit_predict(self, train: &[House], test: &[House]) -> Vec<f64> {
        let mut by_zip: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for house in train {
            by_zip
                .entry(house.zipcode)
                .or_default()
                .push(self.value(house));
        }
        let overall = median(&mut train.iter().map(|h| self.value(h)).collect::<Vec<_>>());
        let medians: BTreeMap<u32, f64> = by_zip
            .into_iter()
            .map(|(zip, mut values)| (zip, median(&mut values)))
            .collect();
        test.iter()
            .map(|house| {
                let m = medians.get(&house.zipcode).copied().unwrap_or(overall);
                match self {
                    Baseline::ZipMedianPrice => m,
                    Baseline::ZipMedianPricePerSqft => m * house.area.max(1.0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn house(zipcode: u32, area: f64, price: f64) -> House {
        House {
            id: 0,
            bedrooms: 3.0,
            bathrooms: 2.0,
            area,
            zipcode,
            price,
        }
    }

    #[test]
    fn medians_per_zip_with_fallback() {
        let train = [
            house(1, 1000.0, 100.0),
            house(1, 2000.0, 300.0),
            house(1, 1000.0, 200.0),
            house(2, 500.0, 1000.0),
        ];
        let test = [house(1, 1500.0, 0.0), house(3, 100.0, 0.0)];
        assert_eq!(
            Baseline::ZipMedianPrice.fit_predict(&train, &test),
            vec![200.0, 250.0]
        );
        // $/sqft in zip 1: 0.1, 0.15, 0.2 -> 0.15; overall: 0.1, 0.15, 0.2, 2.0 -> 0.175.
        let got = Baseline::ZipMedianPricePerSqft.fit_predict(&train, &test);
        assert!(
            (got[0] - 225.0).abs() < 1e-9 && (got[1] - 17.5).abs() < 1e-9,
            "{got:?}"
        );
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
