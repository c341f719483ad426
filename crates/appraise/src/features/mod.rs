//! The features: how rows become the numbers a network reads, fitted on training rows.

pub mod encoder;
