//! The commands on a user's own table (`--data FILE`): `train`, `cv`, `predict`, `evaluate`
//! and `summary` of table models.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CvArgs, FormatArg, PredictArgs, RecipeArg, RunArgs, TrainArgs, Verbosity};
use appraise::data::schema::{self, Role, Schema, SchemaOptions};
use appraise::data::source::Source;
use appraise::data::table::Frame;
use appraise::error::{Error, Result};
use appraise::evaluate::cv::Scheme;
use appraise::evaluate::metrics::Metrics;
use appraise::fit::pipeline::{self, Observer, Silent};
use appraise::fit::tabular::{self, Method, TableConfig, TableModel, TableRecipe};
use appraise::io::artifact;
use appraise::io::atomic;
use appraise::runtime::observer::Stage;

/// Where a user's table is and what its columns are.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// A table of houses to use instead of the Houses dataset: CSV, or Parquet (by the
    /// .parquet extension). Column roles are inferred and printed; override them below.
    #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
    pub data: Option<PathBuf>,

    /// With --data: the price column [default: a column named price or sale_price]
    #[arg(long, value_name = "COLUMN", requires = "data")]
    pub target: Option<String>,

    /// With --data: columns to treat as categories (comma-separated).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', requires = "data")]
    pub categorical: Vec<String>,

    /// With --data: columns to treat as numbers (comma-separated).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', requires = "data")]
    pub numeric: Vec<String>,

    /// With --data: columns not to use (comma-separated).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', requires = "data")]
    pub ignore: Vec<String>,

    /// With --data: columns that name a row (passed through, never inputs).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', requires = "data")]
    pub identifier: Vec<String>,

    /// With --data: columns of photo paths, one or more per cell separated by ; or |,
    /// relative to the table's folder (the best recipe reads their pretrained features).
    #[arg(
        long = "photos",
        value_name = "COLUMNS",
        value_delimiter = ',',
        requires = "data"
    )]
    pub photo_columns: Vec<String>,

    /// With --data: the living-area column (the baselines then price per area unit).
    #[arg(long, value_name = "COLUMN", requires = "data")]
    pub area: Option<String>,

    /// With --data: the photo column that shows each house from the street (the recipe
    /// reads its manufactured-home score) [default: the first photo column]
    #[arg(long, value_name = "COLUMN", requires = "data")]
    pub front_photo: Option<String>,

    /// With --data: a JSON schema file with the fields target, categorical, numeric, ignore,
    /// identifier, photos and area (flags win over it).
    #[arg(long, value_name = "FILE", requires = "data")]
    pub schema: Option<PathBuf>,

    /// With --data: drop rows whose price is missing, zero or negative instead of refusing
    /// the table.
    #[arg(long, requires = "data")]
    pub drop_bad_target: bool,
}

impl TableArgs {
    fn options(&self) -> Result<SchemaOptions> {
        let options = SchemaOptions {
            target: self.target.clone(),
            categorical: self.categorical.clone(),
            numeric: self.numeric.clone(),
            ignore: self.ignore.clone(),
            photos: self.photo_columns.clone(),
            identifier: self.identifier.clone(),
            area: self.area.clone(),
            front_photo: self.front_photo.clone(),
            monotone: Vec::new(),
        };
        match &self.schema {
            Some(path) => options.with_file(path),
            None => Ok(options),
        }
    }
}

/// The rows a run reads, with their schema: a user's table (`--data`), or the Houses
/// dataset through its loader (`--dataset`, downloaded on first use).
fn rows(run: &RunArgs) -> Result<(Frame, Schema, Source)> {
    let table = &run.table;
    match &table.data {
        Some(path) => {
            let frame = Frame::read(path)?;
            let schema = schema::infer(&frame, &table.options()?)?;
            Ok((frame, schema, Source::Table))
        }
        None => {
            let dir = super::houses_dir(run.dataset.as_deref(), &run.cache, run.offline)?;
            let houses = appraise::data::dataset::load_table(&dir, run.min_zip_count)?;
            let source = Source::Houses {
                min_zip_count: run.min_zip_count,
            };
            Ok((houses.frame, houses.schema, source))
        }
    }
}

