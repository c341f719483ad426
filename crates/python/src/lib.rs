//! The `appraise._appraise` Python module: converts Python columns to the library's table,
//! calls the library, and converts back. Everything else is the library's
//! (`appraise::fit::tabular::fit_all`, `TableModel::predict`, the model file); the
//! scikit-learn estimator around it is Python (`python/appraise/__init__.py`).

use std::path::Path;

use appraise::Error;
use appraise::data::schema::SchemaOptions;
use appraise::data::table::{Frame, Texts, Values};
use appraise::fit::tabular::{Method, TableConfig, TableModel, TableRecipe};
use appraise::fit::train::EpochRecord;
use appraise::io::artifact;
use appraise::runtime::cancel::Cancel;
use appraise::runtime::context::Context;
use appraise::runtime::observer::{Observer, Stage};
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A library error as the Python exception a user expects, with the CLI's message.
fn raise(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// One column from Python: numbers (NaN where missing) or texts (`None` where missing).
#[derive(FromPyObject)]
enum Column {
    Numbers(Vec<f64>),
    Texts(Vec<Option<String>>),
}

/// A table of `columns` (name and values, in order).
fn frame(columns: Vec<(String, Column)>) -> PyResult<Frame> {
    let rows = columns.first().map_or(0, |(_, c)| match c {
        Column::Numbers(v) => v.len(),
        Column::Texts(v) => v.len(),
    });
    let mut names = Vec::with_capacity(columns.len());
    let mut values = Vec::with_capacity(columns.len());
    for (name, column) in columns {
        let v = match column {
            Column::Numbers(v) => {
                Values::Numbers(v.into_iter().map(|x| (!x.is_nan()).then_some(x)).collect())
            }
            Column::Texts(v) => Values::Texts(Texts::from_cells(&v)),
        };
        if v.len() != rows {
            return Err(PyValueError::new_err(format!(
                "column {name:?} has {} values, the first column {rows}",
                v.len()
            )));
        }
        names.push(name);
        values.push(v);
    }
    Ok(Frame {
        path: "the Python table".into(),
        names,
        columns: values,
        lines: None,
    })
}

/// A fitted model.
#[pyclass(module = "appraise._appraise", frozen)]
struct Model {
    inner: TableModel,
}

#[pymethods]
impl Model {
    /// The prices of the rows of `columns`, on `n_jobs` threads (`None` or -1: every core).
    #[pyo3(signature = (columns, n_jobs = None))]
    fn predict(
        &self,
        py: Python<'_>,
        columns: Vec<(String, Column)>,
        n_jobs: Option<i64>,
    ) -> PyResult<Vec<f64>> {
        let frame = frame(columns)?;
        let rows: Vec<usize> = (0..frame.rows()).collect();
        let pool = thread_pool(n_jobs)?;
        py.detach(|| on_threads(pool.as_ref(), || self.inner.predict(&frame, &rows)))
            .map(|(prices, _)| prices)
            .map_err(raise)
    }

    /// The price ranges at `level` of `prices` (`None` without a calibration).
    fn ranges(&self, prices: Vec<f64>, level: f64) -> PyResult<Option<Vec<(f64, f64)>>> {
        appraise::fit::interval::check_level(level).map_err(raise)?;
        Ok(self.inner.ranges(&prices, level))
    }

    /// Writes the model file (the CLI and the server read it).
    fn save(&self, path: &str) -> PyResult<()> {
        artifact::save(&self.inner, Path::new(path)).map_err(raise)
    }

    /// The model file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &artifact::to_bytes(&self.inner))
    }

    /// The columns it reads, in the schema's order.
    fn input_columns(&self) -> Vec<String> {
        self.inner.schema.inputs().map(|c| c.name.clone()).collect()
    }

    /// `appraise summary`'s text.
    fn summary(&self) -> String {
        artifact::summary(&self.inner)
    }
}

