//! The `appraise` command line: argument definitions and the commands behind them.
//! `main.rs` parses the arguments and calls [`run`]. The commands on a user's own table
//! (`--data`) are in [`table`].

mod interrupt;
mod serve;
mod table;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use appraise::data::dataset;
use appraise::data::fetch;
use appraise::error::{Error, Result};
use appraise::evaluate::cv;
use appraise::fit::pipeline::{Observer, Stage};
use appraise::fit::train::{EpochRecord, TrainConfig};
use appraise::io::artifact;
use appraise::models::ModelSpec;
use appraise::runtime::context::Context;
use appraise::runtime::device::Compute;

/// Predict house prices with neural networks (the Keras regression tutorial, in Rust).
#[derive(Debug, Parser)]
#[command(name = "appraise", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model on the Houses dataset and score it on the held-out test houses.
    Train(TrainArgs),
    /// Price new houses with a saved model.
    Predict(PredictArgs),
    /// Cross-validate: the model and two baselines on repeated splits or k folds.
    Cv(CvArgs),
    /// Score a saved model on a dataset (by default the test houses it was trained without).
    Evaluate(EvaluateArgs),
    /// Show a saved model's layers, preprocessing and training metadata.
    Summary(SummaryArgs),
    /// Write a synthetic dataset in the Houses layout (price rule in the README).
    Synth(SynthArgs),
    /// Decode the kept houses' photos into 64x64 montages and fill the photo cache.
    Ingest(IngestArgs),
    /// Serve saved models over HTTP: a web page, a JSON API and the Open Inference Protocol (v2).
    Serve(serve::ServeArgs),
    /// Download the Houses dataset into the cache folder (train, cv and ingest do it on first
    /// use) and print where it is.
    Fetch(FetchArgs),
}

/// Arguments of `appraise fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Cache folder to download into [default: $XDG_CACHE_HOME/appraise or ~/.cache/appraise]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Download again, even when the dataset is in the cache already (the old copy is replaced
    /// only once the new one is checked).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `appraise ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Dataset folder holding HousesInfo.txt and the photos [default: $APPRAISE_DATASET, else "Houses-dataset/Houses Dataset", else the copy in the cache folder, downloaded if missing]
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,

    /// Never download the dataset: without it on this machine, stop with an error.
    #[arg(long)]
    pub offline: bool,

    /// Only houses whose zip code occurs at least this many times (as `train` keeps them).
    #[arg(long, default_value_t = dataset::MIN_ZIP_COUNT)]
    pub min_zip_count: usize,

    /// The arithmetic of the photo network's matrix products (as `train` will use).
    #[arg(long, value_enum, default_value_t = PhotoPrecisionArg::F32)]
    pub photo_precision: PhotoPrecisionArg,

    /// Photo cache settings.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Where decoded photo montages are cached.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Decode every photo, neither reading nor writing the photo cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Folder of the photo cache and of the downloaded dataset [default: $XDG_CACHE_HOME/appraise or ~/.cache/appraise]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache folder, even with --no-cache (which concerns the photos): the downloaded
    /// dataset lives there.
    pub fn root(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(appraise::photos::montage::default_cache_dir)
    }

    /// The cache folder to use, or `None` with --no-cache.
    pub fn dir(&self) -> Option<PathBuf> {
        (!self.no_cache).then(|| self.root())
    }
}

/// Arguments of `appraise synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of houses.
    #[arg(long)]
    pub houses: usize,

    /// Also write four small JPEG photos per house.
    #[arg(long)]
    pub photos: bool,

    /// Write a table of 32 columns (20 numbers, 10 categories, some cells missing) to the CSV
    /// file --out instead of a dataset folder (price rule in the README).
    #[arg(long, conflicts_with = "photos")]
    pub table: bool,

    /// Folder to write (created if missing), or the CSV file with --table.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// What to do with a zip code the model has never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownZipArg {
    /// Refuse, listing the zip codes the model knows.
    Error,
    /// Price the house with an all-zero zip encoding, with a warning.
    Zero,
}