/// The rows, their schema and the run's settings, from the flags: every dataset's runs are
/// planned here.
pub fn plan(run: &RunArgs) -> Result<(Frame, Schema, TableConfig, Source)> {
    run.check()?;
    // The pretrained kinds are the recipe with its photo inputs always on (and for
    // `photos-pretrained` no other input), as on the Houses dataset; the tutorial's photo
    // networks read a montage of each row's photos.
    let pretrained = run.model.pretrained();
    if pretrained && run.recipe_photos != super::RecipePhotosArg::Auto {
        return Err(Error::Usage(format!(
            "--model {} always reads the photos; leave out --recipe-photos",
            run.model.name()
        )));
    }
    if run.photo_precision != super::PhotoPrecisionArg::F32
        && !pretrained
        && run.recipe == RecipeArg::Tutorial
    {
        return Err(Error::Usage(
            "--photo-precision sets the pretrained photo network's arithmetic, which only \
             --recipe best and the pretrained --model kinds read; add --recipe best"
                .to_string(),
        ));
    }
    let config = config(run)?;
    let (frame, schema, source) = rows(run)?;
    let reads_photos = pretrained || run.model.spec().uses_photos();
    if reads_photos && !schema.columns.iter().any(|c| c.role == Role::Photos) {
        return Err(Error::Usage(format!(
            "--model {} reads each row's photos, but {} has no column of photo paths; name it \
             with --photos COLUMN",
            run.model.name(),
            frame.path.display()
        )));
    }
    Ok((frame, schema, config, source))
}

/// The run's settings the flags describe (everything but the rows).
pub fn config(run: &RunArgs) -> Result<TableConfig> {
    let pretrained = run.model.pretrained();
    let recipe_arg = if pretrained {
        RecipeArg::Best
    } else {
        run.recipe
    };
    let method = match recipe_arg {
        RecipeArg::Tutorial => {
            run.device.device()?;
            let mut train = appraise::fit::train::TrainConfig::default();
            train.epochs = run.epochs;
            train.batch_size = run.batch_size;
            train.seed = run.seed;
            train.optimizer.learning_rate = run.learning_rate;
            train.validate()?;
            Method::Tutorial {
                model: run.model.spec(),
                train,
            }
        }
        RecipeArg::Best => {
            let mut recipe: TableRecipe = match &run.recipe_config {
                Some(path) => {
                    serde_json::from_str(&super::read_text(path)?).map_err(|e| Error::Input {
                        path: path.clone(),
                        message: format!(
                            "is not a valid recipe configuration for a table: {}",
                            appraise::error::quoted(e)
                        ),
                    })?
                }
                None => TableRecipe::default(),
            };
            recipe.seed = run.seed;
            if run.recipe_config.is_none() || run.photo_precision != super::PhotoPrecisionArg::F32 {
                recipe.photo_precision = run.photo_precision.into();
            }
            if run.recipe_config.is_none() || run.recipe_photos != super::RecipePhotosArg::Auto {
                recipe.photos = match run.recipe_photos {
                    super::RecipePhotosArg::Auto => appraise::fit::recipe::PhotoUse::Auto,
                    super::RecipePhotosArg::Off => appraise::fit::recipe::PhotoUse::Off,
                    super::RecipePhotosArg::On => appraise::fit::recipe::PhotoUse::On,
                };
            }
            if pretrained {
                recipe.photos = appraise::fit::recipe::PhotoUse::On;
                recipe.attributes = run.model != super::ModelKind::PhotosPretrained;
            }
            Method::Recipe(recipe)
        }
    };
    let config = TableConfig {
        method,
        test_size: run.test_size,
        split_seed: run.split_seed,
        drop_bad_target: run.table.drop_bad_target,
        ranges: appraise::fit::interval::RangeConfig {
            folds: run.range_folds,
        },
    };
    Ok(config)
}

fn fingerprint(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(appraise::data::dataset::fingerprint(&bytes))
}

