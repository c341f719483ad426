//! Input and output: the model file, atomic writes, prediction inputs and pricing.

pub mod artifact;
pub mod atomic;
pub mod predict;
pub mod pricer;
