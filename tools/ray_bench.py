"""Photos per second and houses per second, in process and through Ray Data with 1 and 2
single-threaded actors (issue 35's scale figures). Needs the wheel and `ray[data]` installed
(tools/python_tests.sh makes such a virtual environment) and APPRAISE_DATASET.

    $TMPDIR/appraise-py-venv/bin/python tools/ray_bench.py
"""

import os
import time

import numpy as np
import pandas as pd
import ray

import appraise
import appraise.ray

PHOTOS = 400
ROWS = 1_000_000


def timed(f):
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def main():
    folder = os.environ["APPRAISE_DATASET"]
    houses = appraise.datasets.load_houses(folder)
    photo_columns = [c for c in houses.columns if c.endswith("_photo")]
    paths = list(houses[photo_columns].to_numpy().ravel()[:PHOTOS])
    X = houses[["zipcode", "bedrooms", "bathrooms", "area"]]
    model = appraise.Regressor(recipe="best", seed=42).fit(X, houses["price"])
    model.save("/tmp/appraise-ray-bench.appraise")
    rows = pd.concat([X] * (ROWS // len(X) + 1), ignore_index=True).iloc[:ROWS]

    t, _ = timed(lambda: appraise.featurize(paths))
    print(f"featurize in process (all cores): {PHOTOS / t:.1f} photos/s")
    t, _ = timed(lambda: model.predict(rows))
    print(f"predict in process (all cores): {ROWS / t:,.0f} houses/s")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"RAYON_NUM_THREADS": "1"}})
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    for actors in (1, 2):
        ds = ray.data.from_items([{"path": p} for p in paths])
        t, _ = timed(lambda: ds.map_batches(
            appraise.ray.Featurizer, fn_constructor_kwargs={"column": "path"},
            concurrency=actors, batch_size=20, batch_format="pyarrow").materialize())
        print(f"featurize on Ray, {actors} single-threaded actor(s): {PHOTOS / t:.1f} photos/s")
        ds = ray.data.from_pandas(rows).repartition(20)
        t, _ = timed(lambda: ds.map_batches(
            appraise.ray.Pricer, fn_constructor_args=("/tmp/appraise-ray-bench.appraise",),
            concurrency=actors, batch_size=50_000, batch_format="pyarrow").materialize())
        print(f"price on Ray, {actors} single-threaded actor(s): {ROWS / t:,.0f} houses/s")
    ray.shutdown()


if __name__ == "__main__":
    main()