/// The name of a run's default folder (`runs/<name>-N`): the model's, or `best`.
fn run_name(run: &RunArgs) -> &'static str {
    if run.model.pretrained() {
        run.model.name()
    } else if run.recipe == RecipeArg::Best {
        "best"
    } else {
        run.model.spec().name()
    }
}

/// `appraise train`, on any dataset.
pub fn train(args: &TrainArgs, verbosity: Verbosity, printer: &mut dyn Observer) -> Result<()> {
    args.run.check()?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| pipeline::default_out_dir(run_name(&args.run)));
    atomic::check_output_dir(&out_dir, "the run folder (--out)")?;
    printer.stage(Stage::Loading);
    let (frame, schema, config, source) = plan(&args.run)?;
    if verbosity != Verbosity::Quiet && args.run.table.data.is_some() {
        println!(
            "[INFO] {}: {} rows\n{}",
            frame.path.display(),
            frame.rows(),
            schema.render()
        );
    }
    let (rows, prices, dropped) = tabular::usable_rows(&frame, &schema, config.drop_bad_target)?;
    if dropped > 0 {
        eprintln!("warning: dropped {dropped} rows whose price is missing, zero or negative");
    }
    printer.stage(Stage::Splitting);
    let split = tabular::split(rows.len(), &config)?;
    let mut fit = tabular::fit(
        &frame,
        &schema,
        &rows,
        &prices,
        &split,
        &config,
        &mut args.run.context(printer),
    )?;
    // The training sales its explanations read.
    let train_rows: Vec<usize> = split.train.iter().map(|&i| rows[i]).collect();
    let train_prices: Vec<f64> = split.train.iter().map(|&i| prices[i]).collect();
    appraise::explain::sales::prepare(&mut fit.model, &frame, &train_rows, &train_prices)?;
    let test_rows: Vec<usize> = split.test.iter().map(|&i| rows[i]).collect();
    let (actual, predicted): (Vec<f64>, Vec<f64>) = fit
        .predictions
        .iter()
        .map(|p| (p.actual, p.predicted))
        .unzip();
    fit.examples =
        appraise::explain::examples(&fit.model, &frame, &test_rows, &actual, &predicted)?;
    fit.model.info.fingerprint = fingerprint(&frame.path)?;
    fit.model.info.source = source;
    // An absolute path, so that `evaluate` finds the table from any folder.
    if let Ok(absolute) = std::fs::canonicalize(&frame.path) {
        fit.model.info.data = absolute.display().to_string();
    }
    // After Ctrl-C nothing more is written.
    super::interrupt::cancel().check()?;
    tabular::write_run(&fit, &config, &out_dir)?;
    artifact::save(&fit.model, &out_dir.join(artifact::FILE_NAME))?;
    let m = &fit.model.info.test_metrics;
    if verbosity != Verbosity::Quiet {
        super::print_test_scores(m, &fit.model.info.coverage, "houses");
    }
    let (mean, std) = appraise::evaluate::stats::mean_sample_std(&prices);
    println!(
        "[INFO] avg. house price: {}, std house price: {}",
        super::dollars(mean),
        super::dollars(std)
    );
    eprintln!("[INFO] results written to {}", out_dir.display());
    println!("[INFO] mean: {:.2}%, std: {:.2}%", m.mape, m.ape_std);
    Ok(())
}

/// `appraise cv`, on any dataset.
pub fn cv(args: &CvArgs, scheme: &Scheme) -> Result<()> {
    if let Some(path) = &args.json {
        atomic::check_output_file(path, "the report (--json)")?;
    }
    let (frame, schema, config, _) = plan(&args.run)?;
    println!("{}", schema.render());
    let jobs = super::cv_jobs(args)?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut silent = Silent;
    let mut context = args.run.context(&mut silent);
    let report =
        tabular::cross_validate(&frame, &schema, &config, scheme, jobs, &mut context, &|r| {
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            eprintln!(
                "[INFO] {k} done: {} (model MAPE {:.2}%)",
                r.label, r.model.mape
            );
        })?;
    let noun = if args.run.table.data.is_some() {
        "rows"
    } else {
        "houses"
    };
    super::print_cv(&report, noun);
    if let Some(path) = &args.json {
        // After Ctrl-C nothing more is written.
        super::interrupt::cancel().check()?;
        atomic::write(path, pipeline::to_json(&report).as_bytes())?;
    }
    Ok(())
}

