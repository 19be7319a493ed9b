//! The PNG bar chart of an evaluation: one bar per mode's pass rate, and one for the
//! oracle where the mode has one. Text uses the embedded DejaVu Sans, so no system fonts
//! are needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::{EvalError, Summary};

const PASS: RGBColor = RGBColor(52, 101, 164);
const ORACLE: RGBColor = RGBColor(186, 189, 182);

fn chart_error(e: impl std::fmt::Display) -> EvalError {
    EvalError::Run(format!("cannot draw the chart: {e}"))
}

/// Writes the chart of `summaries` (in their order) to `path`.
pub fn draw(summaries: &[Summary], path: &Path) -> Result<(), EvalError> {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The bytes are a valid TrueType font; failure here would be a broken crate.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
    let mut bars: Vec<(String, f64, RGBColor)> = Vec::new();
    for s in summaries {
        bars.push((format!("{} ({} tasks)", s.mode, s.tasks), s.pass_rate * 100.0, PASS));
        if let Some(oracle) = s.oracle_rate {
            bars.push((format!("{} oracle", s.mode), oracle * 100.0, ORACLE));
        }
    }
    let width = 160 * bars.len().max(2) as u32 + 120;
    let root = BitMapBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("quorum eval: hidden tests passed", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(56)
        // A segmented range a..b has a slot for b too: 0..n-1 gives n slots.
        .build_cartesian_2d((0..bars.len().saturating_sub(1)).into_segmented(), 0f64..100f64)
        .map_err(chart_error)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("pass rate (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels.get(*i).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(chart_error)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .margin(24)
                .style_func(|x, _| match x {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => bars[*i].2.filled(),
                    SegmentValue::Last => PASS.filled(),
                })
                .data(bars.iter().enumerate().map(|(i, b)| (i, b.1))),
        )
        .map_err(chart_error)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let at = (SegmentValue::CenterOf(i), (b.1 + 2.0).min(96.0));
            EmptyElement::at(at) + Text::new(format!("{:.1}%", b.1), (-18, -4), ("sans-serif", 15))
        }))
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    Ok(())
}
