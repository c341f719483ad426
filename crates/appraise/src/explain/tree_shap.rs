//! Exact interventional Shapley values of gradient-boosted trees, from their structure: for
//! a house `x` and a background sale `z`, each leaf a tree can reach by taking every split's
//! value from `x` or from `z` is reached exactly when the players whose `x` value it needs
//! are in the coalition and those whose `z` value it needs are not, a game whose Shapley
//! values are known in closed form. So a house's shares cost one walk of each tree per
//! background sale instead of pricing every coalition's mixed rows.
//!
//! A photo input (the photo head's price) depends on several players, the photo columns
//! whose parts it sums. A walk follows it for every way of taking each photo column from `x`
//! or `z` at once (a set of such masks narrowed at each split on a photo input); a leaf
//! reached by a set of masks is a sum of the games "exactly this mask", each again of the
//! closed form.

use forust_ml::tree::Tree;

use crate::fit::trees::Trees;

/// A tree game: the trees, each member's inputs of the pool rows (column-major), and the
/// player each member's input belongs to.
pub struct TreeGame<'a> {
    trees: &'a Trees,
    /// Per member, the game's rows' inputs row by row.
    inputs: Vec<Vec<f64>>,
    /// Each pool row's row in the game (`usize::MAX`: not in it).
    local: Vec<usize>,
    player_of: Vec<Vec<usize>>,
    /// Each of the game's rows' output.
    outputs: Vec<f64>,
    /// Per member and tree, the background sales that take the same branch at every split
    /// (a walk cannot tell them apart): one of them and how many.
    groups: Vec<Vec<Vec<(usize, f64)>>>,
    photos: Option<PhotoPlayers<'a>>,
}

/// The trees' photo inputs of a row of photo parts.
pub type PartsToInputs<'a> = Box<dyn Fn(&[f64]) -> Vec<f32> + Send + Sync + 'a>;

/// The players behind the trees' photo inputs (which follow each member's columns).
pub struct PhotoPlayers<'a> {
    /// Each pool row's photo parts, `width` a row.
    pub parts: Vec<f64>,
    /// Parts a row.
    pub width: usize,
    /// The photo player (0, 1, ...) each part belongs to.
    pub part_player: Vec<usize>,
    /// The game's index of photo player 0 (the others follow it).
    pub first_player: usize,
    /// How many photo players (at most [`MAX_PHOTO_PLAYERS`]).
    pub players: usize,
    /// The trees' photo inputs of a row of parts.
    pub inputs: PartsToInputs<'a>,
}

/// Photo players up to which trees reading photo inputs are walked (a set of masks of them
/// fits in 64 bits).
pub const MAX_PHOTO_PLAYERS: usize = 6;

impl PhotoPlayers<'_> {
    /// The trees' photo inputs of every mask of photo players taken from pool row `x` (the
    /// rest from `z`), mask by mask.
    fn mixed(&self, x: usize, z: usize) -> Vec<f64> {
        let w = self.width;
        let mut row = vec![0.0; w];
        let mut out = Vec::new();
        for mask in 0..1usize << self.players {
            for (p, value) in row.iter_mut().enumerate() {
                let from = if mask >> self.part_player[p] & 1 == 1 {
                    x
                } else {
                    z
                };
                *value = self.parts[from * w + p];
            }
            out.extend((self.inputs)(&row).into_iter().map(f64::from));
        }
        out
    }

    /// Every mask.
    fn all(&self) -> u64 {
        match 1u32 << self.players {
            64 => u64::MAX,
            masks => (1u64 << masks) - 1,
        }
    }
}

