//! Photos named in a user's table: a photo column holds, per row, one or more paths (separated
//! by `;` or `|`, relative to the table's folder). Each row's photos go through the pretrained
//! network ([`crate::photos::extractor`]); a column's embeddings are averaged over the row's photos,
//! and the columns sit side by side. A ridge head on them ([`crate::models::ridge`]) prices the house
//! from its photos alone; the recipe reads that price as one more input, out of fold for the
//! training rows, so no row's input has seen its own price.
//!
//! The tutorial's photo networks (`--model cnn|mixed`) read a row's photos as the Houses
//! dataset's: its first four photos, each shrunk to 32x32 and tiled into one 64x64 montage
//! ([`row_montages`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::split::Split;
use crate::data::table::Frame;
use crate::error::{Error, Result};
use crate::models::ridge::{Design, PENALTIES};
use crate::photos::extractor::{Backbone, Featurizer, Precision};
use crate::photos::montage::{self as photos, MONTAGE_BYTES, TILE};
use crate::runtime::cancel::Cancel;

/// The fitted photo price head of a table model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TablePhotoHead {
    /// The network the embeddings come from.
    pub backbone: Backbone,
    /// The arithmetic it ran in (files from before it was recorded: the plain loops of
    /// that time, so that they price exactly as they did).
    #[serde(default = "Precision::before_kernels")]
    pub precision: Precision,
    /// The photo columns, in order.
    pub columns: Vec<String>,
    /// The relative ridge penalty chosen.
    pub penalty: f64,
    /// One weight per embedding value (columns side by side).
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f64,
    /// Mean absolute out-of-fold error on the training rows (on the target's scale).
    pub inner_mae: f64,
    /// Mean of the out-of-fold predictions (the input is standardized with it).
    pub mean: f64,
    /// Their standard deviation.
    pub std: f64,
    /// When the first photo column's manufactured-home score is an input too (before the
    /// price; format 8): the training rows' mean and standard deviation of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<[f64; 2]>,
    /// Which of `columns` the score is read from: the first, except in the Houses recipe's
    /// models of formats 4 to 7 (the frontal photo, third of the four rooms).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_column: usize,
    /// Whether the price reads the mean of the columns' embeddings instead of them side by
    /// side (the Houses recipe's `room-mean`, formats 5 and 7).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub room_mean: bool,
    /// Whether the price is an input (it is, except in the Houses recipe's models of format
    /// 4, which read the score alone).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub price: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

/// The photo paths of cell `row` of column `column`, resolved against the table's folder.
pub fn row_paths(frame: &Frame, column: usize, row: usize) -> Vec<PathBuf> {
    let dir = frame.path.parent().unwrap_or(Path::new("."));
    frame.columns[column]
        .key(row)
        .map(|cell| {
            cell.split([';', '|'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| dir.join(p))
                .collect()
        })
        .unwrap_or_default()
}

/// The photos of a row a montage holds: its four tiles.
pub const MONTAGE_PHOTOS: usize = 4;

/// Each row's 64x64 montage (`rows.len() x` [`MONTAGE_BYTES`] bytes), decoded on every core:
/// the row's first four photos (the columns in order, each cell's paths in order), placed as
/// the Houses dataset's four rooms are (top-left, top-right, bottom-right, bottom-left). A
/// row with fewer photos has black tiles in the remaining places. A photo that cannot be
/// read or decoded is an error naming it (a missing one also names the table's line and
/// column). `on_row` hears how many rows are
/// done.
pub fn row_montages(
    frame: &Frame,
    columns: &[String],
    rows: &[usize],
    on_row: &(dyn Fn(usize) + Sync),
    cancel: &Cancel,
) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let positions = column_positions(frame, columns)?;
    let done = AtomicUsize::new(0);
    let montages: Vec<Vec<u8>> = rows
        .par_iter()
        .map(|&r| {
            cancel.check()?;
            on_row(done.fetch_add(1, Ordering::Relaxed) + 1);
            let mut tiles = Vec::with_capacity(MONTAGE_PHOTOS);
            'cells: for &c in &positions {
                for path in row_paths(frame, c, r) {
                    if tiles.len() == MONTAGE_PHOTOS {
                        break 'cells;
                    }
                    let bytes = std::fs::read(&path).map_err(|e| {
                        Error::reading(
                            &path,
                            e,
                            &format!(
                                "photo not found (named in column {} of {}, line {})",
                                frame.names[c],
                                frame.path.display(),
                                frame.line(r)
                            ),
                        )
                    })?;
                    let tile = photos::decode_tile(&bytes, &path)?;
                    tiles.push(tile);
                }
            }
            tiles.resize_with(MONTAGE_PHOTOS, || {
                image::RgbImage::new(TILE as u32, TILE as u32)
            });
            let tiles: [image::RgbImage; MONTAGE_PHOTOS] = tiles.try_into().expect("four tiles");
            Ok(photos::montage(&tiles))
        })
        .collect::<Result<_>>()?;
    debug_assert!(montages.iter().all(|m| m.len() == MONTAGE_BYTES));
    Ok(montages.concat())
}

