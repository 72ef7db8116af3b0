//! PNG plots of a federated job: loss and AUC per round, and ROC curves.
//!
//! Pure functions from numbers to a PNG file. Text is drawn with DejaVu Sans compiled into the
//! binary (the `dejavu` crate, handed to plotters' pure-Rust `ab_glyph` text backend under the
//! family name `"sans-serif"`), so a plot renders the same on a machine with no system fonts
//! and no fontconfig. The picture is rasterised in memory and encoded with the `png` crate, so
//! the file is a PNG whatever the path's extension.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use cairn_coordinator::RoundRecord;
use cairn_protocol::metrics::Metrics;

/// Pixel size (width, height) of the image [`plot_rounds`] writes.
pub const ROUNDS_SIZE: (u32, u32) = (1280, 560);
/// Pixel size (width, height) of the image [`plot_roc`] writes.
pub const ROC_SIZE: (u32, u32) = (720, 720);

/// The family every text style here names; [`ensure_font`] registers it.
const FONT: &str = "sans-serif";
const BLUE: RGBColor = RGBColor(31, 119, 180);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const GREY: RGBColor = RGBColor(120, 120, 120);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
/// Colours of successive ROC curves (the first is the federated model's).
const CURVES: [RGBColor; 4] = [RED, BLUE, GREEN, PURPLE];

/// Registers the embedded DejaVu Sans under [`FONT`] once per process.
///
/// plotters' `ab_glyph` backend never looks at system fonts: without this every text element
/// fails with "font unavailable".
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "DejaVu Sans")?;
        register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(|_| "DejaVu Sans Bold")
    });
    registered.map_err(|name| anyhow!("the embedded font {name} could not be parsed"))
}

/// Draws on a white `size` canvas with `draw`, then writes it to `path` as an RGB PNG.
fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
{
    ensure_font()?;
    let (width, height) = size;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding the PNG")?;
    writer.write_image_data(&rgb).context("encoding the PNG")?;
    writer.finish().context("encoding the PNG")?;
    std::fs::write(path, encoded).with_context(|| format!("writing {}", path.display()))
}

/// A round that produced a model and its test metrics.
struct Completed {
    round: u32,
    train_loss: f64,
    test: Metrics,
}

/// The completed rounds, in the order given; failed rounds are left out.
fn completed(rounds: &[RoundRecord]) -> Vec<Completed> {
    rounds
        .iter()
        .filter(|r| r.failure.is_none())
        .filter_map(|r| {
            r.test.map(|test| Completed {
                round: r.round,
                train_loss: r.train_loss,
                test,
            })
        })
        .collect()
}

/// `lo..hi` spanning `values` with `pad` of the span added each side, clamped to `[min, max]`.
/// Non-finite values are ignored; a single value gets a span of 0.1.
fn padded(values: impl IntoIterator<Item = f64>, pad: f64, min: f64, max: f64) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (min.max(0.0), max.min(1.0));
    }
    let span = (hi - lo).max(0.1);
    ((lo - pad * span).max(min), (hi + pad * span).min(max))
}

/// A series' legend mark: a short solid line.
fn solid_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
}

/// A baseline's legend mark: a short dashed line.
fn dashed_mark(
    color: RGBColor,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, color.stroke_width(2))
}

/// A named, coloured series of per-round values.
type Series = (String, RGBColor, Vec<(u32, f64)>);

/// A ROC curve to draw: its name, its (false-positive rate, true-positive rate) points and its AUC.
pub type RocCurve<'a> = (&'a str, &'a [(f64, f64)], f64);

/// One panel of [`plot_rounds`]: solid series per round, dashed horizontal baseline lines.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    y_range: (f64, f64),
    series: Vec<Series>,
    baselines: Vec<(String, RGBColor, f64)>,
    legend: SeriesLabelPosition,
}

impl Panel<'_> {
    fn draw(self, area: &DrawingArea<BitMapBackend<'_>, Shift>, x_range: (u32, u32)) -> Result<()> {
        let (x0, x1) = x_range;
        let mut chart = ChartBuilder::on(area)
            .caption(self.caption, (FONT, 22))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, self.y_range.0..self.y_range.1)?;
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc(self.y_desc)
            .x_labels(((x1 - x0) as usize + 1).min(12))
            .y_labels(8)
            .x_label_formatter(&|x| format!("{x}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (label, color, points) in self.series {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(3)).point_size(4))?
                .label(label)
                .legend(solid_mark(color));
        }
        for (label, color, y) in self.baselines {
            let line = [(x0, y), (x1, y)];
            chart
                .draw_series(DashedLineSeries::new(line, 10, 6, color.stroke_width(2)))?
                .label(label)
                .legend(dashed_mark(color));
        }
        chart
            .configure_series_labels()
            .position(self.legend)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()?;
        Ok(())
    }
}