/// Output format of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Arguments of `appraise predict`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct PredictArgs {
    /// The model file `appraise train` wrote (DIR/model.appraise).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// Houses to price: a CSV with header bedrooms,bathrooms,area,zipcode (optional house or
    /// id column, passed through), or a HousesInfo.txt-style file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bedrooms", "bathrooms", "area", "zipcode"])]
    pub input: Option<PathBuf>,

    /// One house: number of bedrooms.
    #[arg(long, requires_all = ["bathrooms", "area", "zipcode"])]
    pub bedrooms: Option<f64>,
    /// One house: number of bathrooms.
    #[arg(long, requires_all = ["bedrooms", "area", "zipcode"])]
    pub bathrooms: Option<f64>,
    /// One house: living area in square feet.
    #[arg(long, requires_all = ["bedrooms", "bathrooms", "zipcode"])]
    pub area: Option<f64>,
    /// One house: zip code.
    #[arg(long, requires_all = ["bedrooms", "bathrooms", "area"])]
    pub zipcode: Option<u32>,

    /// Write the predictions to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    pub format: FormatArg,

    /// What to do with a zip code the model has never seen.
    #[arg(long, value_enum, default_value_t = UnknownZipArg::Error)]
    pub unknown_zip: UnknownZipArg,

    /// Folder of the houses' photos, `{id}_bathroom.jpg`, `{id}_bedroom.jpg`, `{id}_frontal.jpg`
    /// and `{id}_kitchen.jpg` (needed by cnn and mixed models). The id is the input's house or
    /// id column, or --house.
    #[arg(long, value_name = "DIR")]
    pub photos: Option<PathBuf>,

    /// Price ranges: a level strictly between 0 and 1 adds the columns low_<level>,
    /// high_<level> and outside_training (which names what lies outside the training data),
    /// for every model that carries a calibration; `none` leaves them out [default: 0.8]
    #[arg(long, value_name = "LEVEL")]
    pub interval: Option<String>,

    /// One house: the id its photos are named by (with --photos).
    #[arg(long, requires = "photos", conflicts_with = "input")]
    pub house: Option<String>,

    /// Explain each price: each input column's share (a factor and dollars against a
    /// reference price), the comparable training sales (their median adjusted price; the
    /// sales themselves with --format json), the forecast standard deviation and a 0-100
    /// confidence score.
    #[arg(long)]
    pub explain: bool,

    /// Comparable sales per house with --explain.
    #[arg(long, value_name = "K", default_value_t = appraise::explain::DEFAULT_COMPS, requires = "explain")]
    pub comps: usize,
}

