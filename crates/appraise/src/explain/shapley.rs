//! Each input's share of ln(price): Shapley values of the model's ln(price), the players
//! the columns its price reads (a categorical column as one) and its photo columns (each as
//! one), a coalition's value the mean ln(price) over the background sales of the rows that
//! take the coalition's inputs from the house and the rest from the background sale
//! (interventional Shapley values). The empty coalition's value is the background's mean
//! ln(price), so the shares add up to ln(price / reference price).
//!
//! Exact (every coalition) up to [`EXACT_PLAYERS`] players; above that a sampling estimate
//! (random orders of the players, [`ORDERS`] per background sale, each with its reverse)
//! whose shares still add up exactly, with each share's standard error.

use crate::data::table::{Frame, Texts, Values};
use crate::error::{Error, Result};
use crate::explain::sales::{Sales, evenly};
use crate::explain::tree_shap::{MAX_PHOTO_PLAYERS, PhotoPlayers, TreeGame};
use crate::fit::tabular::{Predictor, PriceScale, TableModel};
use crate::fit::trees::{TreeColumn, Trees};
use crate::models::plain::PlainNetwork;
use crate::runtime::rng::SeededRng;
use rayon::prelude::*;

/// Players up to which every coalition is priced (2^10 - 2 coalitions times the background).
pub const EXACT_PLAYERS: usize = 10;
/// Random orders of the players per background sale in the sampling estimate (each walked
/// forwards and backwards).
pub const ORDERS: usize = 1;

/// Mixed rows priced at once: a few thousand keep the networks' per-operation costs small
/// and give both cores work on one house.
const MIXED_CHUNK: usize = 2048;

/// One input of the game.
#[derive(Debug, Clone, PartialEq)]
pub enum Player {
    /// A table column (index into [`Sales::columns`]).
    Column(usize),
    /// A photo column (index into the photo head's columns).
    Photo(usize),
}

/// The players of `model`'s game and their names: its read columns, then its photo head's
/// columns.
pub fn players(model: &TableModel) -> Vec<(String, Player)> {
    let mut players: Vec<(String, Player)> = model
        .read_columns()
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, Player::Column(i)))
        .collect();
    for (i, name) in model.photo.iter().flat_map(|h| &h.columns).enumerate() {
        players.push((name.clone(), Player::Photo(i)));
    }
    players
}

/// The houses to explain beside the kept sales, and how to price a mix of them.
pub struct Game<'a> {
    model: &'a TableModel,
    /// The model without its trees when their part of ln(price) is split off (priced by
    /// mixing; the trees' part by their structure, [`TreeGame`]).
    mixer: Option<TableModel>,
    /// The trees' game and their weight in ln(price).
    trees: Option<(TreeGame<'a>, f64)>,
    /// The mixed model's network in plain form, for the coalitions' mixed rows.
    plain: Option<PlainNetwork>,
    /// The read columns: the kept sales' rows, then the houses'.
    pool: Frame,
    /// The photo head's parts of each pool row.
    parts: Vec<f64>,
    /// Which player each photo part belongs to.
    part_player: Vec<usize>,
    players: usize,
    /// ln(price) of each background sale.
    background_ln: Vec<f64>,
    /// Per player, an id of each pool row's value (equal ids: equal values).
    value_ids: Vec<Vec<u64>>,
    background: Vec<usize>,
}

/// A price's logarithm (a price under $1, which only the tutorial's ratio scale can give,
/// is read as $1).
pub fn ln(price: f64) -> f64 {
    // NaN stays NaN: a share of it is no share.
    if price.is_nan() {
        price
    } else {
        price.max(1.0).ln()
    }
}

impl<'a> Game<'a> {
    /// The game of `rows` of `frame` (their photo head `parts`) against `model`'s kept
    /// `sales`; house `i` is pool row `sales.len() + i`.
    pub fn new(
        model: &'a TableModel,
        sales: &Sales,
        frame: Option<(&Frame, &[usize], Vec<f64>)>,
    ) -> Result<Self> {
        Self::build(model, sales, frame, true)
    }

