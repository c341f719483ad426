//! Plots (PNG and SVG) and the self-contained `report.html` of a run.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::evaluate::metrics::Metrics;
use crate::fit::interval::{Calibration, Coverage};
use crate::fit::train::EpochRecord;
use crate::io::atomic;

/// The font every plot uses, embedded so plots look the same on every machine
/// (DejaVu Sans; licence in `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";
const SIZE: (u32, u32) = (800, 560);

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType font"));
    });
}

/// A rendered plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File stem (`learning_curves`, ...).
    pub name: &'static str,
    /// Title shown in the report.
    pub title: &'static str,
    /// The SVG document.
    pub svg: String,
    /// The PNG file.
    pub png: Vec<u8>,
}

type Drawn<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// What a run's learning curves show: the loss, and what the validation loss is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Curves {
    /// The y axis's title.
    pub loss: &'static str,
    /// The validation series's name.
    pub validation: &'static str,
}

impl Curves {
    /// A tutorial network's: Keras's MAPE loss, validated on the test houses.
    pub const TUTORIAL: Curves = Curves {
        loss: "loss: MAPE %",
        validation: "val_loss (test)",
    };
    /// The recipe's first network's: the absolute error of the standardized log price,
    /// validated on its held-out inner fold (which also stops it early).
    pub const RECIPE: Curves = Curves {
        loss: "loss: absolute error of the standardized log price",
        validation: "val_loss (held-out inner fold)",
    };
}

/// Decimals that tell the labels of an axis running up to `hi` apart.
fn decimals(hi: f64) -> usize {
    if hi >= 10.0 {
        0
    } else if hi >= 1.0 {
        1
    } else {
        2
    }
}