/// `appraise predict` with a table model.
pub fn predict(args: &PredictArgs, model: &TableModel) -> Result<()> {
    if let Some(path) = &args.output {
        atomic::check_output_file(path, "the predictions (--output)")?;
    }
    let level = appraise::fit::interval::parse_level(args.interval.as_deref())?;
    let (frame, passthrough) = query_rows(args, model)?;
    let input = args.input.clone().unwrap_or_default();
    let photo_columns = model.photo_columns();
    let priced = match &args.photos {
        Some(dir) if !photo_columns.is_empty() => {
            appraise::data::dataset::with_photos_in(&frame, dir, &photo_columns)?
        }
        Some(_) => {
            eprintln!("warning: this model reads no photos; --photos is ignored");
            frame.clone()
        }
        None => {
            let lacking: Vec<&str> = photo_columns
                .iter()
                .filter(|c| frame.find(c).is_none())
                .map(String::as_str)
                .collect();
            if !lacking.is_empty() {
                return Err(Error::Usage(format!(
                    "this model prices houses from their photos ({}): give the input those \
                     columns of photo paths, or pass the photo folder (--photos DIR) holding \
                     each house's {{id}}_{}.jpg",
                    lacking.join(", "),
                    lacking
                        .iter()
                        .map(|c| c.strip_suffix("_photo").unwrap_or(c))
                        .collect::<Vec<_>>()
                        .join(".jpg, {id}_")
                )));
            }
            frame.clone()
        }
    };
    let rows: Vec<usize> = (0..frame.rows()).collect();
    let (prices, warnings) = model.predict(&priced, &rows)?;
    refuse_unseen(model, &warnings, args.unknown_zip)?;
    let ranges = match level {
        Some(level) => match model.ranges(&prices, level) {
            Some(r) => Some((level, r)),
            None => {
                if args.interval.is_some() {
                    eprintln!(
                        "warning: this model carries no calibration (trained with --range-folds 0, or written before ranges), so it prices without ranges; retrain it for ranges"
                    );
                }
                None
            }
        },
        None => None,
    };
    let names = ranges
        .as_ref()
        .map(|(level, _)| appraise::io::output::range_columns(*level));
    for line in &warnings.lines {
        eprintln!("warning: {line}");
    }
    // Out-of-range inputs are announced with or without ranges; the ranges flag them.
    let outside = model.outside_training(&priced, &rows);
    super::warn_outside(&outside, "row");
    let flag = |r: usize| outside[r].as_deref().unwrap_or("");
    let explained = match args.explain {
        true => {
            let e = appraise::explain::explain(model, &priced, &rows, &prices, args.comps)?;
            if let Some(note) = e.first().and_then(|e| e.note.as_deref()) {
                eprintln!("warning: {note}");
            }
            Some(e)
        }
        false => None,
    };
    let (extra_header, extra) = explain_columns(explained.as_deref());
    let text = match args.format {
        // A CSV input is passed through as written, with the price appended to each row.
        FormatArg::Csv if passthrough => {
            let bytes = std::fs::read(&input).map_err(|e| Error::io(&input, e))?;
            let append = |out: &mut Vec<u8>, i: usize| {
                use std::io::Write as _;
                let _ = write!(out, ",{:.2}", prices[i]);
                if let Some((_, r)) = &ranges {
                    let _ = write!(
                        out,
                        ",{:.2},{:.2},{}",
                        r[i].0,
                        r[i].1,
                        appraise::io::output::csv_field(flag(i))
                    );
                }
                for field in extra(i) {
                    let _ = write!(out, ",{}", appraise::io::output::csv_field(&field));
                }
            };
            let mut header_tail = String::from(",predicted_price");
            if let Some((low, high)) = &names {
                header_tail.push_str(&format!(
                    ",{low},{high},{}",
                    appraise::io::output::OUTSIDE_COLUMN
                ));
            }
            for name in &extra_header {
                header_tail.push(',');
                header_tail.push_str(&appraise::io::output::csv_field(name));
            }
            // Most tables hold no quoted field: their records are their lines, found at
            // memchr speed instead of parsing the whole file a second time.
            if let Some(lines) = plain_records(&bytes).filter(|l| l.len() == prices.len() + 1) {
                let per_row = if ranges.is_some() { 48 } else { 12 };
                let mut out = Vec::with_capacity(bytes.len() + per_row * prices.len());
                out.extend_from_slice(lines[0].strip_prefix(b"\xef\xbb\xbf").unwrap_or(lines[0]));
                out.extend_from_slice(header_tail.as_bytes());
                out.push(b'\n');
                for (i, line) in lines[1..].iter().enumerate() {
                    out.extend_from_slice(line);
                    append(&mut out, i);
                    out.push(b'\n');
                }
                out
            } else {
                let failed = |e: csv::Error| Error::Input {
                    path: input.clone(),
                    message: format!("could not be read again: {e}"),
                };
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .from_reader(&bytes[..]);
                // Room for the appended columns up front: growing a buffer of hundreds of
                // megabytes copies it.
                let per_row = if ranges.is_some() { 48 } else { 12 };
                let mut w = csv::Writer::from_writer(Vec::with_capacity(
                    bytes.len() + per_row * prices.len(),
                ));
                let mut header = reader.byte_headers().map_err(failed)?.clone();
                header.push_field(b"predicted_price");
                if let Some((low, high)) = &names {
                    header.push_field(low.as_bytes());
                    header.push_field(high.as_bytes());
                    header.push_field(appraise::io::output::OUTSIDE_COLUMN.as_bytes());
                }
                for name in &extra_header {
                    header.push_field(name.as_bytes());
                }
                w.write_byte_record(&header)
                    .map_err(|e| Error::Training(e.to_string()))?;
                let mut record = csv::ByteRecord::new();
                for (i, price) in prices.iter().enumerate() {
                    if !reader.read_byte_record(&mut record).map_err(failed)? {
                        break;
                    }
                    record.push_field(format!("{price:.2}").as_bytes());
                    if let Some((_, r)) = &ranges {
                        record.push_field(format!("{:.2}", r[i].0).as_bytes());
                        record.push_field(format!("{:.2}", r[i].1).as_bytes());
                        record.push_field(flag(i).as_bytes());
                    }
                    for field in extra(i) {
                        record.push_field(field.as_bytes());
                    }
                    w.write_byte_record(&record)
                        .map_err(|e| Error::Training(e.to_string()))?;
                }
                // The input's own bytes, passed through: no need to check them again.
                w.into_inner().expect("an in-memory writer")
            }
        }
        FormatArg::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = frame.names.clone();
            header.push("predicted_price".into());
            if let Some((low, high)) = &names {
                header.push(low.clone());
                header.push(high.clone());
                header.push(appraise::io::output::OUTSIDE_COLUMN.into());
            }
            header.extend(extra_header.iter().cloned());
            w.write_record(&header)
                .map_err(|e| Error::Training(e.to_string()))?;
            for (r, price) in prices.iter().enumerate() {
                let mut record: Vec<String> = frame.columns.iter().map(|c| c.display(r)).collect();
                record.push(format!("{price:.2}"));
                if let Some((_, ranges)) = &ranges {
                    record.push(format!("{:.2}", ranges[r].0));
                    record.push(format!("{:.2}", ranges[r].1));
                    record.push(flag(r).to_string());
                }
                record.extend(extra(r));
                w.write_record(&record)
                    .map_err(|e| Error::Training(e.to_string()))?;
            }
            w.into_inner().expect("an in-memory writer")
        }
        FormatArg::Json => {
            let objects: Vec<serde_json::Value> = prices
                .iter()
                .enumerate()
                .map(|(r, price)| {
                    let mut object = serde_json::Map::new();
                    for (name, column) in frame.names.iter().zip(&frame.columns) {
                        let value = match column {
                            appraise::data::table::Values::Numbers(v) => {
                                v[r].map_or(serde_json::Value::Null, json_number)
                            }
                            appraise::data::table::Values::Texts(t) => t
                                .get(r)
                                .map_or(serde_json::Value::Null, serde_json::Value::from),
                        };
                        object.insert(name.clone(), value);
                    }
                    let cents = |v: f64| serde_json::Value::from((v * 100.0).round() / 100.0);
                    object.insert("predicted_price".into(), cents(*price));
                    if let (Some((low, high)), Some((_, ranges))) = (&names, &ranges) {
                        object.insert(low.clone(), cents(ranges[r].0));
                        object.insert(high.clone(), cents(ranges[r].1));
                        object.insert(
                            appraise::io::output::OUTSIDE_COLUMN.into(),
                            outside[r]
                                .as_deref()
                                .map_or(serde_json::Value::Null, Into::into),
                        );
                        let confidence = appraise::explain::confidence(model, *price);
                        let number = |v: Option<f64>| v.map_or(serde_json::Value::Null, Into::into);
                        object.insert("fsd".into(), number(confidence.map(|c| c.0)));
                        object.insert("confidence".into(), number(confidence.map(|c| c.1)));
                    }
                    if let Some(e) = &explained {
                        object.insert(
                            "explanation".into(),
                            serde_json::to_value(&e[r]).expect("explanations serialize"),
                        );
                    }
                    serde_json::Value::Object(object)
                })
                .collect();
            let mut text = serde_json::to_vec_pretty(&objects).expect("JSON values serialize");
            text.push(b'\n');
            text
        }
    };
    match &args.output {
        Some(path) => {
            super::interrupt::cancel().check()?;
            atomic::write(path, &text)?
        }
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(&text)
                .and_then(|()| out.flush())
                .map_err(|e| Error::io(Path::new("standard output"), e))?;
        }
    }
    Ok(())
}