/// Loss and AUC per round (two panels), with the centralised baseline's loss and AUC as
/// dashed horizontal lines, written to `path` as a PNG of [`ROUNDS_SIZE`].
///
/// The left panel shows the mean training loss and the global model's test loss; the right
/// one its test AUC, PR-AUC (average precision; absent from records older builds wrote)
/// and accuracy. Failed rounds (no test metrics) are skipped and counted in
/// the title. Errors when there is no round, or no round completed.
pub fn plot_rounds(
    path: &Path,
    rounds: &[RoundRecord],
    baseline: Option<&Metrics>,
    title: &str,
) -> Result<()> {
    if rounds.is_empty() {
        bail!("no rounds to plot");
    }
    let done = completed(rounds);
    let (Some(first), Some(last)) = (done.first(), done.last()) else {
        bail!("all {} rounds failed: nothing to plot", rounds.len());
    };
    let (mut x0, mut x1) = (first.round, last.round);
    for r in &done {
        (x0, x1) = (x0.min(r.round), x1.max(r.round));
    }
    if x0 == x1 {
        (x0, x1) = (x0.saturating_sub(1), x1.saturating_add(1));
    }
    let failed = rounds.len() - done.len();
    let title = match failed {
        0 => title.to_string(),
        1 => format!("{title}  (1 failed round not shown)"),
        n => format!("{title}  ({n} failed rounds not shown)"),
    };
    let series = |f: fn(&Completed) -> f64| -> Vec<(u32, f64)> {
        done.iter()
            .map(|r| (r.round, f(r)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let base = |f: fn(&Metrics) -> f64| baseline.map(f).filter(|v| v.is_finite());

    let train = series(|r| r.train_loss);
    let test_loss = series(|r| r.test.loss);
    let loss_values = train
        .iter()
        .chain(&test_loss)
        .map(|p| p.1)
        .chain(base(|m| m.loss));
    let mut loss = Panel {
        caption: "Loss (binary cross-entropy)",
        y_desc: "loss",
        y_range: padded(loss_values, 0.08, 0.0, f64::INFINITY),
        // A DP job releases no holder's loss (NaN in its records): no train line then.
        series: if train.is_empty() {
            vec![("test".into(), RED, test_loss)]
        } else {
            vec![
                ("train (mean)".into(), BLUE, train),
                ("test".into(), RED, test_loss),
            ]
        },
        baselines: vec![],
        legend: SeriesLabelPosition::UpperRight,
    };
    let auc = series(|r| r.test.auc);
    let pr_auc = series(|r| r.test.pr_auc.unwrap_or(f64::NAN));
    let accuracy = series(|r| r.test.accuracy);
    let quality_values = auc.iter().chain(&pr_auc).chain(&accuracy).map(|p| p.1);
    let quality_values = quality_values
        .chain(base(|m| m.auc))
        .chain(base(|m| m.pr_auc.unwrap_or(f64::NAN)))
        .chain(base(|m| m.accuracy));
    let y_range = padded(quality_values, 0.08, 0.0, 1.0);
    let mut quality_series = vec![("AUC".into(), RED, auc)];
    if !pr_auc.is_empty() {
        quality_series.push(("PR-AUC".into(), PURPLE, pr_auc));
    }
    quality_series.push(("accuracy".into(), GREEN, accuracy));
    let mut quality = Panel {
        caption: "Test AUC, PR-AUC and accuracy",
        y_desc: "AUC / PR-AUC / accuracy",
        y_range,
        series: quality_series,
        baselines: vec![],
        legend: SeriesLabelPosition::LowerRight,
    };
    if let Some(v) = base(|m| m.loss) {
        loss.baselines
            .push((format!("centralised test ({v:.3})"), RED, v));
    }
    if let Some(v) = base(|m| m.auc) {
        quality
            .baselines
            .push((format!("centralised AUC ({v:.3})"), RED, v));
    }
    if let Some(v) = base(|m| m.pr_auc.unwrap_or(f64::NAN)) {
        quality
            .baselines
            .push((format!("centralised PR-AUC ({v:.3})"), PURPLE, v));
    }
    if let Some(v) = base(|m| m.accuracy) {
        quality
            .baselines
            .push((format!("centralised accuracy ({v:.3})"), GREEN, v));
    }

    render(path, ROUNDS_SIZE, |root| {
        let body = root.titled(&title, (FONT, 26).into_font().style(FontStyle::Bold))?;
        let panels = body.split_evenly((1, 2));
        let [left, right] = panels.as_slice() else {
            bail!("expected two panels, got {}", panels.len());
        };
        loss.draw(left, (x0, x1))?;
        quality.draw(right, (x0, x1))
    })
}

/// ROC curves, each given as `(name, points, auc)` with points (false-positive rate,
/// true-positive rate) from `cairn_protocol::metrics::roc_curve`, drawn over the chance
/// diagonal with the AUC in the legend, written to `path` as a PNG of [`ROC_SIZE`].
///
/// Typically the federated model first and the centralised baseline second. Errors when there
/// is no curve, a curve has no point, or a point lies outside the unit square.
pub fn plot_roc(path: &Path, curves: &[RocCurve<'_>], title: &str) -> Result<()> {
    if curves.is_empty() {
        bail!("no ROC curve to plot");
    }
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    for (name, points, _) in curves {
        if points.is_empty() {
            bail!("ROC curve {name:?} has no points");
        }
        if let Some(p) = points.iter().find(|(x, y)| !unit(*x) || !unit(*y)) {
            bail!("ROC curve {name:?} has the point {p:?} outside the unit square");
        }
    }
    render(path, ROC_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24).into_font().style(FontStyle::Bold))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("false positive rate")
            .y_desc("true positive rate")
            .x_labels(11)
            .y_labels(11)
            .x_label_formatter(&|x| format!("{x:.1}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let diagonal = [(0.0, 0.0), (1.0, 1.0)];
        chart
            .draw_series(DashedLineSeries::new(diagonal, 10, 6, GREY.stroke_width(2)))?
            .label("chance (AUC 0.500)")
            .legend(dashed_mark(GREY));
        for ((name, points, auc), color) in curves.iter().zip(CURVES.iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(3),
                ))?
                .label(format!("{name} (AUC {auc:.3})"))
                .legend(solid_mark(*color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_protocol::metrics::roc_curve;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

    /// Checks the signature, decodes the whole file, and returns (width, height, RGB pixels).
    fn decode(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
        let bytes = std::fs::read(path)?;
        assert_eq!(
            bytes.get(..8),
            Some(&PNG_SIGNATURE[..]),
            "not a PNG signature"
        );
        let mut reader = png::Decoder::new(bytes.as_slice()).read_info()?;
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels)?;
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        pixels.truncate(frame.buffer_size());
        Ok((frame.width, frame.height, pixels))
    }

    /// Non-white pixels in rows `rows` of an RGB image `width` wide.
    fn ink(pixels: &[u8], width: u32, rows: std::ops::Range<usize>) -> usize {
        let row = width as usize * 3;
        pixels[rows.start * row..rows.end * row]
            .chunks(3)
            .filter(|p| p.iter().any(|&c| c < 200))
            .count()
    }

    fn record(round: u32, train_loss: f64, test: Option<Metrics>) -> RoundRecord {
        RoundRecord {
            round,
            selected: 4,
            contributors: if test.is_some() { 4 } else { 1 },
            dropped: vec![],
            train_loss,
            failure: test.is_none().then(|| "too few survivors".to_string()),
            test,
            seconds: 0.5,
            verify_seconds: None,
            rss_bytes: None,
            epsilon: None,
        }
    }

    /// A job that learns: loss falls and AUC rises with the round number.
    fn learning(n: u32) -> Vec<RoundRecord> {
        (1..=n)
            .map(|r| {
                let t = f64::from(r) / f64::from(n);
                let test = Metrics {
                    loss: 0.69 - 0.25 * t,
                    accuracy: 0.6 + 0.2 * t,
                    auc: 0.6 + 0.3 * t,
                    pr_auc: Some(0.4 + 0.4 * t),
                    ..Metrics::default()
                };
                record(r, 0.7 - 0.3 * t, Some(test))
            })
            .collect()
    }

    /// Scores that rank positives above negatives most of the time, with ties.
    fn scored(n: usize) -> (Vec<f32>, Vec<f32>) {
        let y: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { 1.0 } else { 0.0 }).collect();
        let p = (0..n)
            .map(|i| ((i * 37 % 100) as f32 / 100.0 + y[i]) / 2.0)
            .collect();
        (p, y)
    }

    #[test]
    fn rounds_plot_is_a_png_of_the_declared_size() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("rounds.png");
        let baseline = Metrics {
            loss: 0.40,
            accuracy: 0.83,
            auc: 0.92,
            pr_auc: Some(0.81),
            ..Metrics::default()
        };
        plot_rounds(
            &path,
            &learning(12),
            Some(&baseline),
            "cairn: FedAvg on 4 holders",
        )?;
        let (w, h, pixels) = decode(&path)?;
        assert_eq!((w, h), ROUNDS_SIZE);
        // The lines and labels leave ink across the picture, not only in the frame.
        assert!(ink(&pixels, w, 60..h as usize) > 10_000);
        Ok(())
    }

    #[test]
    fn a_dp_job_without_train_losses_plots_its_test_metrics() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("rounds.png");
        let rounds: Vec<RoundRecord> = learning(5)
            .into_iter()
            .map(|r| RoundRecord {
                train_loss: f64::NAN,
                epsilon: Some(f64::from(r.round)),
                ..r
            })
            .collect();
        plot_rounds(&path, &rounds, None, "DP job")?;
        let (w, h, pixels) = decode(&path)?;
        assert_eq!((w, h), ROUNDS_SIZE);
        assert!(ink(&pixels, w, 60..h as usize) > 5_000);
        Ok(())
    }

    #[test]
    fn failed_rounds_are_skipped() -> Result<()> {
        let mut rounds = learning(6);
        rounds[2] = record(3, f64::NAN, None);
        rounds[4].failure = Some("aggregation refused".into());
        let kept: Vec<u32> = completed(&rounds).iter().map(|c| c.round).collect();
        assert_eq!(kept, [1, 2, 4, 6]);

        // Drawing a job with failed rounds gives exactly the picture of its completed rounds.
        let dir = tempfile::tempdir()?;
        let (with, without) = (dir.path().join("with.png"), dir.path().join("without.png"));
        plot_rounds(&with, &rounds, None, "job")?;
        let ok: Vec<RoundRecord> = rounds
            .iter()
            .filter(|r| kept.contains(&r.round))
            .cloned()
            .collect();
        plot_rounds(&without, &ok, None, "job  (2 failed rounds not shown)")?;
        assert_eq!(decode(&with)?, decode(&without)?);
        Ok(())
    }

    #[test]
    fn a_single_completed_round_plots() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("one.png");
        plot_rounds(&path, &learning(1), None, "one round")?;
        assert_eq!(decode(&path)?.0, ROUNDS_SIZE.0);
        Ok(())
    }

    #[test]
    fn nothing_to_plot_is_an_error_and_writes_no_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("none.png");
        let empty = plot_rounds(&path, &[], None, "t").map_err(|e| e.to_string());
        assert_eq!(empty, Err("no rounds to plot".to_string()));
        let all_failed = [record(1, 0.7, None), record(2, 0.7, None)];
        let err = plot_rounds(&path, &all_failed, None, "t").map_err(|e| e.to_string());
        assert_eq!(err, Err("all 2 rounds failed: nothing to plot".to_string()));
        assert!(plot_roc(&path, &[], "t").is_err());
        assert!(plot_roc(&path, &[("model", &[], 0.5)], "t").is_err());
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn roc_plot_is_a_png_of_the_declared_size() -> Result<()> {
        let (p, y) = scored(300);
        let model = roc_curve(&p, &y);
        let (q, _) = scored(301);
        let central = roc_curve(&q[1..], &y);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("roc.png");
        plot_roc(
            &path,
            &[("federated", &model, 0.81), ("centralised", &central, 0.79)],
            "ROC on the test split",
        )?;
        let (w, h, _) = decode(&path)?;
        assert_eq!((w, h), ROC_SIZE);
        Ok(())
    }

    #[test]
    fn roc_points_outside_the_unit_square_are_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bad.png");
        for bad in [(0.5, 1.5), (-0.1, 0.2), (f64::NAN, 0.3)] {
            let points = [(0.0, 0.0), bad, (1.0, 1.0)];
            let err = plot_roc(&path, &[("m", &points, 0.5)], "t");
            assert!(
                err.is_err_and(|e| e.to_string().contains("outside the unit square")),
                "{bad:?}"
            );
        }
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn titles_are_drawn_with_the_embedded_font() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let points = [(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)];
        let (titled, blank) = (dir.path().join("titled.png"), dir.path().join("blank.png"));
        plot_roc(
            &titled,
            &[("m", &points, 0.75)],
            "Receiver operating characteristic",
        )?;
        plot_roc(&blank, &[("m", &points, 0.75)], "")?;
        let (w, _, titled) = decode(&titled)?;
        let (_, _, blank) = decode(&blank)?;
        // The caption band of the titled picture carries the glyphs; without a title the
        // band holds at most a few pixels of the frame (the chart moves up into it).
        let (with, without) = (ink(&titled, w, 0..40), ink(&blank, w, 0..40));
        assert!(
            with > without + 200,
            "no title glyphs drawn: {with} vs {without} dark pixels"
        );
        Ok(())
    }

    #[test]
    fn an_unwritable_path_is_an_error() {
        let path = Path::new("/nonexistent-cairn-dir/plot.png");
        let err = plot_roc(path, &[("m", &[(0.0, 0.0), (1.0, 1.0)], 0.5)], "t");
        assert!(err.is_err_and(|e| e.to_string().contains("nonexistent-cairn-dir")));
    }
}