/// Fits a model on every row of `columns` priced `y`: the best recipe (`recipe="best"`,
/// settings from the JSON object `recipe_config`) or the tutorial's network, seeded `seed`.
#[pyfunction]
#[pyo3(signature = (columns, y, recipe, seed, recipe_config = None, n_jobs = None, progress = None))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    mut columns: Vec<(String, Column)>,
    y: Vec<f64>,
    recipe: &str,
    seed: u64,
    recipe_config: Option<&str>,
    n_jobs: Option<i64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Model> {
    let pool = thread_pool(n_jobs)?;
    const TARGET: &str = "price";
    if columns.iter().any(|(name, _)| name == TARGET) {
        return Err(PyValueError::new_err(
            "X has a column named \"price\": pass the prices as y, not as a column of X",
        ));
    }
    columns.push((TARGET.to_string(), Column::Numbers(y)));
    let frame = frame(columns)?;
    let method = match recipe {
        "best" => {
            let mut r: TableRecipe = match recipe_config {
                Some(json) => serde_json::from_str(json).map_err(|e| {
                    PyValueError::new_err(format!("recipe_config is not a recipe's settings: {e}"))
                })?,
                None => TableRecipe::default(),
            };
            r.seed = seed;
            Method::Recipe(r)
        }
        "tutorial" => {
            let mut m = Method::default();
            if let Method::Tutorial { train, .. } = &mut m {
                train.seed = seed;
            }
            m
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "recipe {other:?} is not one of \"best\", \"tutorial\""
            )));
        }
    };
    let config = TableConfig {
        method,
        ..TableConfig::default()
    };
    let options = SchemaOptions {
        target: Some(TARGET.into()),
        ..SchemaOptions::default()
    };
    let cancel = Cancel::new();
    let (sender, events) = std::sync::mpsc::channel::<Progress>();
    // The fit's progress reaches `progress` on this (the Python) thread, between waits.
    let report = |py: Python<'_>| -> PyResult<()> {
        for (kind, done, total, line) in events.try_iter() {
            if let Some(callback) = &progress {
                callback.call1(py, (kind, done, total, line))?;
            }
        }
        Ok(())
    };
    let inner = interruptible(py, &cancel, report, || {
        on_threads(pool.as_ref(), || {
            let mut forward = Forward(sender);
            let mut context = Context::new(&mut forward);
            context.cancel = cancel.clone();
            appraise::fit::tabular::fit_all(&frame, &options, &config, &mut context)
        })
    })?;
    Ok(Model { inner })
}

/// One progress event: its kind ("stage", "note", "epoch"), steps done and in all (0: not
/// known), and its line.
type Progress = (&'static str, usize, usize, String);

/// An observer that sends a fit's progress to the Python thread.
struct Forward(std::sync::mpsc::Sender<Progress>);

impl Observer for Forward {
    fn stage(&mut self, stage: Stage) {
        let _ = self.0.send(("stage", 0, 0, stage.message().to_string()));
    }
    fn note(&mut self, line: &str) {
        let _ = self.0.send(("note", 0, 0, line.to_string()));
    }
    fn epoch(&mut self, r: &EpochRecord, epochs: usize) {
        let line = format!("loss {:.4}, val_loss {:.4}", r.loss, r.val_loss);
        let _ = self.0.send(("epoch", r.epoch, epochs, line));
    }
}

/// The process whose threads rayon's global pool has: set when the module is imported.
static POOL_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// A pool of `n_jobs` threads (scikit-learn's convention: `None` or -1 every core, so no
/// pool of its own); the results are the same on any number. A process forked from the
/// one that imported the module (multiprocessing, joblib) has rayon's global pool without
/// its threads, where any parallel work would wait forever: it always gets a pool of its own.
fn thread_pool(n_jobs: Option<i64>) -> PyResult<Option<rayon::ThreadPool>> {
    let forked = *POOL_PID.get_or_init(std::process::id) != std::process::id();
    let every_core = || std::thread::available_parallelism().map_or(1, usize::from) as i64;
    match n_jobs {
        None | Some(-1) if !forked => Ok(None),
        None | Some(-1) => thread_pool(Some(every_core())),
        Some(n) if n >= 1 => rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build()
            .map(Some)
            .map_err(|e| PyValueError::new_err(format!("cannot start {n} threads: {e}"))),
        Some(n) => Err(PyValueError::new_err(format!(
            "n_jobs={n}: expected a positive number of threads, -1 or None (every core)"
        ))),
    }
}

/// `work` on `pool`'s threads, or on the global pool without one.
fn on_threads<T: Send>(pool: Option<&rayon::ThreadPool>, work: impl FnOnce() -> T + Send) -> T {
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Runs `work` on another thread without the GIL while this (the main) thread checks for
/// Ctrl-C every 50 ms: a signal sets `cancel`, which stops the library's loops, and raises
/// `KeyboardInterrupt` (only the main thread runs Python's signal handlers). `report` runs
/// at each check and once at the end (an error from it stops the work as Ctrl-C does).
fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &Cancel,
    mut report: impl FnMut(Python<'_>) -> PyResult<()>,
    work: impl FnOnce() -> appraise::Result<T> + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(work);
        let mut signal = None;
        let mut check = |signal: &mut Option<PyErr>| {
            if signal.is_none()
                && let Err(e) = py.check_signals().and_then(|()| report(py))
            {
                cancel.cancel();
                *signal = Some(e);
            }
        };
        while !worker.is_finished() {
            py.detach(|| std::thread::sleep(std::time::Duration::from_millis(50)));
            check(&mut signal);
        }
        check(&mut signal);
        let result = worker.join().unwrap_or_else(|_| {
            Err(Error::Training(
                "the library panicked; please report it".into(),
            ))
        });
        match (result, signal) {
            (_, Some(e)) => Err(e),
            (result, None) => result.map_err(raise),
        }
    })
}

