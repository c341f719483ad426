#!/usr/bin/env python3
# Usage: python tools/peers_sklearn.py ames|sacramento|0-9|10-19   (scikit-learn and pandas in a
# virtual environment outside the repository). Prints each peer's mean test MAPE and time.
"""Peers on the same folds as `appraise cv --folds 5 --split-seed 0` (KFold(shuffle=True,
random_state=0)) and, for the Houses dataset, `--split-seeds S` (train_test_split(test_size=0.25,
random_state=S)): HistGradientBoostingRegressor and RidgeCV on one-hot, both on ln(price)."""
import sys, time
import numpy as np, pandas as pd
import peer_splits
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.impute import SimpleImputer

def mape(a, p):
    return 100 * np.mean(np.abs(p - a) / a)

def models(cat, num):
    hgb = make_pipeline(
        ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=64), cat)], remainder="passthrough"),
        HistGradientBoostingRegressor(random_state=0))
    ridge = make_pipeline(
        ColumnTransformer([
            ("c", OneHotEncoder(handle_unknown="ignore"), cat),
            ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num)]),
        RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return {"HistGradientBoosting": hgb, "ridge on one-hot": ridge}

def run(df, target, splits, cat):
    num = [c for c in df.columns if c not in cat and c != target]
    X, y = df.drop(columns=[target]), df[target].values
    for c in cat:
        X[c] = X[c].astype(str)
    out = {}
    for name, model in models(cat, num).items():
        scores, t0 = [], time.time()
        for tr, te in splits:
            model.fit(X.iloc[tr], np.log(y[tr]))
            scores.append(mape(y[te], np.exp(model.predict(X.iloc[te]))))
        out[name] = (np.mean(scores), time.time() - t0)
    return out

which = sys.argv[1]
df, target, cat, splits = peer_splits.table(which)
for name, (m, t) in run(df, target, splits, cat).items():
    print(f"{which}\t{name}\t{m:.2f}%\t{t:.1f} s")