impl<'a> TreeGame<'a> {
    /// The game of `trees` over the pool rows `rows` (of `pool_rows`), whose member inputs
    /// are `inputs` (column-major) and outputs `outputs`; input `j` of member `m` belongs to
    /// player `player_of[m][j]`, the photo inputs after them to `photos`; `background` are
    /// pool rows among `rows`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        trees: &'a Trees,
        inputs: Vec<Vec<f64>>,
        pool: &[usize],
        pool_rows: usize,
        player_of: Vec<Vec<usize>>,
        outputs: Vec<f64>,
        background: &[usize],
        photos: Option<PhotoPlayers<'a>>,
    ) -> Self {
        let rows = pool.len();
        let mut local = vec![usize::MAX; pool_rows];
        for (i, &r) in pool.iter().enumerate() {
            local[r] = i;
        }
        // Row by row: a walk reads one row's inputs.
        let inputs: Vec<Vec<f64>> = inputs
            .into_iter()
            .map(|columns| {
                let width = columns.len() / rows.max(1);
                (0..rows)
                    .flat_map(|r| (0..width).map(move |j| (r, j)))
                    .map(|(r, j)| columns[j * rows + r])
                    .collect()
            })
            .collect();
        let groups = trees
            .members
            .iter()
            .enumerate()
            .map(|(m, member)| {
                let booster = &member.booster;
                let columns = player_of[m].len();
                let width = columns + trees.photo_inputs;
                let n_trees = booster.prediction_iteration.unwrap_or(booster.trees.len());
                booster.trees[..n_trees]
                    .iter()
                    .map(|tree| {
                        // A split on a photo input depends on the house as well as the sale.
                        if splits_on(tree, columns) {
                            return background.iter().map(|&z| (z, 1.0)).collect();
                        }
                        let mut seen: std::collections::BTreeMap<Vec<usize>, (usize, f64)> =
                            Default::default();
                        for &z in background {
                            let at = local[z];
                            let row = &inputs[m][at * width..(at + 1) * width];
                            let key: Vec<usize> = tree
                                .nodes
                                .iter()
                                .filter(|n| !n.is_leaf)
                                .map(|n| n.get_child_idx(&row[n.split_feature], &booster.missing))
                                .collect();
                            seen.entry(key).or_insert((z, 0.0)).1 += 1.0;
                        }
                        let mut g: Vec<(usize, f64)> = seen.into_values().collect();
                        // In background order: the same sums on every run.
                        g.sort_by_key(|&(z, _)| background.iter().position(|&b| b == z));
                        g
                    })
                    .collect()
            })
            .collect();
        TreeGame {
            trees,
            inputs,
            local,
            player_of,
            outputs,
            groups,
            photos,
        }
    }

    /// The trees' output of pool row `r` (a background sale or a house).
    pub fn output(&self, r: usize) -> f64 {
        self.outputs[self.local[r]]
    }

    /// The Shapley values (`players` of them) of the trees' output of pool row `x`, its
    /// coalitions' values the mean over the `background` rows (those it was made with).
    pub fn shares(&self, x: usize, background: &[usize], players: usize) -> Vec<f64> {
        let mut phi = vec![0.0; players];
        let mut weights = Weights::new(players);
        let mut marks = vec![0i8; players];
        // Per background sale, the photo inputs of every mask (none without photo inputs).
        let mut mixed: Vec<Vec<f64>> = vec![Vec::new(); self.local.len()];
        if let Some(photos) = &self.photos {
            for &z in background {
                mixed[z] = photos.mixed(x, z);
            }
        }
        let (all, photo_players, first_player) = self
            .photos
            .as_ref()
            .map_or((0, 0, 0), |p| (p.all(), p.players, p.first_player));
        for (m, member) in self.trees.members.iter().enumerate() {
            let booster = &member.booster;
            let n_trees = booster.prediction_iteration.unwrap_or(booster.trees.len());
            let columns = self.player_of[m].len();
            let width = columns + self.trees.photo_inputs;
            let row = |r: usize| {
                let at = self.local[r];
                &self.inputs[m][at * width..(at + 1) * width]
            };
            // Tree by tree: a tree's nodes stay in cache for every background sale.
            for (tree, groups) in booster.trees[..n_trees].iter().zip(&self.groups[m]) {
                for &(z, count) in groups {
                    let mut walk = Walk {
                        tree,
                        x: row(x),
                        z: row(z),
                        count,
                        player_of: &self.player_of[m],
                        missing: booster.missing,
                        marks: &mut marks,
                        phi: &mut phi,
                        weights: &mut weights,
                        photo: PhotoWalk {
                            first_input: columns,
                            inputs: self.trees.photo_inputs,
                            mixed: &mixed[z],
                            players: photo_players,
                            first_player,
                            all,
                        },
                    };
                    walk.from(0, 0, 0, all);
                }
            }
        }
        let n = (self.trees.members.len() * background.len()) as f64;
        phi.iter_mut().for_each(|p| *p /= n);
        phi
    }
}