    /// [`Game::new`], splitting the trees off where it can when `split`.
    fn build(
        model: &'a TableModel,
        sales: &Sales,
        frame: Option<(&Frame, &[usize], Vec<f64>)>,
        split: bool,
    ) -> Result<Self> {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for column in &sales.columns {
            let kept = column.values();
            let joined = match &frame {
                Some((frame, rows, _)) => {
                    let c = frame.find(column.name()).ok_or_else(|| Error::Input {
                        path: frame.path.clone(),
                        message: format!(
                            "has no column {:?}, which the model reads",
                            column.name()
                        ),
                    })?;
                    join(&kept, &frame.columns[c], rows)
                }
                None => kept,
            };
            names.push(column.name().to_string());
            columns.push(joined);
        }
        let mut parts = sales.photo_parts.clone();
        if let Some((_, _, p)) = &frame {
            parts.extend_from_slice(p);
        }
        let part_player = model.photo.as_ref().map_or_else(Vec::new, |h| {
            h.part_columns()
                .into_iter()
                .map(|c| sales.columns.len() + c)
                .collect()
        });
        let path = frame
            .as_ref()
            .map_or_else(Default::default, |f| f.0.path.clone());
        let (mixer, trees) = match split_trees(model).filter(|_| split) {
            Some((mixer, trees, weight)) => (Some(mixer), Some((trees, weight))),
            None => (None, None),
        };
        let mut game = Game {
            model,
            mixer,
            trees: None,
            plain: None,
            pool: Frame {
                path,
                names,
                columns,
                lines: None,
            },
            parts,
            part_player,
            players: players(model).len(),
            background_ln: Vec::new(),
            background: sales.background.clone(),
            value_ids: Vec::new(),
        };
        game.plain = game
            .mixed_model()
            .predictor
            .network()
            .and_then(PlainNetwork::of);
        let g = game.players.max(1);
        let sources: Vec<usize> = game
            .background
            .iter()
            .flat_map(|&b| std::iter::repeat_n(b, g))
            .collect();
        game.background_ln = game.values(&sources, false)?;
        // Counted from the sales and houses: a photos-only pool has no columns.
        let pool_rows = sales.len() + frame.as_ref().map_or(0, |f| f.1.len());
        game.value_ids = value_ids(&game.pool, pool_rows, players(model).len());
        if let Some((trees, weight)) = trees {
            // The background sales and the houses: no other kept sale is read.
            let rows: Vec<usize> = game
                .background
                .iter()
                .copied()
                .chain(sales.len()..pool_rows)
                .collect();
            let player_of = trees
                .members
                .iter()
                .map(|m| {
                    m.columns
                        .iter()
                        .map(|c| {
                            let name = match c {
                                TreeColumn::Number { column }
                                | TreeColumn::Ranked { column, .. } => column,
                            };
                            game.pool
                                .find(name)
                                .expect("the trees' columns are read columns")
                        })
                        .collect()
                })
                .collect();
            let photos = photo_players(model, trees, &game, sales.columns.len());
            // The trees' photo inputs of the game's rows, as the model computes them.
            let row_inputs: Vec<f32> = photos.as_ref().map_or_else(Vec::new, |p| {
                rows.iter()
                    .flat_map(|&r| (p.inputs)(&p.parts[r * p.width..(r + 1) * p.width]))
                    .collect()
            });
            let tree_game = TreeGame::new(
                trees,
                trees.member_inputs(&game.pool, &rows, &row_inputs),
                &rows,
                pool_rows,
                player_of,
                trees.predict(&game.pool, &rows, &row_inputs),
                &game.background,
                photos,
            );
            game.trees = Some((tree_game, weight));
        }
        Ok(game)
    }

    /// The model whose mixed rows are priced: the model, or the model without its trees.
    fn mixed_model(&self) -> &TableModel {
        self.mixer.as_ref().unwrap_or(self.model)
    }

    /// The mixed model's reference: its background sales' mean ln(price).
    fn mixed_reference(&self) -> f64 {
        self.background_ln.iter().sum::<f64>() / self.background_ln.len() as f64
    }

    /// The read columns of the kept sales' rows, then the houses'.
    pub fn pool(&self) -> &Frame {
        &self.pool
    }

    /// The photo head's parts of each pool row.
    pub fn parts(&self) -> &[f64] {
        &self.parts
    }

    /// The reference: the background sales' mean ln(price).
    pub fn reference_ln(&self) -> f64 {
        let trees = self.trees.as_ref().map_or(0.0, |(t, weight)| {
            let b = &self.background;
            weight * b.iter().map(|&z| t.output(z)).sum::<f64>() / b.len() as f64
        });
        self.mixed_reference() + trees
    }