/// The positions of the photo `columns` in `frame`, or an error naming the missing one.
fn column_positions(frame: &Frame, columns: &[String]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|name| {
            frame.find(name).ok_or_else(|| Error::Input {
                path: frame.path.clone(),
                message: format!("has no column {name:?}, which holds the photos the model reads"),
            })
        })
        .collect()
}

/// The rows' photo embeddings, row-major (`columns.len() x featurizer.dim()` values per row;
/// zeros for a row without photos in a column), from this process's memory, the `cache`
/// folder when given, or the network. `on_photo` hears how many photos are done.
pub fn embed_rows(
    frame: &Frame,
    columns: &[String],
    rows: &[usize],
    featurizer: Featurizer,
    cache: Option<&Path>,
    on_photo: &(dyn Fn(usize, usize) + Sync),
    cancel: &Cancel,
) -> Result<Vec<f64>> {
    let per_cell = cell_paths(frame, columns, rows)?;
    let all: Vec<PathBuf> = per_cell.iter().flatten().cloned().collect();
    let embeddings = embed_remembered(featurizer, &all, cache, on_photo, cancel)?;
    let d = featurizer.dim();
    let mut x = Vec::with_capacity(per_cell.len() * d);
    let mut next = 0;
    for paths in &per_cell {
        let mut mean = vec![0.0f64; d];
        for e in &embeddings[next..next + paths.len()] {
            for (m, v) in mean.iter_mut().zip(e.iter()) {
                *m += f64::from(*v);
            }
        }
        if !paths.is_empty() {
            mean.iter_mut().for_each(|m| *m /= paths.len() as f64);
        }
        next += paths.len();
        x.extend(mean);
    }
    Ok(x)
}

/// How many photos [`embed_rows`] with these arguments would run through the network: the
/// rows' distinct photos neither this process nor the `cache` folder holds (what a progress
/// bar counts).
pub fn photos_to_embed(
    frame: &Frame,
    columns: &[String],
    rows: &[usize],
    featurizer: Featurizer,
    cache: Option<&Path>,
) -> Result<usize> {
    let all: Vec<PathBuf> = cell_paths(frame, columns, rows)?
        .into_iter()
        .flatten()
        .collect();
    let keys: Vec<MemoKey> = all.iter().map(|p| memo_key(featurizer, p)).collect();
    let (_, missing) = remembered(&keys, cache);
    Ok(missing.len())
}

/// Each of `rows`' cells in `columns` (row by row), as the photo paths it names.
fn cell_paths(frame: &Frame, columns: &[String], rows: &[usize]) -> Result<Vec<Vec<PathBuf>>> {
    let positions = column_positions(frame, columns)?;
    Ok(rows
        .iter()
        .flat_map(|&r| positions.iter().map(move |&c| (r, c)))
        .map(|(r, c)| row_paths(frame, c, r))
        .collect())
}

/// What identifies a photo's embedding: the network, the file, and the file's size and
/// modification time (a changed photo is embedded again).
type MemoKey = (Featurizer, PathBuf, u64, Option<std::time::SystemTime>);

/// Embeddings this process has computed, so that cross-validation (every split embeds its
/// training and test rows) embeds each photo once: 10 splits of 1,448 photos took 3.4 min.
static MEMO: std::sync::Mutex<Option<std::collections::HashMap<MemoKey, std::sync::Arc<[f32]>>>> =
    std::sync::Mutex::new(None);