/// The CSV columns `predict --explain` appends and each row's fields: the forecast
/// standard deviation, the confidence, the reference price, each column's factor and
/// dollars, the comparables' median adjusted price (none without explanations).
#[allow(clippy::type_complexity)]
fn explain_columns(
    explained: Option<&[appraise::explain::Explanation]>,
) -> (Vec<String>, Box<dyn Fn(usize) -> Vec<String> + '_>) {
    let Some(e) = explained.filter(|e| !e.is_empty()) else {
        return (Vec::new(), Box::new(|_| Vec::new()));
    };
    let mut header: Vec<String> = ["fsd", "confidence", "reference_price"]
        .map(String::from)
        .to_vec();
    for c in &e[0].contributions {
        header.push(format!("factor_{}", c.column));
        header.push(format!("dollars_{}", c.column));
    }
    header.push("comparables_median".into());
    let number =
        |v: Option<f64>, places: usize| v.map_or(String::new(), |v| format!("{v:.places$}"));
    let fields = move |r: usize| {
        let x = &e[r];
        let mut f = vec![
            number(x.fsd, 4),
            number(x.confidence, 1),
            number(x.reference_price, 2),
        ];
        for c in &x.contributions {
            f.push(format!("{:.6}", c.factor));
            f.push(format!("{:.2}", c.dollars));
        }
        f.push(number(x.comparables_median, 2));
        f
    };
    (header, Box::new(fields))
}

