//! `sepstream wav --plot`: one PNG per file with the model's feature spectrogram on top and the
//! keyword posteriors, the threshold and the events under it (plotters).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use sepstream_kws::Trace;

const SIZE: (u32, u32) = (1400, 800);

/// The PNG for `input` when `--plot` is `plot` and `n_files` files are run: `plot` itself for
/// one file, otherwise `plot`'s stem plus the input's stem (`out.png` -> `out-speech.png`).
pub fn path_for(plot: &Path, input: &Path, n_files: usize) -> PathBuf {
    if n_files <= 1 {
        return plot.to_path_buf();
    }
    let stem = plot
        .file_stem()
        .map_or_else(|| "plot".into(), |s| s.to_string_lossy().into_owned());
    let ext = plot
        .extension()
        .map_or_else(|| "png".into(), |s| s.to_string_lossy().into_owned());
    let name = input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    plot.with_file_name(format!("{stem}-{name}.{ext}"))
}

/// A dark-blue -> teal -> yellow ramp for `v` in 0..=1.
fn heat(v: f32) -> RGBColor {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [20.0, 12.0, 60.0]),
        (0.3, [50.0, 70.0, 140.0]),
        (0.55, [30.0, 145.0, 140.0]),
        (0.8, [120.0, 200.0, 80.0]),
        (1.0, [250.0, 230.0, 40.0]),
    ];
    let v = v.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|s| s.0 <= v).unwrap_or(0).min(3);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let f = (v - a.0) / (b.0 - a.0);
    let c = |k: usize| (a.1[k] + (b.1[k] - a.1[k]) * f) as u8;
    RGBColor(c(0), c(1), c(2))
}

/// The 1st and 99th percentiles of `v` (NaNs left out; (0, 0) when empty).
fn colour_range(mut v: Vec<f32>) -> (f32, f32) {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_unstable_by(f32::total_cmp);
    let at = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
    (at(0.01), at(0.99))
}

/// Draws `trace` into a PNG at `path`.
pub fn draw(
    trace: &Trace,
    labels: &[String],
    threshold: f32,
    title: &str,
    path: &Path,
) -> anyhow::Result<()> {
    draw_inner(trace, labels, threshold, title, path)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("drawing {}", path.display()))
}

fn draw_inner(
    trace: &Trace,
    labels: &[String],
    threshold: f32,
    title: &str,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 45 / 100);
    let dt = match trace.frames.as_slice() {
        [a, b, ..] => b.0 - a.0,
        _ => 0.02,
    };
    let t_end = trace
        .frames
        .last()
        .map_or(1.0, |f| f.0)
        .max(trace.events.iter().map(|e| e.end).fold(0.0, f64::max))
        .max(dt);
    let bins = trace.frames.first().map_or(1, |f| f.1.len()).max(1);

    // Spectrogram: the normalised features the model saw, colour scaled between the 1st and 99th
    // percentile; at most one column per pixel.
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_end, 0f64..bins as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time (s)")
        .y_desc("feature (mel band)")
        .draw()?;
    let (lo, hi) = colour_range(
        trace
            .frames
            .iter()
            .flat_map(|f| f.1.iter().copied())
            .collect(),
    );
    let scale = if hi > lo { hi - lo } else { 1.0 };
    let step = trace.frames.len().div_ceil(SIZE.0 as usize).max(1);
    chart.draw_series(trace.frames.iter().step_by(step).flat_map(|(t, v)| {
        let t0 = t - dt * step as f64;
        (0..bins.min(v.len())).map(move |b| {
            Rectangle::new(
                [(t0, b as f64), (*t, b as f64 + 1.0)],
                heat((v[b] - lo) / scale).filled(),
            )
        })
    }))?;
    for e in &trace.events {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(e.start, 0.0), (e.end, bins as f64)],
            WHITE.stroke_width(2),
        )))?;
    }

    // Posteriors of every label (keywords in colour, silence/unknown in grey), the threshold
    // and the events with their keyword.
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_end, 0f64..1.08f64)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("posterior")
        .light_line_style(WHITE)
        .draw()?;
    for (i, e) in trace.events.iter().enumerate() {
        let c = Palette99::pick(e.label_index);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(e.start, 0.0), (e.end, 1.0)],
            c.mix(0.15).filled(),
        )))?;
        // Alternate heights so close events keep readable names.
        let y = if i % 2 == 0 { 1.06 } else { 1.01 };
        chart.draw_series(std::iter::once(Text::new(
            format!("{} {:.2}", e.keyword, e.score),
            (e.start, y),
            ("sans-serif", 15).into_font().color(&c),
        )))?;
    }
    chart
        .draw_series(LineSeries::new(
            [(0.0, f64::from(threshold)), (t_end, f64::from(threshold))],
            BLACK.mix(0.6).stroke_width(1),
        ))?
        .label(format!("threshold {threshold}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.6)));
    for (k, name) in labels.iter().enumerate() {
        let colour = if name.starts_with('_') {
            RGBColor(170, 170, 170).to_rgba()
        } else {
            Palette99::pick(k).to_rgba()
        };
        let pts: Vec<(f64, f64)> = trace
            .posteriors
            .iter()
            .filter_map(|(t, p)| p.get(k).map(|v| (*t, f64::from(*v))))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plot_per_file() {
        let p = Path::new("out/plot.png");
        assert_eq!(path_for(p, Path::new("a/x.wav"), 1), p);
        assert_eq!(
            path_for(p, Path::new("a/x.wav"), 2),
            Path::new("out/plot-x.png")
        );
    }

    #[test]
    fn heat_ramp_ends() {
        assert_eq!(heat(-1.0), heat(0.0));
        assert_eq!(heat(2.0), RGBColor(250, 230, 40));
        assert_ne!(heat(0.5), heat(0.6));
    }
}