/// Arguments of `appraise evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model file `appraise train` wrote (DIR/model.appraise).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// Dataset folder holding HousesInfo.txt [default: $APPRAISE_DATASET, else "Houses-dataset/Houses Dataset", else the copy in the cache folder]
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,

    /// For a model of a user's table: the table to score [default: the one it was trained on,
    /// its test rows]
    #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
    pub data: Option<PathBuf>,

    /// Score every house that passes the model's zip filter, not only the test houses.
    #[arg(long)]
    pub all: bool,

    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,

    /// What to do with a zip code the model has never seen.
    #[arg(long, value_enum, default_value_t = UnknownZipArg::Error)]
    pub unknown_zip: UnknownZipArg,

    /// Also score the comparable sales' opinion: the median of each house's comparables'
    /// adjusted prices (predict --explain), as a second price beside the model's.
    #[arg(long)]
    pub comparables: bool,

    /// Photo cache settings (photo models).
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Arguments of `appraise summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The model file `appraise train` wrote (DIR/model.appraise).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
}

/// Which network to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// Part 1: house attributes only (multi-layer perceptron).
    Mlp,
    /// Part 2: house photos only (convolutional network over a 64x64 montage).
    Cnn,
    /// Part 3: attributes and photos (both networks, joined).
    Mixed,
    /// Photos only, through the pretrained network (EfficientNet-Lite0, frozen): a ridge
    /// price head on every room's features and small networks over it, chosen by the
    /// recipe's inner cross-validation.
    PhotosPretrained,
    /// Attributes and photos through the pretrained network: the best recipe with its photo
    /// inputs always on (`--recipe best --recipe-photos on`).
    MixedPretrained,
}

impl ModelKind {
    /// The tutorial's network of this kind.
    pub fn spec(self) -> ModelSpec {
        match self {
            ModelKind::Mlp => ModelSpec::Mlp(Default::default()),
            ModelKind::Cnn => ModelSpec::Cnn(Default::default()),
            ModelKind::Mixed => ModelSpec::Mixed(Default::default()),
            // Trained by the recipe, which makes its own ensemble.
            ModelKind::PhotosPretrained | ModelKind::MixedPretrained => {
                ModelSpec::Mlp(Default::default())
            }
        }
    }

    /// Whether this kind is trained by the recipe on the pretrained photo features.
    pub fn pretrained(self) -> bool {
        matches!(
            self,
            ModelKind::PhotosPretrained | ModelKind::MixedPretrained
        )
    }

    /// The name of its run folders.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::Mixed => "mixed",
            ModelKind::PhotosPretrained => "photos-pretrained",
            ModelKind::MixedPretrained => "mixed-pretrained",
        }
    }
}

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipeArg {
    /// The tutorial's network and training, exactly.
    Tutorial,
    /// The most accurate recipe (README, "Beyond the tutorial"); ignores --model, --epochs,
    /// --batch-size and --learning-rate, which it chooses itself.
    Best,
}

/// Whether the best recipe may use the photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipePhotosArg {
    /// Use the photo inputs from a network pretrained on ImageNet (the frontal photo's
    /// manufactured-home score, a ridge price from every room's features) only where the
    /// inner cross-validation finds they help.
    Auto,
    /// Attributes only; photos are not read.
    Off,
    /// Always use photo inputs (the inner cross-validation picks which).
    On,
}

/// The arithmetic of the pretrained photo network's matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhotoPrecisionArg {
    /// Float32: the reference.
    F32,
    /// Bfloat16 products, float32 sums (AVX-512 BF16 where the CPU has it; see
    /// BENCHMARKS.md for its speed and accuracy).
    Bf16,
    /// 8-bit integer products, exact integer sums (AVX-512 VNNI where the CPU has it).
    Int8,
}

impl From<PhotoPrecisionArg> for appraise::photos::extractor::Precision {
    fn from(arg: PhotoPrecisionArg) -> Self {
        match arg {
            PhotoPrecisionArg::F32 => Self::F32,
            PhotoPrecisionArg::Bf16 => Self::Bf16,
            PhotoPrecisionArg::Int8 => Self::Int8,
        }
    }
}

/// The settings shared by `train` and `cv`: data, split, network and training.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Dataset folder holding HousesInfo.txt [default: $APPRAISE_DATASET, else "Houses-dataset/Houses Dataset", else the copy in the cache folder, downloaded if missing]
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,

    /// Never download the dataset: without it on this machine, stop with an error.
    #[arg(long)]
    pub offline: bool,

    /// Which network to train.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    pub model: ModelKind,

    /// The tutorial, or the best recipe appraise knows.
    #[arg(long, value_enum, default_value_t = RecipeArg::Tutorial)]
    pub recipe: RecipeArg,

    /// With --recipe best: whether it may use the photos.
    #[arg(long, value_enum, default_value_t = RecipePhotosArg::Auto)]
    pub recipe_photos: RecipePhotosArg,

    /// The arithmetic of the photo network's matrix products (recorded in the model file,
    /// which prices new photos the same way).
    #[arg(long, value_enum, default_value_t = PhotoPrecisionArg::F32)]
    pub photo_precision: PhotoPrecisionArg,

    /// With --recipe best: a JSON file overriding the recipe's settings (the "recipe" object of
    /// a run's config.json; fields left out keep their defaults).
    #[arg(long, value_name = "FILE", requires = "recipe")]
    pub recipe_config: Option<PathBuf>,

    /// Drop houses whose zip code occurs fewer times than this.
    #[arg(long, default_value_t = dataset::MIN_ZIP_COUNT)]
    pub min_zip_count: usize,

    /// Seed of the train/test split (scikit-learn's random_state).
    #[arg(long, default_value_t = 42)]
    pub split_seed: u32,

    /// Fraction of houses held out for testing, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.25)]
    pub test_size: f64,

    /// Passes over the training houses.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,

    /// Houses per optimizer step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,

    /// Adam's initial learning rate (decayed as Keras's `decay=1e-3/200` does).
    #[arg(long, default_value_t = TrainConfig::default().optimizer.learning_rate)]
    pub learning_rate: f64,

    /// Seed of weight initialization, shuffling and dropout: the same seed gives the same numbers.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,

    /// Folds of the pass that calibrates a tutorial network's price ranges (one more network
    /// per fold; 0: no ranges). Default: 5 for the attribute network, none for the photo
    /// networks, whose training takes minutes each. The recipe calibrates on its own folds.
    #[arg(long, value_name = "K")]
    pub range_folds: Option<usize>,

    /// Where the tutorial's networks train: cpu (always there), wgpu or cuda (in a build with
    /// `--features wgpu` or `--features cuda`). The recipe's small networks train on the CPU.
    #[arg(long, value_name = "DEVICE", default_value_t = Compute::Cpu)]
    pub device: Compute,

    /// Photo cache settings (cnn and mixed models).
    #[command(flatten)]
    pub cache: CacheArgs,

    /// A user's own table instead of the Houses dataset.
    #[command(flatten)]
    pub table: table::TableArgs,
}

impl RunArgs {
    /// The context of a run these flags ask for: the device (`--device`), the photo cache
    /// (`--cache-dir`, `--no-cache`) and the process's Ctrl-C stop flag, reporting to
    /// `observer`.
    pub fn context<'a>(&self, observer: &'a mut dyn Observer) -> Context<'a> {
        Context {
            compute: self.device,
            cache_dir: self.cache.dir(),
            cancel: interrupt::cancel(),
            observer,
        }
    }

    /// Rejects flag combinations that make no sense.
    pub fn check(&self) -> Result<()> {
        if self.recipe == RecipeArg::Best
            && self.model != ModelKind::Mlp
            && !self.model.pretrained()
        {
            return Err(Error::Usage(
                "--recipe best chooses its own networks; leave out --model (use --recipe-photos to control photos)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Arguments of `appraise train`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true, args_override_self = true)]
pub struct TrainArgs {
    /// Data, split, network and training settings.
    #[command(flatten)]
    pub run: RunArgs,

    /// Folder for the run's outputs [default: a new runs/<model>-N]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print the Keras-style line of every epoch (the default when output is not a terminal).
    #[arg(long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print only the final result.
    #[arg(long)]
    pub quiet: bool,
}

/// Splits `cv` trains at the same time (`--jobs`, default the CPU cores).
fn cv_jobs(args: &CvArgs) -> Result<usize> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    Ok(jobs)
}

/// Arguments of `appraise cv`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true, args_override_self = true)]
pub struct CvArgs {
    /// Data, network and training settings (--split-seed is replaced by the splits below).
    #[command(flatten)]
    pub run: RunArgs,

    /// Repeated random splits with split seeds 0..N-1 [default: 10 when no other scheme is given]
    #[arg(long, conflicts_with_all = ["split_seeds", "folds"])]
    pub repeats: Option<u32>,

    /// Repeated random splits with these split seeds (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "folds")]
    pub split_seeds: Option<Vec<u32>>,

    /// K-fold cross-validation (scikit-learn's KFold with shuffling, seeded by --split-seed).
    #[arg(long)]
    pub folds: Option<usize>,

    /// Splits trained at the same time [default: the number of CPU cores]
    #[arg(long)]
    pub jobs: Option<usize>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Formats dollars as the tutorial's `locale.currency(x, grouping=True)`: `$533,388.27`.
pub fn dollars(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round() as u128;
    let (whole, frac) = (cents / 100, cents % 100);
    let grouped = appraise::models::summary::thousands(whole);
    let sign = if amount < 0.0 { "-" } else { "" };
    format!("{sign}${grouped}.{frac:02}")
}

/// `train`'s closing lines: the test scores, then how the price ranges held (`rows` names
/// what was priced: houses, rows).
fn print_test_scores(
    m: &appraise::evaluate::metrics::Metrics,
    coverage: &[appraise::fit::interval::Coverage],
    rows: &str,
) {
    println!(
        "[INFO] median: {:.2}%, worst: {:.2}%, MAE: {}, RMSE: {}, R^2: {:.4}",
        m.median_ape,
        m.max_ape,
        dollars(m.mae),
        dollars(m.rmse),
        m.r2
    );
    for c in coverage {
        println!(
            "[INFO] {:.0}% price range: covers {:.1}% of the test {rows}, median width {:.1}% of the price",
            c.level * 100.0,
            c.covered,
            c.median_width
        );
    }
}

/// One warning when some predicted rows lie outside the training rows: their ranges assume
/// houses like the training ones.
fn warn_outside(outside: &[Option<String>], rows: &str) {
    let flagged = outside.iter().flatten().count();
    if let Some(example) = outside.iter().flatten().next() {
        eprintln!(
            "warning: {flagged} {rows}(s) lie outside the training data (e.g. {example}); their price ranges are less sure, see the {} column",
            appraise::io::output::OUTSIDE_COLUMN
        );
    }
}

/// `evaluate`'s report of scores on `scope`, and of how the price ranges held.
fn print_scores(
    scope: &str,
    m: &appraise::evaluate::metrics::Metrics,
    ratio: &appraise::evaluate::ratio::RatioStudy,
    coverage: &[appraise::fit::interval::Coverage],
    calibrated: bool,
) {
    println!("Scored {scope}");
    println!("MAPE:       {:.2}% (std {:.2}%)", m.mape, m.ape_std);
    println!("median APE: {:.2}%", m.median_ape);
    println!("worst APE:  {:.2}%", m.max_ape);
    println!("MAE:        {}", dollars(m.mae));
    println!("RMSE:       {}", dollars(m.rmse));
    println!("R^2:        {:.4}", m.r2);
    println!("ratios:     {}", ratio.line());
    for c in coverage {
        println!(
            "{:.0}% range:  covers {:.1}%, median width {:.1}% of the price",
            c.level * 100.0,
            c.covered,
            c.median_width
        );
    }
    if !calibrated {
        println!("ranges:     none (this model carries no calibration)");
    }
}

/// `cv`'s pooled price-range lines: per split its test count and coverage at each level.
fn print_pooled_coverage(splits: &[(usize, &[appraise::fit::interval::Coverage])], rows: &str) {
    if splits.is_empty() || splits.iter().any(|(_, c)| c.is_empty()) {
        return;
    }
    println!("\nPrice ranges on the test {rows}, pooled over the splits:");
    let total: f64 = splits.iter().map(|(n, _)| *n as f64).sum();
    for k in 0..splits[0].1.len() {
        let covered = splits
            .iter()
            .map(|(n, c)| c[k].covered * *n as f64)
            .sum::<f64>()
            / total;
        let width =
            splits.iter().map(|(_, c)| c[k].median_width).sum::<f64>() / splits.len() as f64;
        println!(
            "{:.0}% range: covers {covered:.1}% of {total:.0} test {rows}; median width {width:.1}% of the price (mean over splits)",
            splits[0].1[k].level * 100.0
        );
    }
}

/// How much `train` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    /// Only the final result.
    Quiet,
    /// Stage lines and a progress bar (a terminal).
    Bar,
    /// Stage lines and one line per epoch (the tutorial's flow; the default in logs).
    Lines,
}

/// Prints the tutorial's progress lines, or a progress bar.
struct Printer {
    verbosity: Verbosity,
    bar: Option<indicatif::ProgressBar>,
}

impl Printer {
    fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            bar: None,
        }
    }
}

impl Observer for Printer {
    fn stage(&mut self, stage: Stage) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.verbosity != Verbosity::Quiet {
            println!("[INFO] {}", stage.message());
        }
    }

    fn note(&mut self, line: &str) {
        if self.verbosity != Verbosity::Quiet {
            if let Some(bar) = &self.bar {
                bar.println(format!("[INFO] {line}"));
            } else {
                println!("[INFO] {line}");
            }
        }
    }

    fn warning(&mut self, line: &str) {
        // Warnings go to standard error whatever the verbosity.
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("warning: {line}")),
            None => eprintln!("warning: {line}"),
        }
    }

    fn model_summary(&mut self, summary: &str) {
        if self.verbosity != Verbosity::Quiet {
            print!("{summary}");
        }
    }

    fn photos(&mut self, total: usize) -> Box<dyn Fn(usize) + Sync> {
        if self.verbosity != Verbosity::Bar {
            return Box::new(|_| {});
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("photos {pos}/{len} [{bar:30}] ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        self.bar = Some(bar.clone());
        Box::new(move |done| bar.set_position(done as u64))
    }

    fn epoch(&mut self, r: &EpochRecord, epochs: usize) {
        match self.verbosity {
            Verbosity::Quiet => {}
            Verbosity::Lines => println!(
                "Epoch {}/{} - loss: {:.4} - val_loss: {:.4}",
                r.epoch, epochs, r.loss, r.val_loss
            ),
            Verbosity::Bar => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(epochs as u64);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "epoch {pos}/{len} [{bar:30}] ETA {eta} {msg}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    bar
                });
                bar.set_position(r.epoch as u64);
                bar.set_message(format!("loss: {:.4} - val_loss: {:.4}", r.loss, r.val_loss));
            }
        }
    }
}

fn train(args: &TrainArgs) -> Result<()> {
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose || !std::io::stdout().is_terminal() {
        Verbosity::Lines
    } else {
        Verbosity::Bar
    };
    table::train(args, verbosity, &mut Printer::new(verbosity))
}

fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::reading(path, e, "not found"))?;
    String::from_utf8(bytes).map_err(|_| Error::Input {
        path: path.to_path_buf(),
        message: "is not UTF-8 text".into(),
    })
}

fn predict(args: &PredictArgs) -> Result<()> {
    table::predict(args, &artifact::load(&args.model)?)
}

fn evaluate(args: &EvaluateArgs) -> Result<()> {
    table::evaluate(&artifact::load(&args.model)?, args)
}

fn cv(args: &CvArgs) -> Result<()> {
    let scheme = match (&args.split_seeds, args.folds, args.repeats) {
        (Some(seeds), _, _) => cv::Scheme::Repeats(seeds.clone()),
        (None, Some(folds), _) => cv::Scheme::KFold {
            folds,
            seed: args.run.split_seed,
        },
        (None, None, repeats) => cv::Scheme::Repeats((0..repeats.unwrap_or(10)).collect()),
    };
    if matches!(&scheme, cv::Scheme::Repeats(seeds) if seeds.is_empty()) {
        return Err(Error::Usage("--repeats must be at least 1".into()));
    }
    table::cv(args, &scheme)
}

/// Prints a cross-validation report: each split's MAPE, then the mean and standard deviation
/// of every score, the verdict on the baselines, and how the ranges held over the test
/// `rows` ("houses", "rows") of every split pooled.
fn print_cv(report: &cv::Report, rows: &str) {
    let methods: Vec<&str> = report.summaries.iter().map(|s| s.method.as_str()).collect();
    println!("Test MAPE per split:");
    let mut header = format!("{:<16}", "split");
    for name in &methods {
        header += &format!("{:>width$}", name, width = name.len().max(10) + 3);
    }
    println!("{header}");
    for r in &report.splits {
        let mut line = format!("{:<16}", r.label);
        for (name, m) in methods
            .iter()
            .zip(std::iter::once(&r.model).chain(&r.baselines))
        {
            line += &format!("{:>width$.2}%", m.mape, width = name.len().max(10) + 2);
        }
        println!("{line}");
    }
    println!(
        "\nMean ± standard deviation over {} splits:",
        report.splits.len()
    );
    let width = methods.iter().map(|m| m.len()).max().unwrap_or(6).max(26) + 2;
    println!(
        "{:<width$}{:>18}{:>18}{:>18}{:>22}{:>22}{:>16}",
        "method", "MAPE %", "std APE %", "median APE %", "MAE $", "RMSE $", "R^2"
    );
    for s in &report.summaries {
        let (m, d) = (&s.mean, &s.std);
        println!(
            "{:<width$}{:>18}{:>18}{:>18}{:>22}{:>22}{:>16}",
            s.method,
            format!("{:.2} ± {:.2}", m.mape, d.mape),
            format!("{:.2} ± {:.2}", m.ape_std, d.ape_std),
            format!("{:.2} ± {:.2}", m.median_ape, d.median_ape),
            format!("{:.0} ± {:.0}", m.mae, d.mae),
            format!("{:.0} ± {:.0}", m.rmse, d.rmse),
            format!("{:.3} ± {:.3}", m.r2, d.r2),
        );
    }
    println!("\n{}", report.verdict());
    // The ratio study's figures, mean over the splits.
    let n = report.splits.len().max(1) as f64;
    let mean = |f: &dyn Fn(&appraise::evaluate::ratio::RatioStudy) -> f64| {
        report.splits.iter().map(|r| f(&r.ratio_study)).sum::<f64>() / n
    };
    println!(
        "\nRatio study of the model (mean over the splits): PPE10 {:.1}%, PPE20 {:.1}%, COD {:.1}, PRD {:.3}, median ratio {:.3}",
        mean(&|r| r.ppe10),
        mean(&|r| r.ppe20),
        mean(&|r| r.cod),
        mean(&|r| r.prd),
        mean(&|r| r.median_ratio)
    );
    let pooled: Vec<(usize, &[appraise::fit::interval::Coverage])> = report
        .splits
        .iter()
        .map(|r| (r.model.count, r.coverage.as_slice()))
        .collect();
    print_pooled_coverage(&pooled, rows);
}

fn ingest(args: &IngestArgs) -> Result<()> {
    use appraise::photos::{extractor::Featurizer, table_photos};
    let dir = houses_dir(args.dataset.as_deref(), &args.cache, args.offline)?;
    println!("[INFO] loading house attributes...");
    let houses = dataset::load_table(&dir, args.min_zip_count)?;
    let (frame, columns) = (&houses.frame, houses.schema.photo_columns());
    let rows: Vec<usize> = (0..frame.rows()).collect();
    let cache = args.cache.dir();
    let featurizer = Featurizer {
        precision: args.photo_precision.into(),
        ..Featurizer::default()
    };
    let missing =
        table_photos::photos_to_embed(frame, &columns, &rows, featurizer, cache.as_deref())?;
    println!("[INFO] embedding house images...");
    let bar = if std::io::stdout().is_terminal() {
        indicatif::ProgressBar::new(missing as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let start = std::time::Instant::now();
    table_photos::embed_rows(
        frame,
        &columns,
        &rows,
        featurizer,
        cache.as_deref(),
        &|done, _| bar.set_position(done as u64),
        &interrupt::cancel(),
    )?;
    bar.finish_and_clear();
    let photos = rows.len() * columns.len();
    let how = match missing {
        0 => "read from the cache".to_string(),
        n if n == photos => "embedded".to_string(),
        n => format!("{n} embedded, the rest read from the cache"),
    };
    println!(
        "[INFO] {} houses, {photos} photos: {how} in {:.3} s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What to do when the Houses dataset is not on this machine.
pub(crate) const GET_DATASET: &str = "download it with `appraise fetch` (with internet), or give its folder with \
     --dataset DIR or APPRAISE_DATASET (git clone https://github.com/emanhamed/Houses-dataset)";

/// The Houses dataset's folder: the one named by `flag` or found on this machine (see
/// [`dataset::find_dataset_dir`]), else downloaded into the cache folder unless `offline`.
fn houses_dir(flag: Option<&std::path::Path>, cache: &CacheArgs, offline: bool) -> Result<PathBuf> {
    let cache_dir = cache.root();
    if let Some(dir) = dataset::find_dataset_dir(flag, &cache_dir)? {
        return Ok(dir);
    }
    if offline {
        return Err(Error::Usage(format!(
            "the Houses dataset is not on this machine and --offline forbids downloading it; {GET_DATASET}"
        )));
    }
    let source = fetch::Source::from_env()?;
    fetch::fetch(
        &cache_dir,
        &source,
        false,
        &interrupt::cancel(),
        &mut Fetching,
    )
}

/// `appraise fetch`: downloads the dataset (unless cached) and prints its folder.
fn fetch_command(args: &FetchArgs) -> Result<()> {
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(appraise::photos::montage::default_cache_dir);
    let source = fetch::Source::from_env()?;
    match fetch::cached(&cache_dir) {
        Some(_) if !args.force => {
            eprintln!(
                "[INFO] the Houses dataset is in the cache already (--force downloads it again)"
            )
        }
        _ => {
            fetch::fetch(
                &cache_dir,
                &source,
                args.force,
                &interrupt::cancel(),
                &mut Fetching,
            )?;
        }
    }
    println!("{}", fetch::dataset_dir(&cache_dir).display());
    Ok(())
}

/// Prints a download's notes and, on a terminal, its progress bar, on standard error (standard
/// output stays the command's own).
struct Fetching;

impl Observer for Fetching {
    fn note(&mut self, line: &str) {
        eprintln!("[INFO] {line}");
    }

    fn download(&mut self, total: Option<u64>) -> Box<dyn Fn(u64)> {
        if !std::io::stderr().is_terminal() {
            return Box::new(|_| {});
        }
        let (bar, template) = match total {
            Some(total) => (
                indicatif::ProgressBar::new(total),
                "download [{bar:30}] {bytes}/{total_bytes} ETA {eta}",
            ),
            // GitHub makes its archives as it sends them, often without a size.
            None => {
                let spinner = indicatif::ProgressBar::new_spinner();
                spinner.enable_steady_tick(std::time::Duration::from_millis(120));
                (spinner, "download {spinner} {bytes} {binary_bytes_per_sec}")
            }
        };
        let bar = bar
            .with_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            )
            .with_finish(indicatif::ProgressFinish::AndClear);
        Box::new(move |received| bar.set_position(received))
    }
}

fn summary(args: &SummaryArgs) -> Result<()> {
    print!(
        "{}",
        flags(&artifact::summary(&artifact::load(&args.model)?))
    );
    Ok(())
}

/// Runs a parsed command line; returns the process exit code
/// (0 success, 1 failure while running, 2 bad usage or bad input).
pub fn run(cli: Cli) -> i32 {
    interrupt::install();
    let outcome = match &cli.command {
        Command::Train(args) => train(args),
        Command::Predict(args) => predict(args),
        Command::Cv(args) => cv(args),
        Command::Evaluate(args) => evaluate(args),
        Command::Summary(args) => summary(args),
        Command::Ingest(args) => ingest(args),
        Command::Serve(args) => serve::serve(args),
        Command::Fetch(args) => fetch_command(args),
        Command::Synth(args) if args.table => {
            appraise::data::synth::write_table(args.houses, args.seed, &args.out).map(|()| {
                eprintln!(
                    "[INFO] wrote a table of {} houses to {}",
                    args.houses,
                    args.out.display()
                )
            })
        }
        Command::Synth(args) => appraise::data::synth::write(
            &appraise::data::synth::SynthConfig {
                houses: args.houses,
                photos: args.photos,
                seed: args.seed,
            },
            &args.out,
            &interrupt::cancel(),
        )
        .map(|()| {
            eprintln!(
                "[INFO] wrote {} houses to {}",
                args.houses,
                args.out.display()
            )
        }),
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            e.exit_code()
        }
    }
}

/// An error as the user reads it, its settings named by their flags ([`flags`]).
fn message(e: &Error) -> String {
    flags(&e.to_string())
}

/// A library text with each setting it names in backticks (`min_zip_count`,
/// `recipe.photos`) written as the flag that sets it (--min-zip-count, --recipe-photos).
/// Backticked text that is not a setting's name (a command) is left as it is.
pub fn flags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        let name = &rest[start + 1..start + 1 + len];
        out.push_str(&rest[..start]);
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
        {
            out.push_str("--");
            out.push_str(&name.replace(['_', '.'], "-"));
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_in_backticks_read_as_flags() {
        assert_eq!(
            flags("`min_zip_count` 5 leaves none; see `recipe.photos` and `appraise train`"),
            "--min-zip-count 5 leaves none; see --recipe-photos and `appraise train`"
        );
        assert_eq!(flags("a ` lone tick"), "a ` lone tick");
    }

    #[test]
    fn dollars_like_locale_currency() {
        assert_eq!(dollars(533388.2734), "$533,388.27");
        assert_eq!(dollars(493403.08), "$493,403.08");
        assert_eq!(dollars(999.999), "$1,000.00");
        assert_eq!(dollars(12.5), "$12.50");
        assert_eq!(dollars(1234567.0), "$1,234,567.00");
    }

    #[test]
    fn flags_default_to_the_tutorial() {
        let cli = Cli::parse_from(["appraise", "train"]);
        let Command::Train(args) = cli.command else {
            panic!("parsed as train")
        };
        assert_eq!(
            table::config(&args.run).unwrap(),
            appraise::fit::tabular::TableConfig::default()
        );
    }
}
