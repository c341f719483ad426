//! How the library reports progress without printing: the caller passes an [`Observer`],
//! which hears each [`Stage`] of a run, each epoch, photo progress and notes. The CLI prints
//! them; a library user may pass [`Silent`].

use crate::fit::train::EpochRecord;

/// The steps of a run, announced as they start (the tutorial's `[INFO]` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading `HousesInfo.txt`.
    Loading,
    /// Decoding the photos (photo models only).
    LoadingImages,
    /// Splitting into training and test houses.
    Splitting,
    /// Fitting and applying the preprocessing.
    Processing,
    /// Training the network.
    Training,
    /// Predicting the test houses.
    Predicting,
}

impl Stage {
    /// The tutorial's wording.
    pub fn message(self) -> &'static str {
        match self {
            Stage::Loading => "loading house attributes...",
            Stage::LoadingImages => "loading house images...",
            Stage::Splitting => "constructing training/testing split...",
            Stage::Processing => "processing data...",
            Stage::Training => "training model...",
            Stage::Predicting => "predicting house prices...",
        }
    }
}

/// Receives progress from a run ([`crate::fit::tabular::fit`], cross-validation, the recipe, a
/// table's training); the CLI prints it, a library user may ignore it.
pub trait Observer {
    /// A step is starting.
    fn stage(&mut self, _stage: Stage) {}
    /// An epoch has finished.
    fn epoch(&mut self, _record: &EpochRecord, _epochs: usize) {}
    /// Photo decoding of `total` houses is starting; the returned function hears how many are done.
    fn photos(&mut self, _total: usize) -> Box<dyn Fn(usize) + Sync> {
        Box::new(|_| {})
    }
    /// A download of `total` bytes (`None`: size unknown) is starting; the returned function
    /// hears how many bytes have arrived.
    fn download(&mut self, _total: Option<u64>) -> Box<dyn Fn(u64)> {
        Box::new(|_| {})
    }
    /// The network about to be trained, as Keras's `model.summary()` prints it.
    fn model_summary(&mut self, _summary: &str) {}
    /// A line of information (the recipe's candidates and choice).
    fn note(&mut self, _line: &str) {}
    /// Something the user should know that does not stop the run (a cache that could not
    /// be written).
    fn warning(&mut self, _line: &str) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}
