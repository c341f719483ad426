//! A price from the photos alone: a ridge head ([`crate::models::ridge`]) on a house's frozen photo
//! features ([`crate::photos::extractor`]). The recipe reads its prediction as one input; with no
//! attributes it is the heart of the pretrained photo model.
//!
//! Which rooms it reads (a [`Reduction`]) and how hard it is penalized are chosen by the
//! out-of-fold error over the training rows' folds; the held-out predictions it makes there
//! are what the recipe's networks train on, so no house's own price leaks into its input.

use serde::{Deserialize, Serialize};

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
