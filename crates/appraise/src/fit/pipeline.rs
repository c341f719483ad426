//! The helpers of a run folder: its default name, `history.csv` and pretty JSON. Every
//! dataset trains through [`crate::fit::tabular`].

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::fit::train::EpochRecord;

pub use crate::runtime::observer::{Observer, Silent, Stage};

/// `history.csv`: `epoch,loss,val_loss,learning_rate`.
pub fn history_csv(history: &[EpochRecord]) -> String {
    let mut out = String::from("epoch,loss,val_loss,learning_rate\n");
    for r in history {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            r.epoch, r.loss, r.val_loss, r.learning_rate
        );
    }
    out
}

/// The first `runs/<model>-N` folder that does not exist yet.
pub fn default_out_dir(model: &str) -> PathBuf {
    (1..)
        .map(|n| PathBuf::from(format!("runs/{model}-{n}")))
        .find(|p| !p.exists())
        .expect("some run number is free")
}

/// Pretty JSON of a plain-data value, newline-terminated.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain data serializes to JSON");
    text.push('\n');
    text
}