/// The rows `predict` prices, and whether they are a CSV file's to pass through as written:
/// `--input`'s table (or `HousesInfo.txt`-style file), or the house of `--bedrooms`,
/// `--bathrooms`, `--area` and `--zipcode`.
fn query_rows(args: &PredictArgs, model: &TableModel) -> Result<(Frame, bool)> {
    use appraise::data::dataset;
    match (
        &args.input,
        args.bedrooms,
        args.bathrooms,
        args.area,
        args.zipcode,
    ) {
        (Some(path), ..) => {
            let is_text = !path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
            if is_text {
                let text = super::read_text(path)?;
                if dataset::looks_like_houses_info(&text) {
                    return Ok((dataset::query_table(&text, path)?, false));
                }
            }
            let frame = Frame::read(path)?;
            let passthrough = !frame.is_parquet();
            Ok((frame, passthrough))
        }
        (None, Some(bedrooms), Some(bathrooms), Some(area), Some(zipcode)) => {
            for (name, v) in [
                ("bedrooms", bedrooms),
                ("bathrooms", bathrooms),
                ("area", area),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(Error::Usage(format!(
                        "--{name} must be a non-negative number, got {v}"
                    )));
                }
            }
            let house =
                dataset::one_house(args.house.as_deref(), [bedrooms, bathrooms, area], zipcode);
            if let Some(c) = model
                .encoder
                .columns
                .iter()
                .find(|c| !model.photos_only() && house.find(c.column()).is_none())
            {
                return Err(Error::Usage(format!(
                    "--bedrooms, --bathrooms, --area and --zipcode describe a house of the \
                     Houses dataset, but this model reads {}; give --input FILE (CSV or \
                     Parquet with the model's columns)",
                    c.column()
                )));
            }
            Ok((house, false))
        }
        _ => Err(Error::Usage(format!(
            "give --input FILE (CSV or Parquet with the model's columns: {}), or one house with \
             --bedrooms, --bathrooms, --area and --zipcode",
            model
                .encoder
                .columns
                .iter()
                .map(|c| c.column())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// For a model of the Houses dataset, a category it has never seen (a zip code) is an error
/// listing the known ones, unless `--unknown-zip zero` prices it with no level; a model of a
/// user's table prices it by its documented fallback, with a warning.
fn refuse_unseen(
    model: &TableModel,
    warnings: &appraise::features::encoder::Warnings,
    unknown: super::UnknownZipArg,
) -> Result<()> {
    let strict = matches!(model.info.source, Source::Houses { .. })
        && unknown == super::UnknownZipArg::Error;
    match warnings.unseen.first() {
        Some(u) if strict => Err(Error::Usage(format!(
            "{} {} is unknown to this model ({} house(s)); it knows {}; pass --unknown-zip zero \
             to price such houses with no {} (less accurate)",
            u.column,
            u.example,
            u.rows,
            u.known.join(", "),
            u.column
        ))),
        _ => Ok(()),
    }
}

/// A cell's number as JSON: a whole number without a needless `.0` (a zip code, a count).
fn json_number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::from(v)
    }
}

/// `appraise evaluate` with a table model: the test rows of the rows it was trained on
/// (the same split, so the training scores come back exactly), every row with `--all`, or
/// every row of another table (`--data`) or Houses dataset (`--dataset`).
pub fn evaluate(model: &TableModel, args: &super::EvaluateArgs) -> Result<()> {
    let info = &model.info;
    let (source, path) = match (&args.data, &args.dataset, &info.source) {
        (Some(path), ..) => (Source::Table, path.clone()),
        (None, Some(dir), Source::Houses { .. }) => (info.source.clone(), dir.clone()),
        (None, Some(dir), Source::Table) => (
            Source::Houses {
                min_zip_count: appraise::data::dataset::MIN_ZIP_COUNT,
            },
            dir.clone(),
        ),
        (None, None, Source::Houses { .. }) if !Path::new(&info.data).exists() => {
            // Moved since training: the dataset where `train` would find it, never downloaded.
            let dir = appraise::data::dataset::find_dataset_dir(None, &args.cache.root())?
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "the Houses dataset is not on this machine; {}",
                        super::GET_DATASET
                    ))
                })?;
            (info.source.clone(), dir)
        }
        (None, None, _) => (info.source.clone(), PathBuf::from(&info.data)),
    };
    let frame = source.read(&path)?;
    let same = fingerprint(&frame.path)? == info.fingerprint;
    let (rows, prices, _) = tabular::usable_rows(&frame, &model.schema, true)?;
    let (picked, scope): (Vec<usize>, String) = if args.all || !same {
        if !same && !args.all {
            eprintln!(
                "warning: this table differs from the one the model was trained on, so its \
                 \"test houses\" are not the ones held out in training; scoring all of its rows"
            );
        }
        (
            (0..rows.len()).collect(),
            format!("all {} houses of {}", rows.len(), frame.path.display()),
        )
    } else {
        let split = tabular::split(rows.len(), &info.config)?;
        let n = split.test.len();
        (
            split.test,
            format!(
                "the {n} test houses of split seed {} (test size {}) of {}",
                info.config.split_seed,
                info.config.test_size,
                frame.path.display()
            ),
        )
    };
    let table_rows: Vec<usize> = picked.iter().map(|&i| rows[i]).collect();
    let actual: Vec<f64> = picked.iter().map(|&i| prices[i]).collect();
    let (predicted, warnings) = model.predict(&frame, &table_rows)?;
    for line in &warnings.lines {
        eprintln!("warning: {line}");
    }
    let m = Metrics::compute(&actual, &predicted);
    let ratio = appraise::evaluate::ratio::RatioStudy::compute(&actual, &predicted);
    let coverage = model
        .calibration
        .as_ref()
        .map(|c| appraise::fit::interval::Coverage::all_reported(c, &actual, &predicted))
        .unwrap_or_default();
    let comparables = match args.comparables {
        true => Some(comparables_scores(
            model,
            &frame,
            &table_rows,
            &actual,
            &predicted,
        )?),
        false => None,
    };
    if args.json {
        /// The scores, as fields and as one object, then the ranges' coverage.
        #[derive(serde::Serialize)]
        struct Report<'a> {
            scope: &'a str,
            same_dataset: bool,
            #[serde(flatten)]
            flat: &'a Metrics,
            metrics: &'a Metrics,
            ratio_study: &'a appraise::evaluate::ratio::RatioStudy,
            coverage: &'a [appraise::fit::interval::Coverage],
            #[serde(skip_serializing_if = "Option::is_none")]
            comparables: Option<&'a Metrics>,
        }
        let report = Report {
            scope: &scope,
            same_dataset: same,
            flat: &m,
            metrics: &m,
            ratio_study: &ratio,
            coverage: &coverage,
            comparables: comparables.as_ref(),
        };
        print!("{}", pipeline::to_json(&report));
        return Ok(());
    }
    super::print_scores(&scope, &m, &ratio, &coverage, model.calibration.is_some());
    if let Some(c) = &comparables {
        println!(
            "comparables' median adjusted price: MAPE {:.2}%, median APE {:.2}% (the model's: {:.2}%, {:.2}%)",
            c.mape, c.median_ape, m.mape, m.median_ape
        );
    }
    Ok(())
}

