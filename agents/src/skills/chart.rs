//! Charts from data for the canvas: the model gives numbers, not drawing code, and gets a
//! line or bar chart drawn as SVG (by `plotters`), which the canvas shows and the reply
//! carries as an image.

use plotters::prelude::*;
use serde::Deserialize;

/// Most points per series and most series drawn.
pub const MAX_POINTS: usize = 1000;
/// Most series in one chart.
pub const MAX_SERIES: usize = 8;
/// Size of the drawing in pixels.
pub const SIZE: (u32, u32) = (720, 420);

/// A chart as the model describes it: `{"type": "line"|"bar", "x": [labels],
/// "series": {"name": [numbers]}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// `line` (default) or `bar`.
    #[serde(rename = "type", default = "line")]
    pub kind: String,
    /// Labels of the x axis, one per point.
    pub x: Vec<serde_json::Value>,
    /// Each series by name, one number per label.
    pub series: std::collections::BTreeMap<String, Vec<f64>>,
}

fn line() -> String {
    "line".into()
}

/// Why a chart cannot be drawn; the text is for the model.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The content is not a chart description.
    #[error("a chart is JSON {{\"type\": \"line\"|\"bar\", \"x\": [labels], \"series\": {{\"name\": [numbers]}}}}: {0}")]
    Shape(String),
    /// Drawing failed.
    #[error("the chart could not be drawn: {0}")]
    Draw(String),
}

/// Parse and check a chart description.
pub fn parse(content: &str) -> Result<ChartSpec, ChartError> {
    let spec: ChartSpec =
        serde_json::from_str(content).map_err(|e| ChartError::Shape(e.to_string()))?;
    if !["line", "bar"].contains(&spec.kind.as_str()) {
        return Err(ChartError::Shape(format!("unknown type `{}`", spec.kind)));
    }
    if spec.x.is_empty() || spec.x.len() > MAX_POINTS {
        return Err(ChartError::Shape(format!(
            "`x` has 1 to {MAX_POINTS} labels"
        )));
    }
    if spec.series.is_empty() || spec.series.len() > MAX_SERIES {
        return Err(ChartError::Shape(format!("1 to {MAX_SERIES} series")));
    }
    for (name, values) in &spec.series {
        if values.len() != spec.x.len() {
            return Err(ChartError::Shape(format!(
                "series `{name}` has {} numbers for {} labels",
                values.len(),
                spec.x.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ChartError::Shape(format!(
                "series `{name}` is not all numbers"
            )));
        }
    }
    Ok(spec)
}

fn label(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Draw `spec` as an SVG document titled `title`.
pub fn render(spec: &ChartSpec, title: &str) -> Result<String, ChartError> {
    let draw = |e: &dyn std::fmt::Display| ChartError::Draw(e.to_string());
    let labels: Vec<String> = spec.x.iter().map(label).collect();
    let values = spec.series.values().flatten().copied();
    let (lo, hi) = values.fold((0f64, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi <= lo {
        lo + 1.0
    } else {
        hi + (hi - lo) * 0.05
    };
    let n = labels.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, lo..hi)
            .map_err(|e| draw(&e))?;
        let name_of = |x: &f64| {
            let i = x.floor();
            if i >= 0.0 && (i as usize) < n && (x - i - 0.5).abs() < 1e-9 {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(12) * 2 + 1)
            .x_label_formatter(&name_of)
            .draw()
            .map_err(|e| draw(&e))?;
        let count = spec.series.len();
        for (k, (name, ys)) in spec.series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            if spec.kind == "bar" {
                let width = 0.8 / count as f64;
                let bars = ys.iter().enumerate().map(|(i, y)| {
                    let left = i as f64 + 0.1 + width * k as f64;
                    Rectangle::new([(left, 0f64.max(lo)), (left + width, *y)], color.filled())
                });
                chart
                    .draw_series(bars)
                    .map_err(|e| draw(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
            } else {
                let points = ys.iter().enumerate().map(|(i, y)| (i as f64 + 0.5, *y));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(|e| draw(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                    });
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_and_a_bar_chart_are_svg_with_their_labels_and_series() {
        for kind in ["line", "bar"] {
            let spec = parse(&format!(
                r#"{{"type": "{kind}", "x": ["Jan", "Feb", "Mar"], "series": {{"rain": [3, 5.5, 1], "sun": [10, 8, 12]}}}}"#
            ))
            .unwrap();
            let svg = render(&spec, "Weather").unwrap();
            assert!(svg.starts_with("<svg"), "{kind}");
            for text in ["Weather", "Jan", "Mar", "rain", "sun"] {
                assert!(svg.contains(text), "{kind}: {text} missing");
            }
        }
    }

    #[test]
    fn bad_chart_descriptions_are_explained() {
        let e = |s: &str| parse(s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e("not json").contains("a chart is JSON"));
        assert!(e(r#"{"type": "pie", "x": [1], "series": {"a": [1]}}"#).contains("unknown type"));
        assert!(e(r#"{"x": [1, 2], "series": {"a": [1]}}"#).contains("1 numbers for 2 labels"));
        assert!(e(r#"{"x": [], "series": {"a": []}}"#).contains("labels"));
    }
}
