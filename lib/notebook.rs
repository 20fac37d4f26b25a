//! Inline display in evcxr (Rust Jupyter) notebooks.
//!
//! evcxr shows a cell's output as rich content when stdout carries a block
//! `EVCXR_BEGIN_CONTENT <mime>\n<data>\nEVCXR_END_CONTENT` (binary data base64-encoded). The
//! types here print such blocks from `evcxr_display`, which evcxr calls on a cell's final
//! expression. A final expression that moves a local of the same cell falls back to `Debug`
//! (an evcxr limitation), so end such cells with an explicit `x.evcxr_display();`.
pub mod bridging;
pub mod evaluate;
pub mod grids;
pub mod lab;
pub mod runs;

use std::fmt::Write as _;

use base64::Engine as _;
use polars::prelude::DataFrame;

use crate::plot::LineChart;

/// Formats one display block (what [`Png::evcxr_display`] and friends print).
pub fn content_block(mime: &str, data: &str) -> String {
    format!("EVCXR_BEGIN_CONTENT {mime}\n{data}\nEVCXR_END_CONTENT")
}

/// PNG bytes shown as an image.
#[derive(Debug, Clone)]
pub struct Png(pub Vec<u8>);

impl Png {
    pub fn evcxr_display(&self) {
        println!("{}", content_block("image/png", &base64::engine::general_purpose::STANDARD.encode(&self.0)));
    }
}

/// An SVG document shown as an image.
#[derive(Debug, Clone)]
pub struct Svg(pub String);

impl Svg {
    pub fn evcxr_display(&self) {
        println!("{}", content_block("image/svg+xml", &self.0));
    }
}

/// An HTML fragment.
#[derive(Debug, Clone)]
pub struct Html(pub String);

impl Html {
    pub fn evcxr_display(&self) {
        println!("{}", content_block("text/html", &self.0));
    }
}

impl LineChart {
    /// Shows the chart inline as SVG; a chart that cannot be drawn shows the reason.
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => Svg(svg).evcxr_display(),
            Err(e) => println!("chart not drawn: {e:#}"),
        }
    }
}

/// A DataFrame as an HTML table (first `max_rows` rows), with its shape as the caption.
pub fn table(df: &DataFrame, max_rows: usize) -> Html {
    let mut html = String::from("<table>");
    let _ = write!(html, "<caption>{} rows × {} columns</caption><thead><tr>", df.height(), df.width());
    for col in df.columns() {
        let _ = write!(html, "<th>{}<br><small>{}</small></th>", escape(col.name()), escape(&col.dtype().to_string()));
    }
    html.push_str("</tr></thead><tbody>");
    for row in 0..df.height().min(max_rows) {
        html.push_str("<tr>");
        for col in df.columns() {
            let cell = col.get(row).map(|v| v.to_string()).unwrap_or_default();
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>");
    }
    if df.height() > max_rows {
        let _ = write!(html, "<tr><td colspan=\"{}\">… {} more rows</td></tr>", df.width(), df.height() - max_rows);
    }
    html.push_str("</tbody></table>");
    Html(html)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_evcxr_framing() {
        assert_eq!(
            content_block("text/html", "<b>x</b>"),
            "EVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT"
        );
    }

    #[test]
    fn table_escapes_cells_and_truncates_rows() {
        let df = polars::df!("name" => ["<a>", "b&c", "d"], "v" => [1i64, 2, 3]).unwrap();
        let Html(html) = table(&df, 2);
        assert!(html.contains("3 rows × 2 columns"));
        assert!(html.contains("&lt;a&gt;") && html.contains("b&amp;c") && !html.contains("<a>"));
        assert!(html.contains("… 1 more rows"));
        assert!(html.contains("<th>v<br><small>i64</small></th>"), "{html}");
    }
}
