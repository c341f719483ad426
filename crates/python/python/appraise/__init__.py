"""appraise: predict house prices with neural networks and gradient-boosted trees.

A scikit-learn estimator over the appraise library (Rust)::

    import appraise, pandas as pd
    X = pd.read_csv("listings.csv"); y = X.pop("price")
    m = appraise.Regressor(recipe="best", seed=42).fit(X, y)
    m.predict(X); m.predict_interval(X, level=0.9)
    m.save("model.appraise")                     # `appraise predict` and `serve` read it
    appraise.load("runs/best-3/model.appraise")  # and it reads theirs

Model files are the CLI's: the same rows get the same prices in both.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _appraise, datasets

__all__ = ["Regressor", "load", "featurize", "datasets"]


def featurize(paths, precision="f32"):
    """The pretrained network's (EfficientNet-Lite0, ImageNet) embeddings of the photos at
    `paths`: a float32 array (len(paths), 1280), as the recipe's photo inputs read them.
    `precision` is the arithmetic of the network's products, as `--photo-precision`: "f32"
    (default), "int8" (faster where the CPU has AVX-512 VNNI; cosine to f32 about 0.998) or
    "bf16". Ctrl-C stops it with KeyboardInterrupt."""
    paths = [str(p) for p in paths]
    out = np.asarray(_appraise.featurize(paths, precision), dtype=np.float32)
    return out.reshape(len(paths), -1) if len(paths) else np.zeros((0, 1280), np.float32)


def _is_frame(X):
    return (hasattr(X, "columns") and hasattr(X, "iloc")) or hasattr(X, "to_pandas")


def _columns(X, names=None):
    """X as (name, values) pairs: numbers as float lists (NaN missing), anything else as
    text lists (None missing). Takes pandas and polars frames, pyarrow tables, numpy arrays
    and lists of rows."""
    if hasattr(X, "to_pandas") and not hasattr(X, "iloc"):
        X = X.to_pandas()  # polars or pyarrow
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        out = []
        for name in X.columns:
            col = X[name]
            if col.dtype.kind in "biuf":
                out.append((str(name), np.asarray(col, dtype=float).tolist()))
            else:
                out.append(
                    (str(name), [None if _missing(v) else str(v) for v in col.tolist()])
                )
        return out
    a = np.asarray(X)
    if a.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (rows, columns), got shape {a.shape}")
    if names is None:
        names = [f"x{j}" for j in range(a.shape[1])]
    if a.dtype.kind in "biuf":
        a = a.astype(float)
        return [(names[j], a[:, j].tolist()) for j in range(a.shape[1])]
    return [
        (names[j], [None if _missing(v) else str(v) for v in a[:, j].tolist()])
        for j in range(a.shape[1])
    ]


def _missing(v):
    return v is None or (isinstance(v, float) and np.isnan(v))


class Regressor(RegressorMixin, BaseEstimator):
    """House prices from a table's columns.

    Parameters
    ----------
    recipe : {"best", "tutorial"}
        "best": appraise's recipe (networks, ridge and gradient-boosted trees chosen by
        inner cross-validation, blended); "tutorial": the Keras tutorial's MLP.
    seed : int
        Seed of everything random; the same seed gives the same model, bit for bit.
    recipe_config : dict or None
        Settings of the best recipe (the "recipe" object of a run's config.json), e.g.
        ``{"max_epochs": 60, "trees": False}``; fields left out keep their defaults.
    n_jobs : int or None
        Threads for fit and predict (None or -1: every core). The model and its prices are
        the same, bit for bit, on any number.
    verbose : int
        0 (default): fit prints nothing; 1: a progress bar on standard error (tqdm's where
        it is installed, else a line per step); 2: every line the CLI's `train` prints (each
        candidate of the recipe and its inner score, the choice, the epochs).
    """

    def __init__(self, recipe="best", seed=42, recipe_config=None, n_jobs=None, verbose=0):
        self.recipe = recipe
        self.seed = seed
        self.recipe_config = recipe_config
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check(self, X, reset):
        """X as columns; arrays, sparse matrices and lists checked as scikit-learn does."""
        if not _is_frame(X):
            X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        elif not reset and hasattr(self, "feature_names_in_"):
            # A frame's columns are read by name (others pass unread), as `appraise predict`.
            have = {str(c) for c in X.columns}
            lacking = [c for c in self.feature_names_in_ if c not in have]
            if lacking:
                raise ValueError(
                    f"X has no column {', '.join(map(repr, lacking))}, which the model was "
                    "fitted on"
                )
        return _columns(X, None if reset else self._names())

    def fit(self, X, y=None):
        """Fits on every row of X (prices y, all positive)."""
        if y is None:
            raise ValueError(
                "Regressor requires y to be passed, but the target y is None: pass the prices"
            )
        columns = self._check(X, reset=True)
        y = column_or_1d(np.asarray(y, dtype=float), warn=True)
        rows = len(columns[0][1]) if columns else 0
        if rows == 0:
            raise ValueError("X has no rows; fit needs at least a few priced houses")
        if len(y) != rows:
            raise ValueError(f"X has {rows} rows but y has {len(y)} prices")
        if rows < 4:
            raise ValueError(f"n_samples = {rows}: appraise needs at least 4 priced houses")
        config = None if self.recipe_config is None else json.dumps(self.recipe_config)
        # getattr: a Regressor pickled before `verbose` existed refits as before.
        verbose = getattr(self, "verbose", 0)
        progress = _Progress(verbose) if verbose else None
        try:
            self.model_ = _appraise.fit(
                columns, y.tolist(), self.recipe, int(self.seed), config, self._jobs(), progress
            )
        finally:
            if progress is not None:
                progress.close()
        self.n_features_in_ = len(columns)
        if _is_frame(X):
            self.feature_names_in_ = np.asarray([c for c, _ in columns], dtype=object)
        return self

    def _jobs(self):
        """n_jobs as an int (None: every core)."""
        n = getattr(self, "n_jobs", None)
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))):
            raise TypeError(f"n_jobs must be an int or None, not {type(n).__name__}")
        return None if n is None else int(n)

    def _names(self):
        return None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_)

    def predict(self, X):
        """The price of each row of X, in dollars."""
        check_is_fitted(self, "model_")
        columns = self._check(X, reset=False)
        return np.asarray(self.model_.predict(columns, self._jobs()), dtype=float)

    def predict_interval(self, X, level=0.8):
        """The price range of each row at `level` (0 < level < 1): an array (rows, 2) of low
        and high prices, calibrated on the training rows' out-of-fold errors."""
        prices = self.predict(X)
        ranges = self.model_.ranges(prices.tolist(), float(level))
        if ranges is None:
            raise ValueError("this model carries no calibration, so it gives no ranges")
        return np.asarray(ranges, dtype=float)

    def save(self, path):
        """Writes the model file (`appraise predict --model PATH` and `serve` read it)."""
        check_is_fitted(self, "model_")
        self.model_.save(str(path))

    def summary(self):
        """`appraise summary`'s text."""
        check_is_fitted(self, "model_")
        return self.model_.summary()

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = state["model_"].to_bytes()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state["model_"] = _appraise.from_bytes(state["model_"])
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.positive_only = True
        return tags


class _Progress:
    """A fit's progress events ("stage", "note", "epoch"; steps done and in all; the line)
    shown as `Regressor`'s `verbose` asks."""

    def __init__(self, verbose):
        self.lines = verbose >= 2
        self.bar = None
        if not self.lines:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(desc="appraise fit", unit=" steps", file=sys.stderr, leave=False)

    def __call__(self, kind, done, total, line):
        if self.bar is not None:
            if kind == "epoch":
                self.bar.total, self.bar.n = total, done
                self.bar.set_postfix_str(line, refresh=False)
                self.bar.refresh()
            else:
                self.bar.set_description(line[:60], refresh=False)
                self.bar.update(0 if self.bar.total else 1)
        elif self.lines or kind != "epoch" or done == total or done % 10 == 0:
            step = f"epoch {done}/{total}: " if kind == "epoch" else ""
            print(f"[appraise] {step}{line}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def load(path):
    """A fitted Regressor from a model file (`appraise train`'s or `Regressor.save`'s)."""
    r = Regressor()
    r.model_ = _appraise.load(str(path))
    names = r.model_.input_columns()
    r.n_features_in_ = len(names)
    r.feature_names_in_ = np.asarray(names, dtype=object)
    return r
