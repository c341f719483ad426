//! Comparable sales: the kept training sales nearest a house in the inputs its price reads,
//! each input's difference weighed by how much that input moves prices
//! ([`super::sales::Sales::importance`]): a numeric column's difference in standard
//! deviations, a category's 0 (same) or 1 (different), a photo's difference in its part of
//! the photo price in standard deviations. So a sale in the same zip code counts for more
//! where the zip code moves prices most, and a column the model barely reads hardly counts.

use crate::data::schema::Role;
use crate::data::table::Values;
use crate::explain::sales::Sales;
use crate::explain::shapley::{Game, Player, players};
use crate::fit::tabular::TableModel;

/// Each player's unit of difference: a numeric column's standard deviation over the kept
/// sales, a photo part's, 1 for a category (and for a column without spread).
pub fn scales(model: &TableModel, sales: &Sales) -> Vec<f64> {
    let spread = |values: &[f64]| {
        let (_, std) = crate::evaluate::stats::mean_sample_std(values);
        if std.is_finite() && std > 0.0 {
            std
        } else {
            1.0
        }
    };
    players(model)
        .iter()
        .map(|(name, player)| match player {
            Player::Column(i) => match sales.columns[*i].values() {
                Values::Numbers(v) if is_numeric(model, name) => {
                    spread(&v.iter().flatten().copied().collect::<Vec<_>>())
                }
                _ => 1.0,
            },
            Player::Photo(c) => {
                let w = model.photo.as_ref().map_or(1, |h| h.parts_width());
                spread(
                    &sales
                        .photo_parts
                        .iter()
                        .skip(*c)
                        .step_by(w)
                        .copied()
                        .collect::<Vec<_>>(),
                )
            }
        })
        .collect()
}

fn is_numeric(model: &TableModel, name: &str) -> bool {
    model
        .schema
        .columns
        .iter()
        .any(|c| c.name == name && c.role == Role::Numeric)
}

/// The `k` kept sales nearest pool row `subject` of `game`, nearest first (ties: the earlier
/// sale), with their distances; a sale named `own_id` (the house itself) is left out.
pub fn nearest(
    model: &TableModel,
    sales: &Sales,
    game: &Game,
    subject: usize,
    own_id: Option<&str>,
    k: usize,
) -> Vec<(usize, f64)> {
    let players = players(model);
    // Once per house, not per sale: which inputs are compared as numbers.
    let numeric: Vec<bool> = players
        .iter()
        .map(|(name, _)| is_numeric(model, name))
        .collect();
    let w = model.photo.as_ref().map_or(0, |h| h.parts_width());
    let parts = game.parts();
    let mut scored: Vec<(usize, f64)> = (0..sales.len())
        .filter(|&s| own_id != Some(sales.ids[s].as_str()))
        .map(|s| {
            let d: f64 = players
                .iter()
                .enumerate()
                .map(|(g, (_, player))| {
                    let unit = sales.scales[g];
                    let apart = match player {
                        Player::Column(i) => match &game.pool().columns[*i] {
                            Values::Numbers(v) if numeric[g] => match (v[subject], v[s]) {
                                (Some(a), Some(b)) => (a - b).abs() / unit,
                                (None, None) => 0.0,
                                _ => 1.0,
                            },
                            // A category: the same cell or not (a number's bits are its key;
                            // a text's code, in the pool's one dictionary).
                            Values::Numbers(v) => {
                                f64::from(v[subject].map(f64::to_bits) != v[s].map(f64::to_bits))
                            }
                            Values::Texts(t) => f64::from(t.codes[subject] != t.codes[s]),
                        },
                        Player::Photo(c) => {
                            (parts[subject * w + c] - parts[s * w + c]).abs() / unit
                        }
                    };
                    sales.importance[g] * apart
                })
                .sum();
            (s, d)
        })
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}