    /// ln(price) of mixed rows: row `m`'s player `g` from pool row `sources[m * players + g]`.
    /// The house's and the background sales' own prices are the model's (`plain` false); a
    /// coalition's mixed rows go through the network's plain form where it has one (`plain`),
    /// three times faster, equal to the last bits of a float.
    fn values(&self, sources: &[usize], plain: bool) -> Result<Vec<f64>> {
        let g = self.players.max(1);
        // Both cores on one house's rows: chunks of a fixed size (not one per thread), so
        // that the prices do not depend on the number of threads; each chunk mixed in its
        // own task, its buffers small enough to be reused rather than faulted in.
        let chunks: Vec<Result<Vec<f64>>> = sources
            .par_chunks(MIXED_CHUNK * g)
            .map(|part| self.price_mixed(part, plain))
            .collect();
        let mut values = Vec::with_capacity(sources.len() / g);
        for prices in chunks {
            values.extend(prices?);
        }
        Ok(values)
    }

    /// [`Game::values`] of one chunk of mixed rows.
    fn price_mixed(&self, sources: &[usize], plain: bool) -> Result<Vec<f64>> {
        let g = self.players.max(1);
        let n = sources.len() / g;
        let columns = self
            .pool
            .columns
            .iter()
            .enumerate()
            .map(|(j, values)| gather(values, sources.iter().skip(j).step_by(g).copied()))
            .collect();
        let mixed = Frame {
            path: self.pool.path.clone(),
            names: self.pool.names.clone(),
            columns,
            lines: None,
        };
        let mut inputs = Vec::new();
        if let Some(head) = &self.mixed_model().photo {
            let w = head.parts_width();
            let mut row = vec![0.0; w];
            for m in 0..n {
                for (p, (value, &player)) in row.iter_mut().zip(&self.part_player).enumerate() {
                    *value = self.parts[sources[m * g + player] * w + p];
                }
                head.inputs_from_parts(&row, &mut inputs);
            }
        }
        let rows: Vec<usize> = (0..n).collect();
        let network = self.plain.as_ref().filter(|_| plain);
        let prices = self
            .mixed_model()
            .price_inputs(&mixed, &rows, &inputs, network)?;
        Ok(prices.into_iter().map(ln).collect())
    }

    /// Pool row `subject`'s shares of ln(price), their standard errors (zero when exact),
    /// and its ln(price) as the game prices it.
    pub fn shares(&self, subject: usize) -> Result<(Vec<f64>, Vec<f64>, f64)> {
        let g = self.players;
        let own = self.values(&vec![subject; g.max(1)], false)?[0];
        if g == 0 {
            return Ok((Vec::new(), Vec::new(), own));
        }
        // The trees' walks beside the networks' mixed rows: they fill the gaps the chunks
        // of mixed rows leave on the cores.
        let (mixed, trees) = rayon::join(
            || {
                if g <= EXACT_PLAYERS {
                    Ok((self.exact(subject, own)?, vec![0.0; g]))
                } else {
                    self.sampled(subject, own)
                }
            },
            || {
                self.trees.as_ref().map(|(trees, weight)| {
                    let t = trees.shares(subject, &self.background, g);
                    (t, *weight, weight * trees.output(subject))
                })
            },
        );
        let (mut phi, error) = mixed?;
        let mut own = own;
        if let Some((t, weight, output)) = trees {
            phi.iter_mut().zip(t).for_each(|(p, t)| *p += weight * t);
            own += output;
        }
        Ok((phi, error, own))
    }

    fn exact(&self, subject: usize, own: f64) -> Result<Vec<f64>> {
        let g = self.players;
        let full = (1usize << g) - 1;
        let b = self.background.len();
        // Background sales that agree on every input outside the coalition give the same
        // mixed row: each is priced once and counted as often as it occurs.
        let mut sources = Vec::with_capacity((full - 1) * b * g);
        let mut counts: Vec<(usize, Vec<f64>)> = Vec::with_capacity(full - 1);
        for mask in 1..full {
            let mut seen: std::collections::HashMap<Vec<u64>, usize> = Default::default();
            let mut count: Vec<f64> = Vec::new();
            for &z in &self.background {
                let key: Vec<u64> = (0..g)
                    .filter(|j| mask >> j & 1 == 0)
                    .map(|j| self.value_ids[j][z])
                    .collect();
                let next = seen.len();
                let k = *seen.entry(key).or_insert(next);
                if k == next {
                    count.push(0.0);
                    sources.extend((0..g).map(|j| if mask >> j & 1 == 1 { subject } else { z }));
                }
                count[k] += 1.0;
            }
            counts.push((mask, count));
        }
        let values = self.values(&sources, true)?;
        let mut v = vec![0.0; full + 1];
        v[0] = self.mixed_reference();
        v[full] = own;
        let mut at = 0;
        for (mask, count) in counts {
            let priced = &values[at..at + count.len()];
            at += count.len();
            v[mask] = priced.iter().zip(&count).map(|(p, c)| p * c).sum::<f64>() / b as f64;
        }
        // weight[s] = s! (g - s - 1)! / g!, the chance that a random order puts exactly the
        // s players of a coalition before the one added.
        let mut weight = vec![0.0; g];
        for (s, w) in weight.iter_mut().enumerate() {
            *w = (1..=s).map(|i| i as f64).product::<f64>()
                * (1..g - s).map(|i| i as f64).product::<f64>()
                / (1..=g).map(|i| i as f64).product::<f64>();
        }
        Ok((0..g)
            .map(|j| {
                (0..=full)
                    .filter(|mask| mask >> j & 1 == 0)
                    .map(|mask| weight[mask.count_ones() as usize] * (v[mask | 1 << j] - v[mask]))
                    .sum()
            })
            .collect())
    }

