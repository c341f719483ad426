"""appraise on Ray Data: actor classes that load the network or the model once per actor.

    import ray, appraise.ray
    ray.init()                                     # or ray.init(address="auto") on a cluster
    photos = ray.data.from_items([{"path": p} for p in paths])
    embedded = photos.map_batches(appraise.ray.Featurizer, fn_constructor_kwargs={"column": "path"},
                                  concurrency=2, batch_format="pyarrow")
    priced = listings.map_batches(appraise.ray.Pricer, fn_constructor_args=("model.appraise",),
                                  concurrency=2, batch_format="pyarrow")

The same code runs on one machine and on a cluster; each actor computes exactly what the
in-process `appraise.featurize` and `Regressor.predict` compute.
"""

import numpy as np
import pyarrow as pa

import appraise

EMBEDDING = 1280


class Featurizer:
    """Adds a column `embedding` (1,280 float32 values a row): the pretrained network's
    embedding of the photo whose path is in `column`, its products in `precision` (as
    `appraise.featurize`)."""

    def __init__(self, column="path", precision="f32"):
        self.column = column
        self.precision = precision

    def __call__(self, batch):
        paths = batch.column(self.column).to_pylist()
        emb = appraise.featurize(paths, self.precision).astype(np.float32, copy=False)
        values = pa.array(emb.ravel(), type=pa.float32())
        return batch.append_column(
            "embedding", pa.FixedSizeListArray.from_arrays(values, EMBEDDING)
        )


class Pricer:
    """Adds `predicted_price` and, when the model has ranges, `low_<level>` and
    `high_<level>` (level 0.8 by default) to each row: the model file `model_path`'s prices."""

    def __init__(self, model_path, level=0.8):
        self.model = appraise.load(model_path)
        self.level = level

    def __call__(self, batch):
        prices = self.model.predict(batch.to_pandas())
        batch = batch.append_column("predicted_price", pa.array(prices, type=pa.float64()))
        ranges = self.model.model_.ranges(prices.tolist(), float(self.level))
        if ranges is not None:
            pct = round(100 * self.level)
            r = np.asarray(ranges, dtype=float)
            batch = batch.append_column(f"low_{pct}", pa.array(r[:, 0]))
            batch = batch.append_column(f"high_{pct}", pa.array(r[:, 1]))
        return batch
