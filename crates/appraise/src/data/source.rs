//! Where a model's rows came from, saved with the model, so that `evaluate` reads them again
//! the same way: a user's table, or the Houses dataset through its loader.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::dataset;
use crate::data::table::Frame;
use crate::error::Result;

/// The loader of a model's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A user's CSV or Parquet table.
    #[default]
    Table,
    /// The Houses dataset ([`dataset::load_table`]), keeping the houses whose zip code occurs
    /// at least `min_zip_count` times.
    Houses {
        /// The zip-code filter.
        min_zip_count: usize,
    },
}

impl Source {
    /// The rows at `path`: a table file; or for the Houses dataset its folder or its
    /// `HousesInfo.txt`.
    pub fn read(&self, path: &Path) -> Result<Frame> {
        match self {
            Source::Table => Frame::read(path),
            Source::Houses { min_zip_count } => {
                let dir = if path.is_dir() {
                    path
                } else {
                    path.parent().unwrap_or(Path::new("."))
                };
                Ok(dataset::load_table(dir, *min_zip_count)?.frame)
            }
        }
    }
}
