//! A small dependency-free SVG plotter for reports: lines, dashed lines and markers, linear or
//! logarithmic axes (log ticks at powers of 10), a legend, distinct colours, XML-escaped text,
//! and a valid standalone SVG document.
//!
//! ```
//! use vqsgd::plot::{Plot, Series, Style};
//! let mut p = Plot::new("loss", "step", "loss");
//! p.series.push(Series::new("run a", vec![(1.0, 2.0), (2.0, 1.0)], Style::Line));
//! let svg = p.to_svg(640, 400);
//! assert!(svg.starts_with("<?xml"));
//! ```

use std::fmt::Write as _;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Solid polyline.
    Line,
    /// Dashed polyline.
    Dashed,
    /// One marker per point, no line.
    Markers,
}

/// One named data series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points; non-finite points (and non-positive ones on log axes) are skipped.
    pub points: Vec<(f64, f64)>,
    /// Drawing style.
    pub style: Style,
}

impl Series {
    /// A series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Self {
            name: name.into(),
            points,
            style,
        }
    }
}

/// A 2-D plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// Title above the axes.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The data.
    pub series: Vec<Series>,
}

/// Colour-blind-friendly palette (Okabe-Ito plus extras), cycled.
const COLOURS: [&str; 10] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
    "#7F3C8D", "#8C564B",
];

/// Escape text for XML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// Compact tick label.
fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        if (m.abs() - 1.0).abs() < 1e-9 {
            return format!("{}1e{e}", if v < 0.0 { "-" } else { "" });
        }
        return format!("{m:.1}e{e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// One axis: data range to pixels.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn new(vals: impl Iterator<Item = f64>, log: bool) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vals {
            let t = if log { v.log10() } else { v };
            lo = lo.min(t);
            hi = hi.max(t);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo.abs() > 1e-12 {
                lo.abs() * 0.1
            } else {
                1.0
            };
            (lo, hi) = (lo - pad, hi + pad);
        }
        if log {
            (lo, hi) = (lo.floor(), hi.ceil());
        } else {
            let pad = 0.05 * (hi - lo);
            (lo, hi) = (lo - pad, hi + pad);
        }
        Self { log, lo, hi }
    }

    /// Position in [0, 1].
    fn frac(&self, v: f64) -> f64 {
        let t = if self.log { v.log10() } else { v };
        (t - self.lo) / (self.hi - self.lo)
    }

    /// Tick values (data units).
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.lo as i32, self.hi as i32);
            let step = ((b - a) / 8).max(1);
            (a..=b)
                .step_by(step as usize)
                .map(|e| 10f64.powi(e))
                .collect()
        } else {
            let span = self.hi - self.lo;
            let raw = span / 6.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap();
            let mut t = (self.lo / step).ceil() * step;
            let mut v = Vec::new();
            while t <= self.hi + 1e-9 * step {
                v.push(if t.abs() < 1e-12 * step { 0.0 } else { t });
                t += step;
            }
            v
        }
    }
}