/// A leaf's Shapley weights: of a player marked from x, of one marked from z, and of each
/// photo player.
type LeafWeights = (f64, f64, [f64; MAX_PHOTO_PLAYERS]);

/// |P|!|N|!/(|P|+|N|+1)! and friends, by factorials; a leaf's weights once per kind of leaf.
struct Weights {
    factorial: Vec<f64>,
    leaves: std::collections::HashMap<(usize, usize, u64), LeafWeights>,
}

impl Weights {
    fn new(players: usize) -> Self {
        let mut factorial = vec![1.0; players + 2];
        for i in 1..factorial.len() {
            factorial[i] = factorial[i - 1] * i as f64;
        }
        Weights {
            factorial,
            leaves: Default::default(),
        }
    }

    /// The weights of a leaf reached with `p` players marked from x, `n` from z and the
    /// photo players' `masks` (all of them: the photo players play no part).
    fn of_leaf(&mut self, p: usize, n: usize, masks: u64, photo: &PhotoWalk) -> LeafWeights {
        if masks == photo.all {
            return self.of_marked(p, n, None, 0);
        }
        if let Some(&w) = self.leaves.get(&(p, n, masks)) {
            return w;
        }
        // Each mask a game of its own, every photo player marked by it.
        let mut sum = (0.0, 0.0, [0.0; MAX_PHOTO_PLAYERS]);
        let mut rest = masks;
        while rest != 0 {
            let mask = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let inside = mask.count_ones() as usize;
            let pp = p + inside;
            let nn = n + photo.players - inside;
            let (a, b, c) = self.of_marked(pp, nn, Some(mask), photo.players);
            sum.0 += a;
            sum.1 += b;
            sum.2.iter_mut().zip(c).for_each(|(s, c)| *s += c);
        }
        self.leaves.insert((p, n, masks), sum);
        sum
    }

    /// The weights of the game "the `p` marked from x in, the `n` from z out", the first
    /// `players` photo players marked by `mask` when given (and counted in `p` and `n`).
    fn of_marked(&self, p: usize, n: usize, mask: Option<usize>, players: usize) -> LeafWeights {
        if p + n == 0 {
            return (0.0, 0.0, [0.0; MAX_PHOTO_PLAYERS]);
        }
        let needed = if p > 0 { self.of_needed(p, n) } else { 0.0 };
        let excluded = if n > 0 { self.of_excluded(p, n) } else { 0.0 };
        let mut photo = [0.0; MAX_PHOTO_PLAYERS];
        if let Some(mask) = mask {
            for (k, c) in photo.iter_mut().enumerate().take(players) {
                *c = if mask >> k & 1 == 1 { needed } else { excluded };
            }
        }
        (needed, excluded, photo)
    }

    /// The Shapley value of a player in `P` (`need_x`) of the game "1 when every player of
    /// P is in the coalition and none of N", P of `p` players and N of `n`.
    fn of_needed(&self, p: usize, n: usize) -> f64 {
        self.factorial[p - 1] * self.factorial[n] / self.factorial[p + n]
    }

    /// The same for a player in N (negative).
    fn of_excluded(&self, p: usize, n: usize) -> f64 {
        -self.factorial[p] * self.factorial[n - 1] / self.factorial[p + n]
    }
}

/// Whether `tree` splits on an input at or after `first` (a photo input).
fn splits_on(tree: &Tree, first: usize) -> bool {
    tree.nodes
        .iter()
        .any(|n| !n.is_leaf && n.split_feature >= first)
}

