//! appraise: predict house prices with neural networks, from a house's attributes.
//!
//! The library reproduces PyImageSearch's "Regression with Keras" (Part 1) on the Houses
//! dataset: [`fetch`] downloads it on first use, [`dataset`] reads `HousesInfo.txt`, [`split`]
//! splits exactly as scikit-learn, [`preprocess`] scales and encodes, [`model`] and [`train`]
//! define and fit the network with Keras's defaults, [`metrics`] scores it, and [`pipeline`]
//! runs all of it end to end.
//! [`tabular`] does the same on a user's own table. A caller hands every run a
//! [`context::Context`]: device, cache folder, stop flag and observer.

pub mod artifact;
pub mod atomic;
pub mod baseline;
pub mod cancel;
pub mod context;
pub mod cv;
pub mod dataset;
pub mod device;
pub mod encoder;
pub mod error;
pub mod extractor;
pub mod fetch;
pub mod float_mode;
pub mod interval;
pub mod level_factors;
pub mod matmul;
pub mod metrics;
pub mod model;
pub mod observer;
pub mod optim;
pub mod photo_price;
pub mod photos;
pub mod pipeline;
pub mod predict;
pub mod prepared;
pub mod preprocess;
pub mod pricer;
pub mod recipe;
pub mod report;
pub mod ridge;
pub mod rng;
pub mod schema;
pub mod split;
pub mod stats;
pub mod synth;
pub mod table;
pub mod table_photos;
pub mod tabular;
pub mod train;

pub use error::{Error, Result};
