//! Trajectory plots (plotters, bitmap backend): obstacles, the robot's path coloured by what the
//! controller was doing, and where each command arrived.

use std::path::Path;

use plotters::prelude::*;

use crate::robot::Behaviour;
use crate::sim::SimLog;
use crate::{ObstacleKind, VisionError, World};

fn err(path: &Path, e: impl std::fmt::Display) -> VisionError {
    VisionError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn colour(b: Behaviour) -> RGBColor {
    match b {
        Behaviour::Cruising => RGBColor(0, 110, 220),
        Behaviour::Slowing => RGBColor(0, 170, 170),
        Behaviour::Avoiding => RGBColor(230, 120, 0),
        Behaviour::Stale => RGBColor(200, 0, 200),
        Behaviour::Turning => RGBColor(0, 160, 0),
        Behaviour::Stopped => RGBColor(120, 120, 120),
    }
}

/// Draws `log` in `world` into a PNG at `path` (`size` pixels). With `text`, adds a caption,
/// axis labels and command names (needs a system font); without, shapes only.
pub fn plot_run(
    world: &World,
    log: &SimLog,
    title: &str,
    path: &Path,
    size: (u32, u32),
    text: bool,
) -> Result<(), VisionError> {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let (lo, hi) = world.bounds;
    let pad = 0.3;
    let (x0, x1, y0, y1) = (lo.x - pad, hi.x + pad, lo.y - pad, hi.y + pad);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(12);
    if text {
        builder
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(30)
            .y_label_area_size(40);
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(path, e))?;
    if text {
        chart
            .configure_mesh()
            .x_desc("x (m)")
            .y_desc("y (m)")
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    for o in &world.obstacles {
        let pts: Vec<(f64, f64)> = o.corners.iter().map(|p| (p.x, p.y)).collect();
        let fill = match o.kind {
            ObstacleKind::Wall => RGBColor(60, 60, 60).filled(),
            ObstacleKind::Box => RGBColor(150, 110, 70).mix(0.8).filled(),
        };
        chart
            .draw_series(std::iter::once(Polygon::new(pts, fill)))
            .map_err(|e| err(path, e))?;
    }
    // Path, one segment per tick pair, coloured by behaviour.
    chart
        .draw_series(log.ticks.windows(2).map(|w| {
            PathElement::new(
                vec![(w[0].pose[0], w[0].pose[1]), (w[1].pose[0], w[1].pose[1])],
                colour(w[1].behaviour).stroke_width(2),
            )
        }))
        .map_err(|e| err(path, e))?;
    if let (Some(first), Some(last)) = (log.ticks.first(), log.ticks.last()) {
        chart
            .draw_series([
                Circle::new((first.pose[0], first.pose[1]), 5, GREEN.filled()),
                Circle::new((last.pose[0], last.pose[1]), 5, RED.filled()),
            ])
            .map_err(|e| err(path, e))?;
        // Heading at the end.
        let (x, y, th) = (last.pose[0], last.pose[1], last.pose[2]);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y), (x + 0.3 * th.cos(), y + 0.3 * th.sin())],
                RED.stroke_width(2),
            )))
            .map_err(|e| err(path, e))?;
    }
    chart
        .draw_series(
            log.marks
                .iter()
                .map(|m| TriangleMarker::new((m.x, m.y), 7, BLACK.filled())),
        )
        .map_err(|e| err(path, e))?;
    if text {
        chart
            .draw_series(log.marks.iter().map(|m| {
                Text::new(
                    format!("{} @{:.2}s", m.command.name(), m.arrival),
                    (m.x + 0.08, m.y + 0.08),
                    ("sans-serif", 14),
                )
            }))
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
