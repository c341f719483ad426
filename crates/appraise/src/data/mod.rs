//! The data stage: loading a dataset (the Houses layout, or any CSV or Parquet table) into
//! rows and column roles, downloading the Houses dataset, synthetic data, and the splits.

pub mod dataset;
pub mod fetch;
pub mod schema;
pub mod source;
pub mod split;
pub mod synth;
pub mod table;