    fn sampled(&self, subject: usize, own: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let g = self.players;
        let mut orders = Vec::new();
        for (i, &z) in self.background.iter().enumerate() {
            for k in 0..ORDERS {
                // The same orders for every house: a house's shares do not depend on which
                // houses share its request.
                let mut order: Vec<usize> = (0..g).collect();
                SeededRng::new(i as u64, k as u64).shuffle(&mut order);
                let reverse: Vec<usize> = order.iter().rev().copied().collect();
                orders.push((i, z, order));
                orders.push((i, z, reverse));
            }
        }
        // Each order's rows after adding its first 1..g-1 players (none and all are known).
        let mut sources = Vec::with_capacity(orders.len() * (g - 1) * g);
        for (_, z, order) in &orders {
            let mut row = vec![*z; g];
            for &j in &order[..g - 1] {
                row[j] = subject;
                sources.extend_from_slice(&row);
            }
        }
        let values = self.values(&sources, true)?;
        let mut sum = vec![0.0; g];
        let mut squares = vec![0.0; g];
        for ((i, _, order), chain) in orders.iter().zip(values.chunks_exact(g - 1)) {
            let mut before = self.background_ln[*i];
            for (t, &j) in order.iter().enumerate() {
                let after = if t + 1 == g { own } else { chain[t] };
                let step = after - before;
                sum[j] += step;
                squares[j] += step * step;
                before = after;
            }
        }
        let m = orders.len() as f64;
        let phi: Vec<f64> = sum.iter().map(|s| s / m).collect();
        let error = squares
            .iter()
            .zip(&phi)
            .map(|(sq, mean)| ((sq / m - mean * mean).max(0.0) / m).sqrt())
            .collect();
        Ok((phi, error))
    }
}

/// Per player, an id of each of the `rows` rows' value in `pool`: a number's bits, a text's code (a
/// missing cell its own id); a photo player's the row itself (its photos are its own).
fn value_ids(pool: &Frame, rows: usize, players: usize) -> Vec<Vec<u64>> {
    (0..players)
        .map(|j| match pool.columns.get(j) {
            Some(Values::Numbers(v)) => {
                v.iter().map(|x| x.map_or(u64::MAX, f64::to_bits)).collect()
            }
            Some(Values::Texts(t)) => t.codes.iter().map(|&c| u64::from(c)).collect(),
            None => (0..rows as u64).collect(),
        })
        .collect()
}

/// The photo players behind `trees`' photo inputs in `game` (whose photo players follow its
/// `columns` read columns): each row's parts and the trees' inputs of them.
fn photo_players<'a>(
    model: &'a TableModel,
    trees: &Trees,
    game: &Game,
    columns: usize,
) -> Option<PhotoPlayers<'a>> {
    let head = model.photo.as_ref().filter(|_| trees.photo_inputs > 0)?;
    let k = trees.photo_inputs;
    Some(PhotoPlayers {
        parts: game.parts.clone(),
        width: head.parts_width(),
        part_player: head.part_columns(),
        first_player: columns,
        players: head.columns.len(),
        inputs: Box::new(move |parts| {
            let mut inputs = Vec::new();
            head.inputs_from_parts(parts, &mut inputs);
            // The trees read the last of the head's inputs.
            inputs.split_off(inputs.len() - k)
        }),
    })
}

