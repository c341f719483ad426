//! Fitting: training networks, the optimizer, the tutorial's run, the best recipe, price
//! ranges and per-level price factors.

pub mod interval;
pub mod level_factors;
pub mod optim;
pub mod pipeline;
pub mod recipe;
pub mod tabular;
pub mod train;
pub mod trees;
