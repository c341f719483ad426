"""The Python package through its wheel: the scikit-learn estimator, model files shared with
the CLI both ways, pickling, and bad input as Python exceptions."""

import copy
import os
import pickle
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import appraise

LIGHT = {"max_epochs": 40, "patience": 10, "weight_decays": [1e-4], "ridge_penalties": [0.01],
         "seeds_per_fold": 1}


def listings(n=160):
    """Listings whose price follows area, type and zip code, with missing lot sizes."""
    i = np.arange(n)
    sqft = 800.0 + (i * 37) % 2000
    kind = np.array(["house", "condo", "townhouse"])[i % 3]
    lot = np.where(i % 7 == 0, np.nan, 2000.0 + (i * 53) % 5000)
    wobble = 1 + 0.05 * (((i * 7919) % 21) - 10) / 10
    price = sqft * 150 * np.array([1.0, 0.8, 0.9])[i % 3] * (1 + 0.1 * (i % 4)) * wobble
    X = pd.DataFrame({"zip": (95800 + i % 4).astype(str), "sqft": sqft, "type": kind, "lot": lot})
    return X, np.round(price)


@pytest.fixture(scope="module")
def fitted():
    X, y = listings()
    return appraise.Regressor(recipe="best", seed=3, recipe_config=LIGHT).fit(X, y), X, y


def test_fit_predict_score_and_ranges(fitted):
    m, X, y = fitted
    p = m.predict(X)
    assert p.shape == (len(X),) and np.all(p > 0)
    assert m.score(X, y) > 0.8
    r = m.predict_interval(X, level=0.9)
    assert r.shape == (len(X), 2) and np.all(r[:, 0] <= p) and np.all(p <= r[:, 1])
    assert m.get_params() == {
        "recipe": "best", "seed": 3, "recipe_config": LIGHT, "n_jobs": None, "verbose": 0
    }


def test_same_seed_same_model_and_a_pickle_prices_identically(fitted, tmp_path):
    m, X, y = fitted
    again = appraise.Regressor(recipe="best", seed=3, recipe_config=LIGHT).fit(X, y)
    assert np.array_equal(again.predict(X), m.predict(X))
    for other in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert np.array_equal(other.predict(X), m.predict(X))


def test_any_number_of_threads_gives_the_same_model_bit_for_bit(fitted):
    m, X, y = fitted
    for n_jobs in (1, 2, -1):
        other = appraise.Regressor(recipe="best", seed=3, recipe_config=LIGHT, n_jobs=n_jobs)
        assert np.array_equal(other.fit(X, y).predict(X), m.predict(X)), n_jobs
    with pytest.raises(ValueError, match="n_jobs=0"):
        appraise.Regressor(recipe="tutorial", n_jobs=0).fit(X, y)
    with pytest.raises(TypeError, match="n_jobs"):
        appraise.Regressor(recipe="tutorial", n_jobs="2").fit(X, y)


def test_progress_only_when_asked_and_the_same_model(fitted, capfd):
    m, X, y = fitted
    capfd.readouterr()
    for verbose in (0, 1, 2):
        other = appraise.Regressor(recipe="best", seed=3, recipe_config=LIGHT, verbose=verbose)
        assert np.array_equal(other.fit(X, y).predict(X), m.predict(X))
        err = capfd.readouterr().err
        if verbose == 0:
            assert err == ""
        elif verbose == 1:
            assert "appraise fit" in err  # tqdm's bar
        else:
            assert "[appraise] recipe chose" in err and "inner 5-fold CV MAPE" in err
    tutorial = appraise.Regressor(recipe="tutorial", seed=1, verbose=2).fit(X, y)
    assert "[appraise] epoch 200/200" in capfd.readouterr().err
    assert tutorial.predict(X).shape == (len(X),)


def _fit_and_price_in_a_child(X, y, m):
    tutorial = appraise.Regressor(recipe="tutorial", seed=1).fit(X, y)
    return tutorial.predict(X), m.predict(X)


def test_a_forked_process_fits_and_prices_without_hanging(fitted):
    # The parent has used its threads (the fixture's fit); a forked child finds them gone.
    import multiprocessing

    m, X, y = fitted
    expected = appraise.Regressor(recipe="tutorial", seed=1).fit(X, y).predict(X)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child, child_m = pool.apply_async(_fit_and_price_in_a_child, (X, y, m)).get(timeout=120)
    assert np.array_equal(child, expected) and np.array_equal(child_m, m.predict(X))