/// The model without its trees and the trees' weight in ln(price), when its ln(price) is
/// the sum of the two: a log price scale and trees beside another predictor (trees reading
/// photo inputs of at most [`MAX_PHOTO_PLAYERS`] photo columns). ln(price) = std x ((1 - share) x inner + share x trees) + the rest, so the
/// model without trees has its scale's std times (1 - share), and the trees weigh std x share.
fn split_trees(model: &TableModel) -> Option<(TableModel, &Trees, f64)> {
    let PriceScale::Log { std, .. } = &model.scale else {
        return None;
    };
    let Predictor::Stack(inner, trees, share) = &model.predictor else {
        return None;
    };
    let photo_players = model.photo.as_ref().map_or(0, |h| h.columns.len());
    if trees.photo_inputs > 0 && photo_players > MAX_PHOTO_PLAYERS {
        return None;
    }
    let mut scale = model.scale.clone();
    if let PriceScale::Log { std, .. } = &mut scale {
        *std *= 1.0 - share;
    }
    let mixer = TableModel {
        schema: model.schema.clone(),
        encoder: model.encoder.clone(),
        scale,
        predictor: (**inner).clone(),
        photo: model.photo.clone(),
        calibration: None,
        level_factors: model.level_factors.clone(),
        sales: None,
        info: model.info.clone(),
    };
    Some((mixer, trees, std * share))
}

/// Each player's mean absolute share over `n` background sales explained against the
/// background (what comparables weigh a difference in it by).
pub fn importance(model: &TableModel, sales: &Sales, n: usize) -> Result<Vec<f64>> {
    let game = Game::new(model, sales, None)?;
    let picks = evenly(sales.background.len(), n);
    let mut total = vec![0.0; game.players];
    for &p in &picks {
        let (phi, _, _) = game.shares(sales.background[p])?;
        total.iter_mut().zip(phi).for_each(|(t, v)| *t += v.abs());
    }
    Ok(total.into_iter().map(|t| t / picks.len() as f64).collect())
}

/// Column `kept` followed by `rows` of column `query`: numbers when both are, else texts
/// (a number as its category key).
fn join(kept: &Values, query: &Values, rows: &[usize]) -> Values {
    match (kept, query) {
        (Values::Numbers(a), Values::Numbers(b)) => Values::Numbers(
            a.iter()
                .copied()
                .chain(rows.iter().map(|&r| b[r]))
                .collect(),
        ),
        _ => {
            let cells: Vec<Option<String>> = (0..kept.len())
                .map(|r| kept.key(r))
                .chain(rows.iter().map(|&r| query.key(r)))
                .collect();
            Values::Texts(Texts::from_cells(&cells))
        }
    }
}

/// The cells of `values` at `rows`.
fn gather(values: &Values, rows: impl Iterator<Item = usize>) -> Values {
    match values {
        Values::Numbers(v) => Values::Numbers(rows.map(|r| v[r]).collect()),
        Values::Texts(t) => Values::Texts(Texts {
            codes: rows.map(|r| t.codes[r]).collect(),
            levels: t.levels.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::artifact;
    use std::path::Path;

    #[test]
    fn the_trees_split_off_give_the_shares_of_pricing_every_coalition() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/formats");
        let mut model =
            artifact::load(&fixtures.join("format10-table-recipe-trees.appraise")).unwrap();
        assert!(matches!(model.predictor, Predictor::Stack(..)));
        let frame = Frame::read(&fixtures.join("houses.csv")).unwrap();
        let rows: Vec<usize> = (0..frame.rows()).collect();
        let prices: Vec<f64> = rows
            .iter()
            .map(|&r| 150_000.0 + 9_000.0 * r as f64)
            .collect();
        crate::explain::sales::prepare(&mut model, &frame, &rows, &prices).unwrap();
        let sales = model.sales.clone().unwrap();
        let split = Game::build(&model, &sales, Some((&frame, &rows, Vec::new())), true).unwrap();
        let whole = Game::build(&model, &sales, Some((&frame, &rows, Vec::new())), false).unwrap();
        assert!(split.trees.is_some() && whole.trees.is_none());
        assert!((split.reference_ln() - whole.reference_ln()).abs() < 1e-9);
        for r in 0..rows.len() {
            let (a, _, own_a) = split.shares(sales.len() + r).unwrap();
            let (b, _, own_b) = whole.shares(sales.len() + r).unwrap();
            assert!((own_a - own_b).abs() < 1e-9, "{own_a} {own_b}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-9, "row {r}: {a:?} vs {b:?}");
            }
        }
    }
}
