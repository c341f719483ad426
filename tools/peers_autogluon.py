#!/usr/bin/env python3
# Usage: python tools/peers_autogluon.py ames|sacramento|0-9|10-19 [seconds a fold, default 60]
# (autogluon.tabular[lightgbm,catboost,xgboost] in a virtual environment outside the repository).
# Prints each split's test MAPE and training time, then their means.
"""AutoGluon on the same folds as `appraise cv --folds 5 --split-seed 0` (KFold(shuffle=True,
random_state=0)) and, for the Houses dataset, `--split-seeds S` (train_test_split(test_size=0.25,
random_state=S) over the houses of zip codes with at least 25 sales, the attributes only):
TabularPredictor(eval_metric="mean_absolute_percentage_error"), presets="best_quality", on the
raw price, as a user would call it. Same splits as tools/peers_sklearn.py."""
import sys, time, tempfile
import numpy as np, pandas as pd
import peer_splits
from autogluon.tabular import TabularPredictor

def mape(a, p):
    return 100 * np.mean(np.abs(p - a) / a)

which = sys.argv[1]
budget = int(sys.argv[2]) if len(sys.argv) > 2 else 60
df, target, _, splits = peer_splits.table(which)

scores, times = [], []
for k, (tr, te) in enumerate(splits):
    with tempfile.TemporaryDirectory() as path:
        t0 = time.time()
        model = TabularPredictor(label=target, eval_metric="mean_absolute_percentage_error",
                                 path=path, verbosity=0)
        model.fit(df.iloc[tr], presets="best_quality", time_limit=budget)
        times.append(time.time() - t0)
        test = df.iloc[te]
        scores.append(mape(test[target].values, model.predict(test.drop(columns=[target])).values))
    print(f"split {k}: test MAPE {scores[-1]:.2f}%, fit {times[-1]:.1f} s", flush=True)
print(f"{which}: AutoGluon best_quality ({budget} s a fold) mean test MAPE {np.mean(scores):.2f}% "
      f"over {len(scores)} splits, fit {np.mean(times):.1f} s a split")