def test_cross_val_score_runs_as_scikit_learn_expects():
    X, y = listings(120)
    scores = cross_val_score(
        appraise.Regressor(recipe="tutorial", seed=1), X, y, cv=3,
        scoring="neg_mean_absolute_percentage_error",
    )
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_model_files_are_shared_with_the_cli_both_ways(fitted, tmp_path):
    m, X, y = fitted
    exe = os.environ["APPRAISE_BIN"]
    csv = tmp_path / "rows.csv"
    X.to_csv(csv, index=False)

    def cli_prices(model):
        out = subprocess.run(
            [exe, "predict", "--model", str(model), "--input", str(csv), "--interval", "none"],
            check=True, capture_output=True, text=True,
        ).stdout
        return pd.read_csv(pd.io.common.StringIO(out))["predicted_price"].to_numpy()

    # Saved from Python, priced by the CLI (which prints cents).
    saved = tmp_path / "python.appraise"
    m.save(saved)
    assert np.allclose(cli_prices(saved), np.round(m.predict(X), 2), atol=0.005, rtol=0)
    # Trained by the CLI, priced by Python.
    table = tmp_path / "table.csv"
    X.assign(price=y).to_csv(table, index=False)
    run = tmp_path / "run"
    subprocess.run([exe, "train", "--data", str(table), "--epochs", "20", "--out", str(run),
                    "--quiet"], check=True, capture_output=True)
    loaded = appraise.load(run / "model.appraise")
    assert np.allclose(loaded.predict(X), cli_prices(run / "model.appraise"), atol=0.005, rtol=0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X, y: (X, np.where(np.arange(len(y)) == 5, np.nan, y)), "price"),
        (lambda X, y: (X, -y), "price"),
        (lambda X, y: (X, y[:-1]), "rows but y has"),
        (lambda X, y: (X.iloc[:0], y[:0]), "no rows"),
        (lambda X, y: (X.assign(price=y), y), "named \"price\""),
    ],
)
def test_bad_input_raises_a_python_exception(change, message):
    X, y = listings(60)
    X, y = change(X, y)
    with pytest.raises(ValueError, match=message):
        appraise.Regressor(recipe="tutorial").fit(X, y)


def test_text_in_a_number_column_or_a_missing_column_at_predict_is_a_value_error(fitted):
    m, X, _ = fitted
    with pytest.raises(ValueError, match="sqft"):
        m.predict(X.assign(sqft="big"))
    with pytest.raises(ValueError, match="sqft"):
        m.predict(X.drop(columns=["sqft"]))
    with pytest.raises(FileNotFoundError, match="model file not found"):
        appraise.load("/no/such/model.appraise")


# scikit-learn's own estimator checks, every one of them (no expected failures).
@parametrize_with_checks([appraise.Regressor(recipe="tutorial", seed=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_the_houses_dataset_and_its_photos_feature_as_the_recipe_reads_them():
    folder = os.environ.get("APPRAISE_DATASET")
    if not folder:
        pytest.skip("APPRAISE_DATASET is not set")
    houses = appraise.datasets.load_houses(folder)
    assert len(houses) == 362
    assert list(houses.columns[:6]) == ["house", "zipcode", "bedrooms", "bathrooms", "area", "price"]
    photos = houses.loc[:1, ["frontal_photo", "kitchen_photo"]].to_numpy().ravel()
    emb = appraise.featurize(photos)
    assert emb.shape == (4, 1280) and emb.dtype == np.float32
    assert np.array_equal(appraise.featurize(photos[:1])[0], emb[0])
    assert not np.array_equal(emb[0], emb[1])
    # Reduced precision: close to f32, not equal; an unknown one is a ValueError.
    int8 = appraise.featurize(photos, precision="int8")
    cosine = (int8 * emb).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(emb, axis=1)
    assert cosine.min() > 0.99 and not np.array_equal(int8, emb)
    with pytest.raises(ValueError, match="int4"):
        appraise.featurize(photos, precision="int4")


def test_ctrl_c_stops_a_long_fit_with_keyboard_interrupt():
    import signal
    import sys
    import time

    code = (
        "import numpy as np, pandas as pd, appraise\n"
        "X = pd.DataFrame({'a': np.arange(2000.0), 'b': np.arange(2000.0) % 7})\n"
        "y = 1000 + 3 * X['a']\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    appraise.Regressor(recipe_config={'max_epochs': 100000, 'patience': 100000}).fit(X, y)\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert out.strip() == "interrupted"
    assert time.monotonic() - started < 30


@pytest.mark.skipif(
    not os.environ.get("APPRAISE_RAY_TESTS"),
    reason="set APPRAISE_RAY_TESTS=1 (and install ray[data]) to run the Ray test",
)
def test_ray_data_featurizes_and_prices_as_in_process(fitted, tmp_path):
    ray = pytest.importorskip("ray")
    import appraise.ray

    folder = os.environ.get("APPRAISE_DATASET")
    if not folder:
        pytest.skip("APPRAISE_DATASET is not set")
    m, X, _ = fitted
    model = tmp_path / "model.appraise"
    m.save(model)
    houses = appraise.datasets.load_houses(folder)
    paths = list(houses[[c for c in houses.columns if c.endswith("_photo")]].to_numpy().ravel()[:200])
    import signal

    def too_long(*_):
        raise TimeoutError("Ray took more than 5 minutes")

    # A stuck actor fails the test instead of hanging the run.
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(300)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        embedded = (
            ray.data.from_items([{"path": p} for p in paths])
            .map_batches(appraise.ray.Featurizer, fn_constructor_kwargs={"column": "path"},
                         concurrency=2, batch_size=25, batch_format="pyarrow")
            .to_pandas()
        )
        assert list(embedded["path"]) == paths
        assert np.array_equal(np.stack(embedded["embedding"].to_numpy()), appraise.featurize(paths))
        rows = pd.concat([X] * (100_000 // len(X) + 1), ignore_index=True).iloc[:100_000]
        priced = (
            ray.data.from_pandas(rows)
            .map_batches(appraise.ray.Pricer, fn_constructor_args=(str(model),),
                         concurrency=2, batch_size=10_000, batch_format="pyarrow")
            .to_pandas()
        )
        assert len(priced) == 100_000
        assert np.array_equal(priced["predicted_price"].to_numpy(), m.predict(rows))
        assert np.all(priced["low_80"] <= priced["predicted_price"])
    finally:
        signal.alarm(0)
        ray.shutdown()