/// The pretrained network's embeddings of the photos at `paths` (1,280 values each), its
/// products in `precision` (f32, bf16 or int8).
#[pyfunction]
#[pyo3(signature = (paths, precision = "f32"))]
fn featurize(py: Python<'_>, paths: Vec<String>, precision: &str) -> PyResult<Vec<Vec<f32>>> {
    let precision = precision
        .parse()
        .map_err(pyo3::exceptions::PyValueError::new_err)?;
    let featurizer = appraise::photos::extractor::Featurizer {
        precision,
        ..Default::default()
    };
    let paths: Vec<std::path::PathBuf> = paths.into_iter().map(Into::into).collect();
    let cancel = Cancel::new();
    let pool = thread_pool(None)?;
    interruptible(
        py,
        &cancel,
        |_| Ok(()),
        || {
            on_threads(pool.as_ref(), || {
                appraise::photos::extractor::embed_photos(featurizer, &paths, &|_| {}, &cancel)
            })
        },
    )
}

/// The Houses dataset's table (folder `dir` holding HousesInfo.txt): its columns, the
/// photo paths relative to `dir`, houses of zip codes with fewer than `min_zip_count` left
/// out (the tutorial's 25).
#[pyfunction]
fn load_houses(dir: &str, min_zip_count: usize) -> PyResult<Vec<(String, Py<PyAny>)>> {
    let pool = thread_pool(None)?;
    let table = on_threads(pool.as_ref(), || {
        appraise::data::dataset::load_table(Path::new(dir), min_zip_count)
    })
    .map_err(raise)?;
    Python::attach(|py| {
        let frame = &table.frame;
        frame
            .names
            .iter()
            .zip(&frame.columns)
            .map(|(name, values)| {
                let column = match values {
                    Values::Numbers(v) => v
                        .iter()
                        .map(|x| x.unwrap_or(f64::NAN))
                        .collect::<Vec<f64>>()
                        .into_pyobject(py)?
                        .into_any()
                        .unbind(),
                    Values::Texts(_) => (0..values.len())
                        .map(|r| values.key(r))
                        .collect::<Vec<Option<String>>>()
                        .into_pyobject(py)?
                        .into_any()
                        .unbind(),
                };
                Ok((name.clone(), column))
            })
            .collect()
    })
}

/// Reads a model file (one `appraise train` or `Model.save` wrote).
#[pyfunction]
fn load(path: &str) -> PyResult<Model> {
    let inner = artifact::load(Path::new(path)).map_err(|e| match e {
        // A file that is not there is Python's FileNotFoundError, with the CLI's words.
        Error::Input { .. } if !Path::new(path).exists() => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        e => raise(e),
    })?;
    Ok(Model { inner })
}

/// Reads a model from a model file's bytes.
#[pyfunction]
fn from_bytes(bytes: &[u8]) -> PyResult<Model> {
    let inner = artifact::from_bytes(bytes, Path::new("the pickled model")).map_err(raise)?;
    Ok(Model { inner })
}

#[pymodule]
fn _appraise(m: &Bound<'_, PyModule>) -> PyResult<()> {
    POOL_PID.get_or_init(std::process::id);
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(featurize, m)?)?;
    m.add_function(wrap_pyfunction!(load_houses, m)?)?;
    Ok(())
}