fn learning_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &[EpochRecord],
    curves: Curves,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let finite = |v: f64| v.is_finite() && v >= 0.0;
    // The first epochs' losses can be ten times the rest; scale the axis to the epochs after
    // them so the part that matters stays readable, and say so.
    let skip = if history.len() >= 20 {
        history.len() / 20
    } else {
        0
    };
    let top = |rs: &[EpochRecord]| {
        rs.iter()
            .flat_map(|r| [r.loss, r.val_loss])
            .filter(|&v| finite(v))
            .fold(0.0, f64::max)
    };
    let all_top = top(history);
    let hi = (top(&history[skip..]) * 1.15).max(1e-9);
    let caption = if all_top > hi {
        "Learning curves (axis cut; the first epochs start higher)"
    } else {
        "Learning curves"
    };
    let n = history.len().max(2) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT_NAME, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(1.0..n, 0.0..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(curves.loss)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.*}", decimals(hi)))
        .light_line_style(WHITE)
        .label_style((FONT_NAME, 14))
        .draw()?;
    let series = [
        ("loss (training)", BLUE, true),
        (curves.validation, RED, false),
    ];
    for (label, color, training) in series {
        let points = history
            .iter()
            .map(|r| (r.epoch as f64, if training { r.loss } else { r.val_loss }))
            .filter(|&(_, v)| finite(v))
            .map(|(e, v)| (e, v.min(hi)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT_NAME, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

fn predicted_vs_actual<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    predictions: &[(f64, f64)],
    calibration: Option<&Calibration>,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let positive: Vec<(f64, f64)> = predictions
        .iter()
        .copied()
        .filter(|&(a, p)| a > 0.0 && p > 0.0 && p.is_finite())
        .collect();
    // Thousands of points say no more than a few thousand, and keep the SVG small.
    let stride = positive.len().div_ceil(MAX_POINTS).max(1);
    let shown: Vec<(f64, f64)> = positive.iter().copied().step_by(stride).collect();
    // Each house's 80% price range, as a vertical bar through its point.
    let bars: Vec<(f64, f64, f64)> = calibration.map_or_else(Vec::new, |c| {
        shown
            .iter()
            .map(|&(a, p)| {
                let (low, high) = c.range(p, PLOTTED_LEVEL);
                (a, low, high)
            })
            .collect()
    });
    let lo = positive
        .iter()
        .flat_map(|&(a, p)| [a, p])
        .chain(bars.iter().map(|b| b.1))
        .fold(f64::INFINITY, f64::min);
    let hi = positive
        .iter()
        .flat_map(|&(a, p)| [a, p])
        .chain(bars.iter().map(|b| b.2))
        .fold(0.0, f64::max);
    let (lo, hi) = if positive.is_empty() {
        (1e4, 1e7)
    } else {
        (lo / 1.3, hi * 1.3)
    };
    let mut chart = ChartBuilder::on(root)
        .caption("Predicted vs actual price (test houses)", (FONT_NAME, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("actual price ($, log scale)")
        .y_desc("predicted price ($, log scale)")
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| short_dollars(*v))
        .y_label_formatter(&|v| short_dollars(*v))
        .light_line_style(WHITE)
        .label_style((FONT_NAME, 14))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(lo, lo), (hi, hi)],
            BLACK.mix(0.6).stroke_width(1),
        ))?
        .label("y = x (perfect prediction)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
    if !bars.is_empty() {
        let covered = bars
            .iter()
            .zip(&shown)
            .filter(|((a, low, high), _)| low <= a && a <= high)
            .count();
        let bar_color = RGBColor(120, 160, 230).mix(0.6);
        chart
            .draw_series(bars.iter().map(|&(a, low, high)| {
                PathElement::new(vec![(a, low), (a, high)], bar_color.stroke_width(2))
            }))?
            .label(format!(
                "{:.0}% price range (holds {covered} of {} actual prices)",
                100.0 * PLOTTED_LEVEL,
                bars.len()
            ))
            .legend(move |(x, y)| {
                PathElement::new(
                    vec![(x + 10, y - 6), (x + 10, y + 6)],
                    bar_color.stroke_width(2),
                )
            });
    }
    chart
        .draw_series(
            shown
                .iter()
                .map(|&(a, p)| Circle::new((a, p), 4, BLUE.mix(0.7).filled())),
        )?
        .label(if stride > 1 {
            format!("test house (every {stride}th of {})", positive.len())
        } else {
            "test house".to_string()
        })
        .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
    let hidden = predictions.len() - positive.len();
    if hidden > 0 {
        root.draw(&Text::new(
            format!("{hidden} prediction(s) <= $0 not shown"),
            (100, 60),
            (FONT_NAME, 14).into_font().color(&RED),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT_NAME, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

fn short_dollars(v: f64) -> String {
    if v >= 1e6 {
        format!("${:.1}M", v / 1e6)
    } else {
        format!("${:.0}k", v / 1e3)
    }
}

/// The level of the price ranges drawn on the predicted-vs-actual plot.
const PLOTTED_LEVEL: f64 = 0.8;

/// Most points a scatter plot draws.
const MAX_POINTS: usize = 3000;

/// Width of one histogram bin, in percentage points.
const BIN: f64 = 10.0;

fn error_distribution<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    predictions: &[(f64, f64)],
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    // Signed percentage error, clamped into the outermost bins.
    let bins: Vec<i32> = predictions
        .iter()
        .map(|&(actual, predicted)| {
            let e = (predicted - actual) / actual * 100.0;
            (e.clamp(-100.0, 200.0 - 1e-9) / BIN).floor() as i32
        })
        .collect();
    let (first, last) = ((-100.0 / BIN) as i32, (200.0 / BIN) as i32 - 1);
    let mut counts = vec![0u32; (last - first + 1) as usize];
    for &b in &bins {
        counts[(b - first) as usize] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Distribution of percentage errors (test houses)",
            (FONT_NAME, 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((first..last + 1).into_segmented(), 0u32..top + 1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(
            "(predicted - actual) / actual, % (bins of 10; the last bin holds everything >= 190%)",
        )
        .y_desc("houses")
        .x_label_formatter(&|v| match v {
            SegmentValue::Exact(b) | SegmentValue::CenterOf(b) => {
                format!("{}", f64::from(*b) * BIN)
            }
            SegmentValue::Last => String::new(),
        })
        .label_style((FONT_NAME, 14))
        .draw()?;
    // One series per bin, in bin order: plotters' `Histogram` draws its bars in a hash map's
    // order, which made the SVG differ from run to run.
    for (bin, &count) in (first..=last).zip(&counts).filter(|(_, c)| **c > 0) {
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(BLUE.mix(0.7).filled())
                .margin(1)
                .data(std::iter::once((bin, count))),
        )?;
    }
    root.present()
}

/// Which plot to draw.
#[derive(Debug, Clone, Copy)]
enum Kind {
    LearningCurves,
    PredictedVsActual,
    ErrorDistribution,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::LearningCurves => "learning_curves",
            Kind::PredictedVsActual => "predicted_vs_actual",
            Kind::ErrorDistribution => "error_distribution",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::LearningCurves => "Learning curves",
            Kind::PredictedVsActual => "Predicted vs actual price",
            Kind::ErrorDistribution => "Distribution of percentage errors",
        }
    }

    fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, Shift>,
        history: &[EpochRecord],
        curves: Curves,
        predictions: &[(f64, f64)],
        calibration: Option<&Calibration>,
    ) -> Drawn<DB> {
        match self {
            Kind::LearningCurves => learning_curves(root, history, curves),
            Kind::PredictedVsActual => predicted_vs_actual(root, predictions, calibration),
            Kind::ErrorDistribution => error_distribution(root, predictions),
        }
    }
}

fn render(
    kind: Kind,
    history: &[EpochRecord],
    curves: Curves,
    predictions: &[(f64, f64)],
    calibration: Option<&Calibration>,
) -> Result<Plot> {
    ensure_font();
    let name = kind.name();
    let failed = |e: String| Error::Training(format!("could not draw the {name} plot: {e}"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        kind.draw(&root, history, curves, predictions, calibration)
            .map_err(|e| failed(e.to_string()))?;
    }
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        kind.draw(&root, history, curves, predictions, calibration)
            .map_err(|e| failed(e.to_string()))?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| failed(e.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| failed(e.to_string()))?;
    }
    Ok(Plot {
        name,
        title: kind.title(),
        svg,
        png,
    })
}

/// The three plots of a run; with a calibration, the predicted-vs-actual plot shows each
/// house's 80% price range.
pub fn plots(
    history: &[EpochRecord],
    curves: Curves,
    predictions: &[(f64, f64)],
    calibration: Option<&Calibration>,
) -> Result<Vec<Plot>> {
    [
        Kind::LearningCurves,
        Kind::PredictedVsActual,
        Kind::ErrorDistribution,
    ]
    .into_iter()
    .map(|kind| render(kind, history, curves, predictions, calibration))
    .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a run's report shows, for any dataset and method.
pub struct Run<'a> {
    /// Each test row's actual and predicted price.
    pub prices: Vec<(f64, f64)>,
    /// The learning curves' epochs (empty: no curves to draw).
    pub history: &'a [EpochRecord],
    /// What the curves show.
    pub curves: Curves,
    /// The test scores.
    pub metrics: &'a Metrics,
    /// The price ranges' out-of-fold errors, if the model gives ranges.
    pub calibration: Option<&'a Calibration>,
    /// Training rows.
    pub train_rows: usize,
    /// What the rows are ("houses", "rows").
    pub rows: &'static str,
    /// The run's settings, as JSON.
    pub config: String,
    /// Test rows whose prices it explains.
    pub examples: &'a [crate::explain::Example],
}

impl Run<'_> {
    /// How the price ranges held on the test rows.
    fn coverage(&self) -> Vec<Coverage> {
        let Some(c) = self.calibration else {
            return Vec::new();
        };
        let (actual, predicted): (Vec<f64>, Vec<f64>) = self.prices.iter().copied().unzip();
        Coverage::all_reported(c, &actual, &predicted)
    }
}

/// A self-contained HTML page: metrics, plots (inline SVG) and the run's configuration.
pub fn html(run: &Run, plots: &[Plot]) -> String {
    let m = run.metrics;
    let what = run.rows;
    let one = what.trim_end_matches('s');
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>appraise run report</title>\n\
         <style>body{font-family:sans-serif;max-width:860px;margin:2em auto;color:#222}\
         table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}\
         th{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>\n\
         <h1>appraise run report</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>{} test {what}, {} training {what}; {} epochs.</p>\n<h2>Test metrics</h2>\n<table>",
        run.prices.len(),
        run.train_rows,
        run.history.len()
    );
    let rows = [
        (
            "MAPE (mean absolute percentage error)",
            format!("{:.2}%", m.mape),
        ),
        (
            "standard deviation of the absolute percentage error",
            format!("{:.2}%", m.ape_std),
        ),
        (
            "median absolute percentage error",
            format!("{:.2}%", m.median_ape),
        ),
        (
            "worst absolute percentage error",
            format!("{:.2}%", m.max_ape),
        ),
        ("MAE", format!("${:.0}", m.mae)),
        ("RMSE", format!("${:.0}", m.rmse)),
        ("R squared", format!("{:.4}", m.r2)),
    ];
    for (name, value) in rows {
        let _ = writeln!(page, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    page.push_str("</table>\n");
    let (actual, predicted): (Vec<f64>, Vec<f64>) = run.prices.iter().copied().unzip();
    let r = crate::evaluate::ratio::RatioStudy::compute(&actual, &predicted);
    let _ = writeln!(
        page,
        "<h2>Ratio study</h2>\n<p>The valuation industry's figures (IAAO) of the test {what}: \
         the ratio of a {one} is its predicted price over its sale price.</p>\n<table>\n\
         <tr><th>PPE10 (priced within 10%)</th><td>{:.1}%</td></tr>\n\
         <tr><th>PPE20 (priced within 20%)</th><td>{:.1}%</td></tr>\n\
         <tr><th>COD (coefficient of dispersion)</th><td>{:.1}</td></tr>\n\
         <tr><th>PRD (price-related differential)</th><td>{:.3}</td></tr>\n\
         <tr><th>median ratio</th><td>{:.3}</td></tr>\n</table>",
        r.ppe10, r.ppe20, r.cod, r.prd, r.median_ratio
    );
    let coverage = run.coverage();
    if coverage.is_empty() {
        page.push_str("<p>Price ranges: none (this model carries no calibration).</p>\n");
    } else {
        let _ = write!(
            page,
            "<h2>Price ranges</h2>\n<p>Split-conformal ranges, calibrated on out-of-fold errors of the training {what}. On the predicted-vs-actual plot each test {one}'s 80% range is a vertical bar; it holds the actual price where it crosses the diagonal.</p>\n<table>\n\
             <tr><th>range</th><th>covers (test {what})</th><th>median width (of the price)</th></tr>\n",
        );
        for c in &coverage {
            let _ = writeln!(
                page,
                "<tr><th>{:.0}%</th><td>{:.1}%</td><td>{:.1}%</td></tr>",
                100.0 * c.level,
                c.covered,
                c.median_width
            );
        }
        page.push_str("</table>\n");
    }
    for plot in plots {
        let _ = writeln!(page, "<h2>{}</h2>\n{}", plot.title, plot.svg);
    }
    if !run.examples.is_empty() {
        let _ = writeln!(
            page,
            "<h2>Why these prices</h2>\n<p>The best, median and worst priced test {what}: \
             each input's share of the price from the reference price, and the comparable \
             training sales.</p>"
        );
        for e in run.examples {
            page.push_str(&example_html(e));
        }
    }
    let _ = writeln!(
        page,
        "<h2>Configuration</h2>\n<pre>{}</pre>\n</body></html>",
        escape(&run.config)
    );
    page
}

/// One explained test row: its shares as a table, its comparables as a table with their
/// photos.
fn example_html(e: &crate::explain::Example) -> String {
    let x = &e.explanation;
    let mut html = format!(
        "<h3>{} priced: {}</h3>\n<p>sold for ${:.0}, priced ${:.0}; reference price ${:.0}</p>\n\
         <table><tr><th>column</th><th>value</th><th>factor</th><th>dollars</th></tr>\n",
        e.label,
        escape(&e.place),
        e.actual,
        e.predicted,
        x.reference_price.unwrap_or(f64::NAN)
    );
    for c in x.contributions.iter().filter(|c| c.factor != 1.0) {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td><td>x{:.3}</td><td>{:+.0}</td></tr>",
            escape(&c.column),
            escape(&c.value),
            c.factor,
            c.dollars
        );
    }
    let _ = writeln!(
        html,
        "</table>\n<p>Comparable sales (median adjusted price ${:.0}):</p>\n<table>\
         <tr><th>sale</th><th>sold</th><th>model</th><th>adjusted</th><th>attributes</th><th>photos</th></tr>",
        x.comparables_median.unwrap_or(f64::NAN)
    );
    for c in &x.comparables {
        let attributes: Vec<String> = c
            .attributes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let photos: String = c
            .photos
            .iter()
            .flat_map(|cell| cell.split(';'))
            .filter(|p| !p.is_empty())
            .map(|p| format!("<img src=\"file://{}\" width=\"96\" alt=\"\">", escape(p)))
            .collect();
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>${:.0}</td><td>${:.0}</td><td>${:.0}</td><td>{}</td><td>{photos}</td></tr>",
            escape(&c.id),
            c.sale_price,
            c.predicted_price,
            c.adjusted_price,
            escape(&attributes.join(", "))
        );
    }
    html.push_str("</table>\n");
    html
}

/// Writes the plots (PNG and SVG) and `report.html` into `out_dir`, each atomically.
pub fn write(run: &Run, out_dir: &Path) -> Result<()> {
    let plots = plots(run.history, run.curves, &run.prices, run.calibration)?;
    for plot in &plots {
        atomic::write(
            &out_dir.join(format!("{}.svg", plot.name)),
            plot.svg.as_bytes(),
        )?;
        atomic::write(&out_dir.join(format!("{}.png", plot.name)), &plot.png)?;
    }
    atomic::write(
        &out_dir.join("report.html"),
        html(run, plots.as_slice()).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_render_to_png_and_svg() {
        let history: Vec<EpochRecord> = (1..=20)
            .map(|e| EpochRecord {
                epoch: e,
                loss: 100.0 / e as f64,
                val_loss: 120.0 / e as f64,
                learning_rate: 1e-3,
            })
            .collect();
        let predictions: Vec<(f64, f64)> = (1..=30)
            .map(|i| (100_000.0 * i as f64, 90_000.0 * i as f64 + 5_000.0))
            .collect();
        let plots_of = |c| plots(&history, Curves::TUTORIAL, &predictions, c).unwrap();
        let plots = plots_of(None);
        assert_eq!(plots.len(), 3);
        assert!(!plots[1].svg.contains("price range"));
        // With a calibration, each house's range is drawn, and the legend counts the hits:
        // factors 0.9 .. 1.2 hold every actual price here (actual / predicted ~ 1.1).
        let c = Calibration {
            errors: vec![-0.1, 0.0, 0.1, 0.2],
        };
        let with_ranges = plots_of(Some(&c));
        assert!(
            with_ranges[1]
                .svg
                .contains("80% price range (holds 30 of 30 actual prices)"),
            "{}",
            with_ranges[1].svg
        );
        for p in &plots {
            assert!(
                p.svg.starts_with("<svg") && p.svg.contains("</svg>"),
                "{}",
                p.name
            );
            assert_eq!(&p.png[1..4], b"PNG");
        }
        assert!(plots[0].svg.contains("val_loss (test)"));
    }

    #[test]
    fn the_recipes_learning_curves_say_what_they_show_with_labels_that_differ() {
        // The recipe's loss, an absolute error of a standardized log price, stays below 1.
        let history: Vec<EpochRecord> = (1..=40)
            .map(|e| EpochRecord {
                epoch: e,
                loss: 0.8 / (e as f64).sqrt(),
                val_loss: 0.9 / (e as f64).sqrt(),
                learning_rate: 2e-3,
            })
            .collect();
        let plots = plots(&history, Curves::RECIPE, &[], None).unwrap();
        let svg = &plots[0].svg;
        assert!(svg.contains("standardized log price"), "{svg}");
        assert!(svg.contains("held-out inner fold"), "{svg}");
        assert!(!svg.contains("MAPE"), "{svg}");
        // The y labels are not all "0": at least three distinct decimal labels.
        let labels: Vec<&str> = ["0.10", "0.20", "0.30", "0.40", "0.50", "0.60"]
            .into_iter()
            .filter(|l| svg.contains(&format!("\n{l}\n")))
            .collect();
        assert!(labels.len() >= 3, "{labels:?}\n{svg}");
    }
}
