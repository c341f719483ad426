//! Keras's `model.summary()` table, so that users can compare layer by layer.

use std::collections::HashMap;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Keras's name for the layer (`conv2d_1`, `dense_2`, ...).
    pub name: String,
    /// Keras's class name (`Conv2D`, `Dense`, ...).
    pub kind: &'static str,
    /// Output shape without the batch axis, channels last as Keras prints it.
    pub shape: Vec<usize>,
    /// Parameters, trainable and not.
    pub params: usize,
    /// Of those, the ones training does not update (BatchNorm's moving mean and variance).
    pub non_trainable: usize,
}

impl Layer {
    /// A layer whose parameters are all trainable.
    pub fn new(name: String, kind: &'static str, shape: Vec<usize>, params: usize) -> Self {
        Self {
            name,
            kind,
            shape,
            params,
            non_trainable: 0,
        }
    }
}

impl Layer {
    /// A `Dense` layer from `fan_in` to `fan_out` units.
    pub fn dense(names: &mut Names, fan_in: usize, fan_out: usize) -> Self {
        Self::new(
            names.next("dense"),
            "Dense",
            vec![fan_out],
            fan_in * fan_out + fan_out,
        )
    }
}

/// Keras's layer naming: the first `dense`, then `dense_1`, `dense_2`, ...
#[derive(Debug, Default)]
pub struct Names(HashMap<&'static str, usize>);

impl Names {
    /// The next name for a layer of this base name.
    pub fn next(&mut self, base: &'static str) -> String {
        let n = self.0.entry(base).or_default();
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        name
    }
}

/// All parameters of `layers`, as Keras's "Total params" counts them.
pub fn total(layers: &[Layer]) -> usize {
    layers.iter().map(|l| l.params).sum()
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: impl ToString) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table Keras prints for a model called `title`.
pub fn table(title: &str, layers: &[Layer]) -> String {
    let rule = "_".repeat(81);
    let double = "=".repeat(81);
    let mut out = format!(
        "Model: \"{title}\"\n{rule}\n {:<44}{:<26}{}\n{double}\n",
        "Layer (type)", "Output Shape", "Param #"
    );
    for (i, layer) in layers.iter().enumerate() {
        let dims: Vec<String> = layer.shape.iter().map(usize::to_string).collect();
        let shape = format!("(None, {})", dims.join(", "));
        out += &format!(
            " {:<44}{:<26}{}\n",
            format!("{} ({})", layer.name, layer.kind),
            shape,
            thousands(layer.params)
        );
        if i + 1 < layers.len() {
            out += "\n";
        }
    }
    let total = total(layers);
    let frozen: usize = layers.iter().map(|l| l.non_trainable).sum();
    out += &format!(
        "{double}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n{rule}\n",
        thousands(total),
        thousands(total - frozen),
        thousands(frozen)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_thousands_follow_keras() {
        let mut names = Names::default();
        assert_eq!(names.next("dense"), "dense");
        assert_eq!(names.next("conv2d"), "conv2d");
        assert_eq!(names.next("dense"), "dense_1");
        assert_eq!(thousands(89_721), "89,721");
        assert_eq!(thousands(129), "129");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