/// The most embedding values [`MEMO`] holds (~64 MiB); past it, new photos are not kept.
const MEMO_VALUES: usize = 16 << 20;

/// The memo key of the photo at `path`.
fn memo_key(featurizer: Featurizer, path: &Path) -> MemoKey {
    let meta = std::fs::metadata(path).ok();
    (
        featurizer,
        path.to_path_buf(),
        meta.as_ref().map_or(0, std::fs::Metadata::len),
        meta.and_then(|m| m.modified().ok()),
    )
}

/// The file in the `cache` folder that holds the embedding of the photo `key` names: its
/// name hashes the photo's path, size and modification time, so a changed photo gets a new
/// file. `None` for a photo without a modification time (nothing tells when it changes).
fn cache_file(cache: &Path, key: &MemoKey) -> Option<PathBuf> {
    let (featurizer, path, len, modified) = key;
    let since = modified
        .as_ref()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let mut id = absolute.as_os_str().as_encoded_bytes().to_vec();
    id.extend(len.to_le_bytes());
    id.extend(since.as_nanos().to_le_bytes());
    let hash = crate::data::dataset::fingerprint(&id);
    let name = hash.trim_start_matches("fnv1a64:");
    Some(
        cache
            .join(format!("embeddings-{}", featurizer.cache_version()))
            .join(&name[..2])
            .join(format!("{name}.f32")),
    )
}