/// What a walk knows of the photo inputs of one background sale.
struct PhotoWalk<'w> {
    /// A member's first photo input.
    first_input: usize,
    /// Photo inputs a row.
    inputs: usize,
    /// The photo inputs of each mask of photo players taken from the house.
    mixed: &'w [f64],
    players: usize,
    first_player: usize,
    /// Every mask (0 without photo players).
    all: u64,
}

struct Walk<'w> {
    tree: &'w Tree,
    x: &'w [f64],
    z: &'w [f64],
    /// How many background sales this walk stands for.
    count: f64,
    player_of: &'w [usize],
    missing: f64,
    /// Per player: 1 its value comes from x, -1 from z, 0 not yet decided.
    marks: &'w mut [i8],
    phi: &'w mut [f64],
    weights: &'w mut Weights,
    photo: PhotoWalk<'w>,
}

impl Walk<'_> {
    /// Walks down from node `at`, `p` players marked from x and `n` from z, the masks of
    /// photo players that reach it `masks`.
    fn from(&mut self, at: usize, p: usize, n: usize, masks: u64) {
        let node = &self.tree.nodes[at];
        if node.is_leaf {
            let w = f64::from(node.weight_value) * self.count;
            self.leaf(w, p, n, masks);
            return;
        }
        let j = node.split_feature;
        if j >= self.photo.first_input {
            return self.photo_split(at, j - self.photo.first_input, p, n, masks);
        }
        let to_x = node.get_child_idx(&self.x[j], &self.missing);
        let to_z = node.get_child_idx(&self.z[j], &self.missing);
        if to_x == to_z {
            return self.from(to_x, p, n, masks);
        }
        let player = self.player_of[j];
        match self.marks[player] {
            1 => self.from(to_x, p, n, masks),
            -1 => self.from(to_z, p, n, masks),
            _ => {
                self.marks[player] = 1;
                self.from(to_x, p + 1, n, masks);
                self.marks[player] = -1;
                self.from(to_z, p, n + 1, masks);
                self.marks[player] = 0;
            }
        }
    }

    /// A split on photo input `i`: the masks still walking, parted by the branch they take.
    fn photo_split(&mut self, at: usize, i: usize, p: usize, n: usize, masks: u64) {
        let node = &self.tree.nodes[at];
        let mut children: Vec<(usize, u64)> = Vec::with_capacity(3);
        let mut rest = masks;
        while rest != 0 {
            let mask = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let value = self.photo.mixed[mask * self.photo.inputs + i];
            let child = node.get_child_idx(&value, &self.missing);
            match children.iter_mut().find(|(c, _)| *c == child) {
                Some((_, set)) => *set |= 1 << mask,
                None => children.push((child, 1 << mask)),
            }
        }
        for (child, set) in children {
            self.from(child, p, n, set);
        }
    }

    /// Adds a leaf's value `w` to the shares: the game "1 when the `p` players marked from x
    /// are in the coalition and the `n` from z are not, and the photo players taken from x
    /// are one of `masks`".
    fn leaf(&mut self, w: f64, p: usize, n: usize, masks: u64) {
        let (needed, excluded, photo) = self.weights.of_leaf(p, n, masks, &self.photo);
        for (phi, mark) in self.phi.iter_mut().zip(self.marks.iter()) {
            match mark {
                1 => *phi += w * needed,
                -1 => *phi += w * excluded,
                _ => {}
            }
        }
        let first = self.photo.first_player;
        for (k, c) in photo.iter().enumerate().take(self.photo.players) {
            self.phi[first + k] += w * c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::{Frame, Values};
    use crate::fit::trees::{TreeColumn, TreeMember};
    use forust_ml::{GradientBooster, Matrix};

    /// Interventional Shapley values by pricing every coalition: `value(x, z, mask)` the
    /// output of the row taking the players in `mask` from `x`, the rest from `z`.
    fn brute_force(
        players: usize,
        background: &[usize],
        value: impl Fn(usize, u32) -> f64,
    ) -> Vec<f64> {
        let full = 1u32 << players;
        let v: Vec<f64> = (0..full)
            .map(|mask| {
                background.iter().map(|&z| value(z, mask)).sum::<f64>() / background.len() as f64
            })
            .collect();
        let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
        (0..players)
            .map(|j| {
                (0..full)
                    .filter(|mask| mask >> j & 1 == 0)
                    .map(|mask| {
                        let s = mask.count_ones() as usize;
                        factorial(s) * factorial(players - s - 1) / factorial(players)
                            * (v[(mask | 1 << j) as usize] - v[mask as usize])
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn trees_reading_a_photo_input_of_several_players_give_the_shares_of_every_coalition() {
        // Players: column a, then photo players 0 and 1 (two parts each summed into the
        // trees' one photo input: part 0 belongs to player 0, parts 1 and 2 to player 1).
        let n = 60;
        let a: Vec<f64> = (0..n).map(|r| ((r * 37) % 11) as f64).collect();
        let parts: Vec<f64> = (0..n * 3).map(|i| ((i * 53) % 17) as f64 / 4.0).collect();
        let photo = |p: &[f64]| vec![(p[0] - 2.0 * p[1] + p[2]) as f32];
        let inputs_of = |r: usize| photo(&parts[r * 3..r * 3 + 3]);
        let mut x = a.clone();
        x.extend((0..n).map(|r| f64::from(inputs_of(r)[0])));
        let y: Vec<f64> = (0..n)
            .map(|r| a[r] * x[n + r] + (a[r] - 5.0).abs() + x[n + r].sin() * 3.0)
            .collect();
        let mut booster = GradientBooster::default()
            .set_objective_type(forust_ml::objective::ObjectiveType::SquaredLoss)
            .set_learning_rate(0.3)
            .set_max_depth(4)
            .set_iterations(30)
            .set_parallel(false);
        booster
            .fit(&Matrix::new(&x, n, 2), &y, &vec![1.0; n], None)
            .unwrap();
        let trees = Trees {
            members: vec![TreeMember {
                columns: vec![TreeColumn::Number { column: "a".into() }],
                booster,
            }],
            photo_inputs: 1,
            learning_rate: 0.3,
            depth: 4,
            monotone: Vec::new(),
        };
        let pool = Frame {
            path: "pool".into(),
            names: vec!["a".into()],
            columns: vec![Values::Numbers(a.iter().map(|&v| Some(v)).collect())],
            lines: None,
        };
        let rows: Vec<usize> = (0..n).collect();
        let row_inputs: Vec<f32> = rows.iter().flat_map(|&r| inputs_of(r)).collect();
        let background: Vec<usize> = (0..n).step_by(3).collect();
        let game = TreeGame::new(
            &trees,
            trees.member_inputs(&pool, &rows, &row_inputs),
            &rows,
            n,
            vec![vec![0]],
            trees.predict(&pool, &rows, &row_inputs),
            &background,
            Some(PhotoPlayers {
                parts: parts.clone(),
                width: 3,
                part_player: vec![0, 1, 1],
                first_player: 1,
                players: 2,
                inputs: Box::new(photo),
            }),
        );
        for house in [1, 7, 22, 59] {
            let expected = brute_force(3, &background, |z, mask| {
                let from = |player: u32| if mask >> player & 1 == 1 { house } else { z };
                let mut p = parts[from(2) * 3..from(2) * 3 + 3].to_vec();
                p[0] = parts[from(1) * 3];
                let frame = Frame {
                    columns: vec![Values::Numbers(vec![Some(a[from(0)])])],
                    ..pool.clone()
                };
                trees.predict(&frame, &[0], &photo(&p))[0]
            });
            let got = game.shares(house, &background, 3);
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() < 1e-9,
                    "house {house}: {got:?} vs {expected:?}"
                );
            }
            assert!(
                expected[1].abs() + expected[2].abs() > 1e-3,
                "the photo players matter"
            );
        }
    }
}