impl Plot {
    /// An empty plot with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series: Vec::new(),
        }
    }

    fn usable(&self, p: (f64, f64)) -> bool {
        p.0.is_finite()
            && p.1.is_finite()
            && (!self.log_x || p.0 > 0.0)
            && (!self.log_y || p.1 > 0.0)
    }

    /// Render as a standalone SVG document of `width` x `height` pixels.
    pub fn to_svg(&self, width: u32, height: u32) -> String {
        let (w, h) = (f64::from(width.max(200)), f64::from(height.max(150)));
        let legend_w = 12.0 + legend_text_width(self.series.iter().map(|s| s.name.as_str()));
        let (ml, mr, mt, mb) = (70.0, 20.0 + legend_w.min(w * 0.4), 40.0, 55.0);
        let (pw, ph) = ((w - ml - mr).max(10.0), (h - mt - mb).max(10.0));
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().copied())
                .filter(|&p| self.usable(p))
        };
        let ax = Axis::new(pts().map(|p| p.0), self.log_x);
        let ay = Axis::new(pts().map(|p| p.1), self.log_y);
        let px = |x: f64| ml + ax.frac(x) * pw;
        let py = |y: f64| mt + (1.0 - ay.frac(y)) * ph;
        let mut o = String::new();
        let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(
            o,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
            ml + pw / 2.0,
            xml_escape(&self.title)
        );
        // Grid and ticks.
        for t in ax.ticks() {
            let x = px(t);
            let _ = writeln!(
                o,
                "<line x1=\"{x:.1}\" y1=\"{mt:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                mt + ph
            );
            let _ = writeln!(
                o,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                mt + ph + 16.0,
                xml_escape(&fmt_tick(t))
            );
        }
        for t in ay.ticks() {
            let y = py(t);
            let _ = writeln!(
                o,
                "<line x1=\"{ml:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
                ml + pw
            );
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                ml - 6.0,
                y + 4.0,
                xml_escape(&fmt_tick(t))
            );
        }
        let _ = writeln!(
            o,
            "<rect x=\"{ml:.1}\" y=\"{mt:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" \
             stroke=\"black\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            ml + pw / 2.0,
            h - 12.0,
            xml_escape(&self.x_label)
        );
        let _ = writeln!(
            o,
            "<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
            mt + ph / 2.0,
            mt + ph / 2.0,
            xml_escape(&self.y_label)
        );
        // Series.
        for (si, s) in self.series.iter().enumerate() {
            let col = COLOURS[si % COLOURS.len()];
            // Once the colours repeat, solid lines of the next round are dotted (dashes mark
            // incomplete runs), so no two lines of a plot look the same.
            let dash = match (s.style, (si / COLOURS.len()) % 2) {
                (Style::Dashed, _) => " stroke-dasharray=\"6,4\"",
                (Style::Line, 1) => " stroke-dasharray=\"1.5,3\"",
                _ => "",
            };
            let p: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|&p| self.usable(p))
                .map(|(x, y)| (px(x), py(y)))
                .collect();
            match s.style {
                Style::Line | Style::Dashed => {
                    if !p.is_empty() {
                        let d: Vec<String> =
                            p.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                        let _ = writeln!(
                            o,
                            "<polyline points=\"{}\" fill=\"none\" stroke=\"{col}\" stroke-width=\"2\"{dash}/>",
                            d.join(" ")
                        );
                    }
                }
                Style::Markers => {
                    for (x, y) in &p {
                        let _ = writeln!(
                            o,
                            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{col}\"/>"
                        );
                    }
                }
            }
            // Legend entry.
            let ly = mt + 10.0 + 18.0 * si as f64;
            let lx = ml + pw + 12.0;
            match s.style {
                Style::Markers => {
                    let _ = writeln!(
                        o,
                        "<circle cx=\"{:.1}\" cy=\"{ly:.1}\" r=\"3.5\" fill=\"{col}\"/>",
                        lx + 9.0
                    );
                }
                _ => {
                    let _ = writeln!(
                        o,
                        "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{col}\" stroke-width=\"2\"{dash}/>",
                        lx + 18.0
                    );
                }
            }
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 24.0,
                ly + 4.0,
                xml_escape(&s.name)
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

