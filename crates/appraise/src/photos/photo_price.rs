//! A price from the photos alone: a ridge head ([`crate::models::ridge`]) on a house's frozen photo
//! features ([`crate::photos::extractor`]). The recipe reads its prediction as one input; with no
//! attributes it is the heart of the pretrained photo model.
//!
//! Which rooms it reads (a [`Reduction`]) and how hard it is penalized are chosen by the
//! out-of-fold error over the training rows' folds; the held-out predictions it makes there
//! are what the recipe's networks train on, so no house's own price leaks into its input.

use serde::{Deserialize, Serialize};

use crate::data::split::Split;
use crate::models::ridge::{Design, PENALTIES};
use crate::photos::extractor::{FRONTAL, PhotoFeatures};

/// How a house's four photo embeddings become one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// Every room's embedding, one after another (4 x 1,280 values).
    AllRooms,
    /// The frontal photo's embedding alone.
    Frontal,
    /// The mean of the four rooms' embeddings.
    RoomMean,
}

impl Reduction {
    /// Every reduction, in the order they are tried.
    pub const ALL: [Reduction; 3] = [Reduction::AllRooms, Reduction::Frontal, Reduction::RoomMean];

    /// A short name for notes and `summary`.
    pub fn label(self) -> &'static str {
        match self {
            Reduction::AllRooms => "four rooms side by side",
            Reduction::Frontal => "frontal photo",
            Reduction::RoomMean => "mean of the rooms",
        }
    }

    /// The reduced features of house `i`, appended to `out`.
    fn push(self, features: &PhotoFeatures, i: usize, out: &mut Vec<f64>) {
        let rooms = features.house(i);
        let d = features.backbone.dim();
        match self {
            Reduction::AllRooms => out.extend(rooms.iter().map(|&v| f64::from(v))),
            Reduction::Frontal => {
                out.extend(features.room(i, FRONTAL).iter().map(|&v| f64::from(v)))
            }
            Reduction::RoomMean => {
                let k = rooms.len() / d;
                out.extend(
                    (0..d).map(|j| {
                        (0..k).map(|r| f64::from(rooms[r * d + j])).sum::<f64>() / k as f64
                    }),
                );
            }
        }
    }

    fn matrix(self, features: &PhotoFeatures) -> (Vec<f64>, usize) {
        let mut x = Vec::new();
        for i in 0..features.len() {
            self.push(features, i, &mut x);
        }
        let dim = x.len() / features.len().max(1);
        (x, dim)
    }
}

/// The fitted head: `bias + weights . reduce(features)`, on the log scale of the target it
/// was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoPriceHead {
    /// Which rooms it reads.
    pub reduction: Reduction,
    /// The relative ridge penalty chosen.
    pub penalty: f64,
    /// One weight per reduced feature.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f64,
    /// Mean absolute error of the out-of-fold predictions on the training rows (log scale).
    pub inner_mae: f64,
}

impl PhotoPriceHead {
    /// The head's prediction for house `i` of `features`.
    pub fn predict(&self, features: &PhotoFeatures, i: usize) -> f64 {
        let mut x = Vec::with_capacity(self.weights.len());
        self.reduction.push(features, i, &mut x);
        self.bias
            + self
                .weights
                .iter()
                .zip(&x)
                .map(|(&w, v)| f64::from(w) * v)
                .sum::<f64>()
    }
}

/// One reduction and penalty tried, with its out-of-fold error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// Which rooms.
    pub reduction: Reduction,
    /// Relative ridge penalty.
    pub penalty: f64,
    /// Mean absolute out-of-fold error on the log scale.
    pub mae: f64,
}

/// Fits the head on training houses' `features` and log-scale targets `y`: tries every
/// reduction and penalty on `folds` (positions into the training houses), keeps the one whose
/// out-of-fold predictions err least, and refits it on every training house. Returns the
/// head, its out-of-fold predictions (one per training house), and every trial.
pub fn fit(
    features: &PhotoFeatures,
    y: &[f64],
    folds: &[Split],
) -> (PhotoPriceHead, Vec<f64>, Vec<Trial>) {
    assert_eq!(features.len(), y.len(), "one target per house");
    let mut trials = Vec::new();
    // (mae, reduction, penalty, out-of-fold predictions)
    let mut best: Option<(f64, Reduction, f64, Vec<f64>)> = None;
    for reduction in Reduction::ALL {
        let (x, dim) = reduction.matrix(features);
        let design = Design::new(&x, dim);
        let mut oof = vec![vec![0.0; y.len()]; PENALTIES.len()];
        for fold in folds {
            let predictions = design.cross_predict(&fold.train, &fold.test, y, &PENALTIES);
            for (p, pred) in predictions.into_iter().enumerate() {
                for (&row, v) in fold.test.iter().zip(pred) {
                    oof[p][row] = v;
                }
            }
        }
        for (p, pred) in oof.into_iter().enumerate() {
            let mae = pred.iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64;
            trials.push(Trial {
                reduction,
                penalty: PENALTIES[p],
                mae,
            });
            if best.as_ref().is_none_or(|b| mae < b.0) {
                best = Some((mae, reduction, PENALTIES[p], pred));
            }
        }
    }
    let (inner_mae, reduction, penalty, oof) = best.expect("at least one trial");
    let (x, dim) = reduction.matrix(features);
    let all: Vec<usize> = (0..y.len()).collect();
    let linear = Design::new(&x, dim).fit(&all, y, penalty);
    let head = PhotoPriceHead {
        reduction,
        penalty,
        weights: linear.weights.iter().map(|&w| w as f32).collect(),
        bias: linear.bias,
        inner_mae,
    };
    (head, oof, trials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photos::extractor::{Backbone, EMBEDDING};
    use crate::photos::montage::ROOMS;

    #[test]
    fn the_head_reads_the_room_that_carries_the_price() {
        // Only the frontal photo's first 200 features carry the price (as a real embedding
        // spreads a property over many features); the other rooms are noise.
        let n = 60;
        let per = ROOMS.len() * EMBEDDING;
        let mut rng = crate::runtime::rng::SeededRng::new(3, 0);
        let mut values = Vec::with_capacity(n * per);
        let mut y = Vec::new();
        for _ in 0..n {
            let mut house: Vec<f32> = (0..per).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
            let signal = rng.uniform(0.0, 6.0);
            for v in &mut house[FRONTAL * EMBEDDING..FRONTAL * EMBEDDING + 200] {
                *v = (signal + 0.5 * f64::from(*v)) as f32;
            }
            values.extend(house);
            y.push(12.0 + 0.5 * signal);
        }
        let features = PhotoFeatures {
            backbone: Backbone::default(),
            values,
        };
        let folds = crate::data::split::kfold(n, 5, 0).unwrap();
        let (head, oof, trials) = fit(&features, &y, &folds);
        assert_eq!(trials.len(), Reduction::ALL.len() * PENALTIES.len());
        assert_eq!(head.reduction, Reduction::Frontal, "{trials:?}");
        assert_eq!(oof.len(), n);
        // The stored (f32) head prices the training houses closely.
        let err = (0..n)
            .map(|i| (head.predict(&features, i) - y[i]).abs())
            .sum::<f64>()
            / n as f64;
        assert!(err < 0.2, "{err}");
        assert!(head.inner_mae < 0.4, "{}", head.inner_mae);
    }
}