/// The scores of the comparables' median adjusted prices of `rows` (sold for `actual`,
/// priced `predicted`); an error when the model keeps no sales.
fn comparables_scores(
    model: &TableModel,
    frame: &Frame,
    rows: &[usize],
    actual: &[f64],
    predicted: &[f64],
) -> Result<Metrics> {
    let explained = appraise::explain::explain(
        model,
        frame,
        rows,
        predicted,
        appraise::explain::DEFAULT_COMPS,
    )?;
    let medians: Option<Vec<f64>> = explained.iter().map(|e| e.comparables_median).collect();
    let medians = medians.ok_or_else(|| {
        Error::Usage(
            "this model keeps no training sales, so it has no comparables to score; retrain \
             it with this appraise"
                .into(),
        )
    })?;
    Ok(Metrics::compute(actual, &medians))
}

/// The records of a CSV file that holds no quote and no lone carriage return: its non-empty
/// lines without their line ends, exactly what the csv reader reads from it. `None` for any
/// other file.
fn plain_records(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    if !appraise::data::table::line_oriented(bytes) {
        return None;
    }
    let mut records = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
        let line = &bytes[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.is_empty() {
            records.push(line);
        }
        start = end + 1;
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::plain_records;

    #[test]
    fn plain_records_are_the_non_empty_lines_or_none() {
        let got = plain_records(b"a,b\r\n1,2\n\n3,4").unwrap();
        assert_eq!(got, [&b"a,b"[..], b"1,2", b"3,4"]);
        assert!(plain_records(b"a,b\n\"x\",2\n").is_none());
        assert!(plain_records(b"a,b\r1,2\n").is_none());
        assert_eq!(plain_records(b"a\n").unwrap(), [&b"a"[..]]);
    }
}