/// Pixels the longest legend entry of `names` needs (about 7 px per character at 12 px).
fn legend_text_width<'a>(names: impl Iterator<Item = &'a str>) -> f64 {
    7.0 * names.map(|n| n.chars().count()).max().unwrap_or(0) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check that every opened tag is closed in order (self-closing tags count as both).
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let j = match rest.find('>') {
                Some(j) => j,
                None => return false,
            };
            let tag = &rest[..j];
            rest = &rest[j + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        stack.is_empty() && !rest.contains('>')
    }

    #[test]
    fn svg_is_balanced_and_names_every_series() {
        let mut p = Plot::new("bits <vs> error & \"more\"", "bits", "error");
        p.log_x = true;
        p.log_y = true;
        p.series.push(Series::new(
            "a < b",
            vec![(10.0, 1.0), (1e5, 1e-3)],
            Style::Line,
        ));
        p.series.push(Series::new(
            "bound",
            vec![(100.0, 0.5), (1e4, 0.01)],
            Style::Dashed,
        ));
        p.series.push(Series::new(
            "pts & co",
            vec![(50.0, 0.2), (-1.0, 0.1)],
            Style::Markers,
        ));
        p.series.push(Series::new("empty", vec![], Style::Line));
        let svg = p.to_svg(800, 500);
        assert!(balanced(&svg), "{svg}");
        for name in ["a &lt; b", "bound", "pts &amp; co", "empty"] {
            assert!(svg.contains(name), "missing {name}");
        }
        assert!(svg.contains(">1e-3<") || svg.contains(">0.001<"));
        assert!(svg.contains("stroke-dasharray"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Linear axes and a degenerate range.
        let mut q = Plot::new("t", "x", "y");
        q.series.push(Series::new(
            "flat",
            vec![(1.0, 3.0), (2.0, 3.0)],
            Style::Line,
        ));
        let svg = q.to_svg(300, 200);
        assert!(balanced(&svg) && !svg.contains("NaN"));
    }
}

/// One named series of a [`BarChart`]: one value per category (missing or non-finite values
/// draw no bar).
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    /// Legend label.
    pub name: String,
    /// One value per category of the chart.
    pub values: Vec<f64>,
}

impl BarSeries {
    /// A bar series.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

/// Vertical bars: one cluster per category, the series side by side (grouped) or on top of one
/// another (stacked). Every bar carries a `<title>` tooltip with its exact value.
///
/// ```
/// use vqsgd::plot::{BarChart, BarSeries};
/// let mut c = BarChart::new("time split", "run", "seconds");
/// c.categories = vec!["a".into(), "b".into()];
/// c.series.push(BarSeries::new("compute", vec![1.0, 2.0]));
/// c.series.push(BarSeries::new("comm", vec![0.5, 0.1]));
/// c.stacked = true;
/// assert!(c.to_svg(640, 400).contains("<rect"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Title above the axes.
    pub title: String,
    /// X axis label (under the category names).
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Category names, one cluster of bars each.
    pub categories: Vec<String>,
    /// The data.
    pub series: Vec<BarSeries>,
    /// Stack the series instead of placing them side by side.
    pub stacked: bool,
    /// Logarithmic y axis (grouped bars only; bars start at the bottom decade; values <= 0 are
    /// not drawn).
    pub log_y: bool,
}

impl BarChart {
    /// An empty grouped bar chart with a linear y axis starting at zero.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            stacked: false,
            log_y: false,
        }
    }

    fn value(&self, s: usize, c: usize) -> f64 {
        self.series[s]
            .values
            .get(c)
            .copied()
            .filter(|v| v.is_finite())
            .unwrap_or(0.0)
    }

    /// Render as a standalone SVG document of `width` x `height` pixels.
    pub fn to_svg(&self, width: u32, height: u32) -> String {
        let (w, h) = (f64::from(width.max(200)), f64::from(height.max(150)));
        let log = self.log_y && !self.stacked;
        let nc = self.categories.len().max(1);
        let legend_w = 36.0 + legend_text_width(self.series.iter().map(|s| s.name.as_str()));
        let (mut ml, mr, mt) = (70.0, 20.0 + legend_w.min(w * 0.4), 40.0);
        // Category names: horizontal when they fit under their cluster, else slanted by 40
        // degrees, with room below (and to the left, for the first one) for the longest.
        let max_chars = self
            .categories
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0);
        let text_w = 6.5 * max_chars as f64;
        let slant = text_w > (w - ml - mr) / nc as f64 - 4.0;
        let mb = if slant {
            let first = self.categories.first().map_or(0, |c| c.chars().count()) as f64;
            ml = f64::max(
                ml,
                (6.5 * first * 0.766 - (w - ml - mr) / nc as f64 / 2.0 + 10.0).min(w * 0.3),
            );
            45.0 + (text_w * 0.643).min(h * 0.4)
        } else {
            55.0
        };
        let (pw, ph) = ((w - ml - mr).max(10.0), (h - mt - mb).max(10.0));
        let ay = if log {
            Axis::new(
                (0..self.series.len())
                    .flat_map(|s| (0..nc).map(move |c| (s, c)))
                    .map(|(s, c)| self.value(s, c))
                    .filter(|v| *v > 0.0),
                true,
            )
        } else {
            let top = (0..nc)
                .map(|c| {
                    let vals = (0..self.series.len()).map(|s| self.value(s, c).max(0.0));
                    if self.stacked {
                        vals.sum::<f64>()
                    } else {
                        vals.fold(0.0, f64::max)
                    }
                })
                .fold(0.0, f64::max);
            Axis {
                log: false,
                lo: 0.0,
                hi: if top > 0.0 { top * 1.08 } else { 1.0 },
            }
        };
        let py = |y: f64| mt + (1.0 - ay.frac(y).clamp(0.0, 1.0)) * ph;
        let base = mt + ph;
        let mut o = String::new();
        let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(
            o,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
            ml + pw / 2.0,
            xml_escape(&self.title)
        );
        for t in ay.ticks() {
            let y = py(t);
            let _ = writeln!(
                o,
                "<line x1=\"{ml:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
                ml + pw
            );
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                ml - 6.0,
                y + 4.0,
                xml_escape(&fmt_tick(t))
            );
        }
        let cw = pw / nc as f64;
        let ns = self.series.len().max(1);
        for (c, cat) in self.categories.iter().enumerate() {
            let x0 = ml + cw * c as f64;
            let mut stack = 0.0;
            for (s, ser) in self.series.iter().enumerate() {
                let col = COLOURS[s % COLOURS.len()];
                let v = self.value(s, c);
                if v <= 0.0 {
                    continue;
                }
                let (x, bw, top, bottom) = if self.stacked {
                    let bw = cw * 0.6;
                    let r = (x0 + (cw - bw) / 2.0, bw, py(stack + v), py(stack));
                    stack += v;
                    r
                } else {
                    let bw = cw * 0.8 / ns as f64;
                    (x0 + cw * 0.1 + bw * s as f64, bw, py(v), base)
                };
                let _ = writeln!(
                    o,
                    "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" \
                     fill=\"{col}\"><title>{}: {}</title></rect>",
                    (bottom - top).max(0.0),
                    xml_escape(&format!("{cat} / {}", ser.name)),
                    xml_escape(&fmt_tick(v))
                );
            }
            let cx = x0 + cw / 2.0;
            let ty = base + 16.0;
            if slant {
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" \
                     transform=\"rotate(-40 {cx:.1} {ty:.1})\">{}</text>",
                    xml_escape(cat)
                );
            } else {
                let _ = writeln!(
                    o,
                    "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{}</text>",
                    xml_escape(cat)
                );
            }
        }
        let _ = writeln!(
            o,
            "<rect x=\"{ml:.1}\" y=\"{mt:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" \
             stroke=\"black\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            ml + pw / 2.0,
            h - 10.0,
            xml_escape(&self.x_label)
        );
        let _ = writeln!(
            o,
            "<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
            mt + ph / 2.0,
            mt + ph / 2.0,
            xml_escape(&self.y_label)
        );
        for (s, ser) in self.series.iter().enumerate() {
            let col = COLOURS[s % COLOURS.len()];
            let ly = mt + 10.0 + 18.0 * s as f64;
            let lx = ml + pw + 12.0;
            let _ = writeln!(
                o,
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"18\" height=\"10\" fill=\"{col}\"/>",
                ly - 5.0
            );
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 24.0,
                ly + 4.0,
                xml_escape(&ser.name)
            );
        }
        o.push_str("</svg>\n");
        o
    }
}
