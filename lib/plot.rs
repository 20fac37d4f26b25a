//! Line charts (training curves) with plotters, rendered to PNG bytes for run records or SVG
//! text for notebooks. One chart type serves every curve: named series of (x, y) points, with
//! optional vertical markers (e.g. PTST stage boundaries). A series of one point (a sweep of one cell) is drawn as a
//! dot, since a line through one point draws nothing.
use anyhow::{Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One named curve.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self { name: name.into(), points: points.into_iter().collect() }
    }

    /// Points `(i, y_i)` for a sequence indexed from 0 (e.g. a per-step metric).
    pub fn from_values(name: impl Into<String>, ys: impl IntoIterator<Item = f64>) -> Self {
        Self::new(name, ys.into_iter().enumerate().map(|(i, y)| (i as f64, y)))
    }
}

/// A titled chart of one or more series.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Vertical dashed lines at these x positions, labelled in the legend.
    pub markers: Vec<(f64, String)>,
    pub size: (u32, u32),
}

impl LineChart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            markers: Vec::new(),
            size: (720, 420),
        }
    }

    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    pub fn marker(mut self, x: f64, label: impl Into<String>) -> Self {
        self.markers.push((x, label.into()));
        self
    }

    /// Renders to PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let (w, h) = self.size;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| anyhow!("rendering chart {:?}: {e}", self.title))?;
        }
        let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| anyhow!("chart buffer has the wrong size"))?;
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        Ok(png)
    }

    /// Renders to an SVG document (text needs no font file in SVG).
    pub fn to_svg(&self) -> Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| anyhow!("rendering chart {:?}: {e}", self.title))?;
        }
        Ok(svg)
    }

    /// Writes the PNG atomically to `path`.
    pub fn save_png(&self, path: &std::path::Path) -> Result<()> {
        crate::io::write_atomic(path, &self.to_png()?)
    }

    fn check(&self) -> Result<((f64, f64), (f64, f64))> {
        if self.series.iter().all(|s| s.points.is_empty()) {
            bail!("chart {:?} has no points to draw", self.title);
        }
        for s in &self.series {
            if let Some((i, p)) = s.points.iter().enumerate().find(|(_, (x, y))| !x.is_finite() || !y.is_finite()) {
                bail!("chart {:?}: series {:?} has a non-finite point {p:?} at index {i}", self.title, s.name);
            }
        }
        let pts = || self.series.iter().flat_map(|s| s.points.iter());
        let xs = self.markers.iter().map(|m| m.0).chain(pts().map(|p| p.0));
        let x = span(xs);
        let y = span(pts().map(|p| p.1));
        Ok((x, y))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (x, y) = self.check()?;
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing chart {:?}: {e}", self.title);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(s.name.as_str())
                .legend(move |(lx, ly)| PathElement::new([(lx, ly), (lx + 16, ly)], color.stroke_width(2)));
            if let [p] = s.points.as_slice() {
                chart.draw_series([Circle::new(*p, 4, color.filled())]).map_err(err)?;
            }
        }
        for (mx, label) in &self.markers {
            let style = BLACK.mix(0.5).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new([(*mx, y.0), (*mx, y.1)], 6, 4, style))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(lx, ly)| PathElement::new([(lx, ly), (lx + 16, ly)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// Min/max of the values, widened so a constant series still gets a visible range.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi > lo {
        let pad = (hi - lo) * 0.04;
        (lo - pad, hi + pad)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart::new("loss", "step", "loss")
            .series(Series::from_values("train", [3.0, 2.0, 1.5, 1.2]))
            .series(Series::new("eval", [(0.0, 3.1), (3.0, 1.4)]))
            .marker(2.0, "stage 2")
    }

    #[test]
    fn png_decodes_to_the_requested_size_and_is_not_blank() {
        let png = chart().to_png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (720, 420));
        let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(non_white > 2_000, "only {non_white} drawn pixels");
    }

    #[test]
    fn svg_contains_title_legend_and_curves() {
        let svg = chart().to_svg().unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("loss") && svg.contains("stage 2") && svg.contains("<polyline")
        );
    }

    #[test]
    fn non_finite_points_and_empty_charts_are_errors_naming_the_series() {
        let bad = LineChart::new("kl", "step", "kl").series(Series::from_values("policy", [0.1, f64::NAN]));
        let err = bad.to_png().unwrap_err().to_string();
        assert!(err.contains("\"policy\"") && err.contains("index 1"), "{err}");
        let empty = LineChart::new("kl", "step", "kl");
        assert!(empty.to_svg().unwrap_err().to_string().contains("no points"));
    }

    #[test]
    fn a_single_point_is_drawn_as_a_dot() {
        let red = Palette99::pick(0).to_rgba();
        let colour = [red.0, red.1, red.2];
        let drawn = |points: &[(f64, f64)]| {
            let chart = LineChart::new("one cell", "cell", "acc").series(Series::new("mean", points.iter().copied()));
            let img = image::load_from_memory(&chart.to_png().unwrap()).unwrap().to_rgb8();
            img.pixels().filter(|p| p.0 == colour).count()
        };
        // The legend's sample line is in the series colour too: the dot must add pixels to it.
        let legend_only = drawn(&[(0.0, 1.0), (0.0, 1.0)]);
        assert!(drawn(&[(0.0, 62.2)]) > legend_only + 20, "no dot drawn over the legend's {legend_only} pixels");
    }

    #[test]
    fn constant_series_gets_a_range() {
        assert_eq!(span([2.0, 2.0].into_iter()), (1.5, 2.5));
        LineChart::new("flat", "x", "y").series(Series::from_values("c", [1.0; 5])).to_png().unwrap();
    }
}