/// The embedding the `cache` folder holds for `key`, if a whole one.
fn read_cached(cache: &Path, key: &MemoKey) -> Option<std::sync::Arc<[f32]>> {
    let bytes = std::fs::read(cache_file(cache, key)?).ok()?;
    (bytes.len() == key.0.dim() * 4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// Keeps `embedding` in the `cache` folder (written whole or not at all). The cache only
/// saves time: a photo it cannot keep is embedded again next time.
fn write_cached(cache: &Path, key: &MemoKey, embedding: &[f32]) {
    let Some(file) = cache_file(cache, key) else {
        return;
    };
    let bytes: Vec<u8> = embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
    if let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = crate::io::atomic::write(&file, &bytes);
    }
}

/// For each key, its embedding if [`MEMO`] or the `cache` folder holds it; and the positions
/// of the missing ones, each distinct photo once even if several rows name it.
#[allow(clippy::type_complexity)]
fn remembered(
    keys: &[MemoKey],
    cache: Option<&Path>,
) -> (Vec<Option<std::sync::Arc<[f32]>>>, Vec<usize>) {
    let mut found: Vec<Option<std::sync::Arc<[f32]>>> = {
        let memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .map(|k| memo.as_ref().and_then(|m| m.get(k).cloned()))
            .collect()
    };
    if let Some(cache) = cache {
        let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
        let memo = memo.get_or_insert_with(Default::default);
        for (slot, key) in found.iter_mut().zip(keys) {
            if slot.is_none()
                && let Some(embedding) = read_cached(cache, key)
            {
                if (memo.len() + 1) * key.0.dim() <= MEMO_VALUES {
                    memo.insert(key.clone(), embedding.clone());
                }
                *slot = Some(embedding);
            }
        }
    }
    let mut missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
    missing.sort_by(|&a, &b| keys[a].1.cmp(&keys[b].1));
    missing.dedup_by(|a, b| keys[*a] == keys[*b]);
    (found, missing)
}

/// The embeddings of `paths`, in order, from [`MEMO`], the `cache` folder, or computed (on
/// every core) and kept in both. A photo that cannot be read is an error naming it.
fn embed_remembered(
    featurizer: Featurizer,
    paths: &[PathBuf],
    cache: Option<&Path>,
    on_photo: &(dyn Fn(usize, usize) + Sync),
    cancel: &Cancel,
) -> Result<Vec<std::sync::Arc<[f32]>>> {
    let keys: Vec<MemoKey> = paths.iter().map(|p| memo_key(featurizer, p)).collect();
    let (mut found, missing) = remembered(&keys, cache);
    let todo: Vec<PathBuf> = missing.iter().map(|&i| paths[i].clone()).collect();
    let total = todo.len();
    let computed = crate::photos::extractor::embed_photos(
        featurizer,
        &todo,
        &|done| on_photo(done, total),
        cancel,
    )?;
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    let memo = memo.get_or_insert_with(Default::default);
    let mut fresh = std::collections::HashMap::new();
    for (&i, embedding) in missing.iter().zip(computed) {
        let embedding: std::sync::Arc<[f32]> = embedding.into();
        if let Some(cache) = cache {
            write_cached(cache, &keys[i], &embedding);
        }
        if (memo.len() + 1) * featurizer.dim() <= MEMO_VALUES {
            memo.insert(keys[i].clone(), embedding.clone());
        }
        fresh.insert(keys[i].clone(), embedding);
    }
    for (slot, k) in found.iter_mut().zip(&keys) {
        if slot.is_none() {
            *slot = fresh.get(k).cloned();
        }
    }
    Ok(found
        .into_iter()
        .map(|e| e.expect("every photo embedded"))
        .collect())
}

/// Fits the head on the training rows' embeddings `x` (`dim` values per row) and targets
/// `y`: the penalty whose out-of-fold predictions over `folds` err least, refitted on every
/// row. Returns the head and the out-of-fold predictions.
pub fn fit(
    x: &[f64],
    dim: usize,
    y: &[f64],
    folds: &[Split],
    featurizer: Featurizer,
    columns: &[String],
) -> (TablePhotoHead, Vec<f64>) {
    let design = Design::new(x, dim);
    let mut oof = vec![vec![0.0; y.len()]; PENALTIES.len()];
    for fold in folds {
        let predictions = design.cross_predict(&fold.train, &fold.test, y, &PENALTIES);
        for (p, pred) in predictions.into_iter().enumerate() {
            for (&row, v) in fold.test.iter().zip(pred) {
                oof[p][row] = v;
            }
        }
    }
    let mae = |pred: &[f64]| {
        pred.iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len().max(1) as f64
    };
    let best = (0..PENALTIES.len())
        .min_by(|&a, &b| mae(&oof[a]).total_cmp(&mae(&oof[b])))
        .expect("penalties");
    let all: Vec<usize> = (0..y.len()).collect();
    let linear = design.fit(&all, y, PENALTIES[best]);
    let chosen = oof.swap_remove(best);
    let (mean, std) = crate::evaluate::stats::standardizer(&chosen);
    let head = TablePhotoHead {
        backbone: featurizer.backbone,
        precision: featurizer.precision,
        columns: columns.to_vec(),
        penalty: PENALTIES[best],
        weights: linear.weights.iter().map(|&w| w as f32).collect(),
        bias: linear.bias,
        inner_mae: mae(&chosen),
        mean,
        std,
        score: None,
        score_column: 0,
        room_mean: false,
        price: true,
    };
    (head, chosen)
}

/// The manufactured-home score of a row with embeddings `x` (one row of [`embed_rows`]): the
/// log-odds that the network calls the photo of the head's first column (the schema's front
/// photo, [`crate::data::schema::Schema::photo_columns_front_first`]) "mobile home,
/// manufactured home".
pub fn mobile_home_score(backbone: Backbone, x: &[f64]) -> f64 {
    let first: Vec<f32> = x[..backbone.dim()].iter().map(|&v| v as f32).collect();
    f64::from(backbone.class_log_odds(&first, crate::photos::extractor::MOBILE_HOME))
}

impl TablePhotoHead {
    /// What made (and makes) the embeddings this head reads.
    pub fn featurizer(&self) -> Featurizer {
        Featurizer {
            backbone: self.backbone,
            precision: self.precision,
        }
    }

    /// Appends the standardized photo inputs of a row with embeddings `x` (one row of
    /// [`embed_rows`]): the manufactured-home score when read, then the price; `price`
    /// replaces the head's own prediction (a training row's out-of-fold one).
    pub fn inputs(&self, x: &[f64], price: Option<f64>, out: &mut Vec<f32>) {
        if let Some([mean, std]) = self.score {
            let d = self.backbone.dim();
            let own = &x[self.score_column * d..];
            out.push(((mobile_home_score(self.backbone, own) - mean) / std) as f32);
        }
        if self.price {
            let price = price.unwrap_or_else(|| self.predict(x));
            out.push(self.standardize(price) as f32);
        }
    }

    /// The head's price of a row with embeddings `x`, split by photo column (each column's
    /// part of the weighted sum), then the manufactured-home score when read: what an
    /// explanation mixes column by column ([`TablePhotoHead::inputs_from_parts`] reads it).
    pub fn parts(&self, x: &[f64]) -> Vec<f64> {
        let d = self.backbone.dim();
        let k = self.columns.len();
        let mut parts: Vec<f64> = (0..k)
            .map(|c| {
                let (w, scale) = match self.room_mean {
                    true => (&self.weights[..d], 1.0 / k as f64),
                    false => (&self.weights[c * d..(c + 1) * d], 1.0),
                };
                let e = &x[c * d..(c + 1) * d];
                scale * w.iter().zip(e).map(|(&w, v)| f64::from(w) * v).sum::<f64>()
            })
            .collect();
        if self.score.is_some() {
            parts.push(mobile_home_score(
                self.backbone,
                &x[self.score_column * d..],
            ));
        }
        parts
    }

    /// Values [`TablePhotoHead::parts`] gives a row.
    pub fn parts_width(&self) -> usize {
        self.columns.len() + usize::from(self.score.is_some())
    }

    /// Appends the standardized photo inputs of a row whose [`TablePhotoHead::parts`] are
    /// `parts` (as [`TablePhotoHead::inputs`] does from its embeddings, to rounding).
    pub fn inputs_from_parts(&self, parts: &[f64], out: &mut Vec<f32>) {
        let k = self.columns.len();
        if let Some([mean, std]) = self.score {
            out.push(((parts[k] - mean) / std) as f32);
        }
        if self.price {
            let price = self.bias + parts[..k].iter().sum::<f64>();
            out.push(self.standardize(price) as f32);
        }
    }

    /// Which group of [`TablePhotoHead::parts`] each part belongs to: its photo column's
    /// index (the score: its own column's).
    pub fn part_columns(&self) -> Vec<usize> {
        let mut of: Vec<usize> = (0..self.columns.len()).collect();
        if self.score.is_some() {
            of.push(self.score_column);
        }
        of
    }

    /// Inputs it adds to a row.
    pub fn width(&self) -> usize {
        usize::from(self.price) + usize::from(self.score.is_some())
    }

    /// The head's price (on the target's scale) of a row with embeddings `x`.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mean;
        let x = if self.room_mean {
            // Summed room by room, then divided, as the Houses recipe did.
            let d = self.backbone.dim();
            let k = x.len() / d;
            mean = (0..d)
                .map(|j| (0..k).map(|r| x[r * d + j]).sum::<f64>() / k as f64)
                .collect::<Vec<f64>>();
            &mean[..]
        } else {
            x
        };
        self.bias
            + self
                .weights
                .iter()
                .zip(x)
                .map(|(&w, v)| f64::from(w) * v)
                .sum::<f64>()
    }

    /// A prediction as the recipe's input.
    pub fn standardize(&self, prediction: f64) -> f64 {
        (prediction - self.mean) / self.std
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::{Texts, Values};
    use crate::photos::montage::{
        ROOMS, photo_path,
        tests::{house_montage, solid_jpeg},
    };

    #[test]
    fn each_photo_is_embedded_once_per_process_until_it_changes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, rgb: [u8; 3]| {
            std::fs::write(dir.path().join(name), solid_jpeg(64, 48, rgb)).unwrap();
        };
        write("a.jpg", [200, 30, 30]);
        write("b.jpg", [30, 30, 200]);
        let frame = Frame {
            path: dir.path().join("t.csv"),
            names: vec!["photo".into()],
            columns: vec![Values::Texts(Texts::from_cells(&[
                Some("a.jpg;b.jpg"),
                Some("b.jpg"),
            ]))],
            lines: None,
        };
        let columns = ["photo".to_string()];
        let embedded = AtomicUsize::new(0);
        let count = |done: usize, _total: usize| {
            embedded.fetch_max(done, Ordering::Relaxed);
        };
        let embed = || {
            // What a progress bar is told before the photos are embedded.
            let pending =
                photos_to_embed(&frame, &columns, &[0, 1], Featurizer::default(), None).unwrap();
            embedded.store(0, Ordering::Relaxed);
            let x = embed_rows(
                &frame,
                &columns,
                &[0, 1],
                Featurizer::default(),
                None,
                &count,
                &Cancel::default(),
            )
            .unwrap();
            let done = embedded.load(Ordering::Relaxed);
            assert_eq!(
                pending, done,
                "the photos announced are the photos embedded"
            );
            (x, done)
        };
        // b.jpg is named twice but embedded once; nothing the second time.
        let (first, n) = embed();
        assert_eq!(n, 2);
        let (again, n) = embed();
        assert_eq!((again.as_slice(), n), (first.as_slice(), 0));
        // Row 1's embedding is b's alone; row 0's the mean of a's and b's.
        let d = Backbone::default().dim();
        assert_ne!(first[..d], first[d..]);
        // A changed photo is embedded again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("a.jpg", [30, 200, 30]);
        let (changed, n) = embed();
        assert_eq!(n, 1);
        assert_ne!(changed[..d], first[..d]);
        assert_eq!(changed[d..], first[d..]);
    }

    #[test]
    fn a_rows_four_room_photos_make_the_houses_montage() {
        let dir = tempfile::tempdir().unwrap();
        let colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30]];
        for (room, rgb) in ROOMS.iter().zip(colours) {
            std::fs::write(photo_path(dir.path(), 7, room), solid_jpeg(80, 60, rgb)).unwrap();
        }
        let cell = |rooms: &[&str]| {
            Some(
                rooms
                    .iter()
                    .map(|r| format!("7_{r}.jpg"))
                    .collect::<Vec<_>>()
                    .join(";"),
            )
        };
        // Row 0: the rooms in the Houses order, split over two columns; row 1: one photo.
        let frame = Frame {
            path: dir.path().join("t.csv"),
            names: vec!["a".into(), "b".into()],
            columns: vec![
                Values::Texts(Texts::from_cells(&[cell(&ROOMS[..1]), cell(&ROOMS[2..3])])),
                Values::Texts(Texts::from_cells(&[cell(&ROOMS[1..]), None])),
            ],
            lines: None,
        };
        let columns = ["a".to_string(), "b".to_string()];
        let m = row_montages(&frame, &columns, &[0, 1], &|_| {}, &Cancel::default()).unwrap();
        assert_eq!(&m[..MONTAGE_BYTES], house_montage(dir.path(), 7).unwrap());
        // One photo: its tile top-left, the other three black.
        let one = &m[MONTAGE_BYTES..];
        let frontal = house_montage(dir.path(), 7).unwrap();
        let (side, tile) = (2 * TILE, TILE);
        for y in 0..side {
            for x in 0..side {
                let at = (y * side + x) * 3;
                let want: &[u8] = if y < tile && x < tile {
                    // The frontal photo's tile sits bottom-right in the Houses montage.
                    let from = ((y + tile) * side + x + tile) * 3;
                    &frontal[from..from + 3]
                } else {
                    &[0, 0, 0]
                };
                assert_eq!(&one[at..at + 3], want, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn the_cache_folder_keeps_an_embedding_until_its_photo_changes() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.jpg");
        std::fs::write(&photo, b"first").unwrap();
        let cache = dir.path().join("cache");
        let key = memo_key(Featurizer::default(), &photo);
        assert!(read_cached(&cache, &key).is_none());
        let embedding: Vec<f32> = (0..Backbone::default().dim())
            .map(|i| i as f32 / 7.0)
            .collect();
        write_cached(&cache, &key, &embedding);
        assert_eq!(read_cached(&cache, &key).as_deref(), Some(&embedding[..]));
        // Another size (and time): another file.
        std::fs::write(&photo, b"second!").unwrap();
        let changed = memo_key(Featurizer::default(), &photo);
        assert!(read_cached(&cache, &changed).is_none());
        // A file cut short is not an embedding.
        let file = cache_file(&cache, &key).unwrap();
        std::fs::write(&file, [0u8; 12]).unwrap();
        assert!(read_cached(&cache, &key).is_none());
    }
}
