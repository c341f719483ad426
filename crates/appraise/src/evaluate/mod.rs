//! Evaluation: the scores, the ratio study, the baselines, cross-validation, the statistics
//! and the report.

pub mod baseline;
pub mod cv;
pub mod metrics;
pub mod ratio;
pub mod report;
pub mod stats;
