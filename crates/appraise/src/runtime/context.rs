//! What a caller hands the library for a run besides the run's settings: where the networks
//! compute, where photos and features are cached, the stop flag, and who hears the run's
//! progress. The settings (a [`crate::fit::tabular::TableConfig`])
//! say what result to make and are saved with the model; the context says how this process
//! makes it, and is never saved. Front ends (the CLI, a server) build one per run.

use std::path::PathBuf;

use crate::fit::train::TrainConfig;
use crate::runtime::cancel::Cancel;
use crate::runtime::device::Compute;
use crate::runtime::observer::Observer;

/// A run's device, cache folder, stop flag and observer.
pub struct Context<'a> {
    /// Where the tutorial's networks train (the recipe's small networks always use the CPU).
    pub compute: Compute,
    /// The folder of the photo montage and photo feature caches; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Checked by every long loop; set it to stop the run with [`crate::Error::Interrupted`].
    pub cancel: Cancel,
    /// Hears stages, epochs, photo progress, notes and warnings.
    pub observer: &'a mut dyn Observer,
}

impl<'a> Context<'a> {
    /// On the CPU, with the cache in its default place ([`crate::photos::montage::default_cache_dir`])
    /// and a stop flag that nothing sets, reporting to `observer`.
    pub fn new(observer: &'a mut dyn Observer) -> Self {
        Self {
            compute: Compute::Cpu,
            cache_dir: Some(crate::photos::montage::default_cache_dir()),
            cancel: Cancel::default(),
            observer,
        }
    }

    /// `config` to train with in this context: its device and stop flag.
    pub(crate) fn train_config(&self, config: &TrainConfig) -> TrainConfig {
        TrainConfig {
            compute: self.compute,
            cancel: self.cancel.clone(),
            ..config.clone()
        }
    }
}
