//! appraise: predict house prices with neural networks, from a house's attributes, its
//! photos, or both.
//!
//! The folders follow the flow of a run:
//! - [`data`]: a dataset becomes rows and column roles (the Houses dataset's layout,
//!   [`data::dataset`], downloaded on first use by [`data::fetch`]; any CSV or Parquet table,
//!   [`data::table`] and [`data::schema`]), and the splits ([`data::split`]).
//! - [`photos`]: photos become the tutorial's montages ([`photos::montage`]) or a pretrained
//!   network's embeddings ([`photos::extractor`]), and a ridge price head on those
//!   ([`photos::table_photos`]).
//! - [`features`]: rows become the numbers a network reads ([`features::encoder`]).
//! - [`models`]: the networks (Part 1's MLP, Part 2's CNN, Part 3's mixed model) and ridge.
//! - [`fit`]: training ([`fit::train`]), every dataset's run ([`fit::tabular`]: the
//!   tutorial's networks or the best recipe), price ranges ([`fit::interval`]).
//! - [`evaluate`]: scores, baselines, cross-validation ([`evaluate::cv`]) and the report.
//! - [`explain`]: why a price: each input's share, comparable sales, confidence.
//! - [`io`]: the model file ([`io::artifact`]; the Houses dataset's older formats through
//!   [`io::legacy`]), and pricing requests ([`io::pricer`]).
//! - [`runtime`]: what a caller hands every run, a [`runtime::context::Context`] (device,
//!   cache folder, stop flag, observer), and seeded random numbers.

pub mod data;
pub mod error;
pub mod evaluate;
pub mod explain;
pub mod features;
pub mod fit;
pub mod io;
pub mod models;
pub mod photos;
pub mod runtime;

pub use error::{Error, Result};
