//! Exact interventional Shapley values of gradient-boosted trees, from their structure: for
//! a house `x` and a background sale `z`, each leaf a tree can reach by taking every split's
//! value from `x` or from `z` is reached exactly when the players whose `x` value it needs
//! are in the coalition and those whose `z` value it needs are not, a game whose Shapley
//! values are known in closed form. So a house's shares cost one walk of each tree per
//! background sale instead of pricing every coalition's mixed rows.

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
}

impl<'a> TreeGame<'a> {
    /// The game of `trees` over the pool rows `rows` (of `pool_rows`), whose member inputs
    /// are `inputs` (column-major) and outputs `outputs`; input `j` of member `m` belongs to
    /// player `player_of[m][j]`; `background` are pool rows among `rows`.
    pub fn new(
        trees: &'a Trees,
        inputs: Vec<Vec<f64>>,
        pool: &[usize],
        pool_rows: usize,
        player_of: Vec<Vec<usize>>,
        outputs: Vec<f64>,
        background: &[usize],
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
                let width = player_of[m].len();
                let n_trees = booster.prediction_iteration.unwrap_or(booster.trees.len());
                booster.trees[..n_trees]
                    .iter()
                    .map(|tree| {
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
        for (m, member) in self.trees.members.iter().enumerate() {
            let booster = &member.booster;
            let n_trees = booster.prediction_iteration.unwrap_or(booster.trees.len());
            let width = self.player_of[m].len();
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
                    };
                    walk.from(0, 0, 0);
                }
            }
        }
        let n = (self.trees.members.len() * background.len()) as f64;
        phi.iter_mut().for_each(|p| *p /= n);
        phi
    }
}

/// |P|!|N|!/(|P|+|N|+1)! and friends, by factorials.
struct Weights {
    factorial: Vec<f64>,
}

impl Weights {
    fn new(players: usize) -> Self {
        let mut factorial = vec![1.0; players + 2];
        for i in 1..factorial.len() {
            factorial[i] = factorial[i - 1] * i as f64;
        }
        Weights { factorial }
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
}

impl Walk<'_> {
    /// Walks down from node `at`, `p` players marked from x and `n` from z.
    fn from(&mut self, at: usize, p: usize, n: usize) {
        let node = &self.tree.nodes[at];
        if node.is_leaf {
            if p + n == 0 {
                return;
            }
            let w = f64::from(node.weight_value) * self.count;
            let (needed, excluded) = (
                if p > 0 {
                    self.weights.of_needed(p, n)
                } else {
                    0.0
                },
                if n > 0 {
                    self.weights.of_excluded(p, n)
                } else {
                    0.0
                },
            );
            for (phi, mark) in self.phi.iter_mut().zip(self.marks.iter()) {
                match mark {
                    1 => *phi += w * needed,
                    -1 => *phi += w * excluded,
                    _ => {}
                }
            }
            return;
        }
        let j = node.split_feature;
        let to_x = node.get_child_idx(&self.x[j], &self.missing);
        let to_z = node.get_child_idx(&self.z[j], &self.missing);
        if to_x == to_z {
            return self.from(to_x, p, n);
        }
        let player = self.player_of[j];
        match self.marks[player] {
            1 => self.from(to_x, p, n),
            -1 => self.from(to_z, p, n),
            _ => {
                self.marks[player] = 1;
                self.from(to_x, p + 1, n);
                self.marks[player] = -1;
                self.from(to_z, p, n + 1);
                self.marks[player] = 0;
            }
        }
    }
}
