//! Cancellation: the caller's request that a long run stop. The library never catches signals
//! itself; a front end (the CLI on Ctrl-C, a server on shutdown) holds a [`Cancel`], passes a
//! clone in with the run's [`crate::runtime::context::Context`], and sets it. Long loops (training steps, photo
//! decoding, photo features, synthetic houses, cross-validation splits) check it and stop with
//! [`crate::Error::Interrupted`], before anything is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared stop flag; clones share it. The default is a fresh flag that nothing sets.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A fresh flag, not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once stopping was asked for.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// The flag itself, for a signal handler to set.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// A run's stop flag is not part of what the run is: configurations that differ only in it
/// are equal.
impl PartialEq for Cancel {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let cancel = Cancel::new();
        let held = cancel.clone();
        assert!(!held.is_cancelled() && held.check().is_ok());
        cancel.cancel();
        assert!(held.is_cancelled());
        assert!(matches!(held.check(), Err(crate::Error::Interrupted)));
        assert!(!Cancel::default().is_cancelled());
    }
}
