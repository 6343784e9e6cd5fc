//! The last minutes as the page charts them: one [`Point`] per sample (once a second) in a ring
//! of at most [`POINTS`] (five minutes), and each chart drawn by the server as an SVG of
//! polylines, one per series, with its latest value in the legend.
//!
//! Bounded whatever the run's length: the ring drops its oldest point past [`POINTS`], and a
//! chart has at most that many points per series.

use std::{collections::VecDeque, fmt::Write as _};

use serde::Serialize;

/// Points kept: five minutes at one sample per second.
pub(crate) const POINTS: usize = 300;

/// Width and height of a chart's plot area, in SVG units.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 140.0;
/// Left margin (the axis labels) and the legend's height.
const LEFT: f64 = 48.0;
const LEGEND: f64 = 20.0;

/// Colours of a chart's series, in order.
const COLOURS: [&str; 6] = [
    "#1f6fb2", "#d9822b", "#2e8b57", "#a03cb4", "#b22222", "#555555",
];

/// One sample of the figures the page charts.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Point {
    /// When it was taken (ms since the Unix epoch).
    pub(crate) at_ms: i64,
    pub(crate) orders_per_s: f64,
    pub(crate) picklists_per_s: f64,
    /// The fulfillment group's lag per partition of the orders topic.
    pub(crate) lag: Vec<i64>,
    /// Order → pick list latency over the last minute.
    pub(crate) p50_ms: Option<i64>,
    pub(crate) p99_ms: Option<i64>,
}

/// The last [`POINTS`] samples, the oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    points: VecDeque<Point>,
}

impl History {
    /// Adds `point`, dropping the oldest past [`POINTS`].
    pub(crate) fn push(&mut self, point: Point) {
        if self.points.len() == POINTS {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The three charts: rates, lag per partition, latency.
    pub(crate) fn charts(&self) -> Charts {
        let rates = [
            ("orders/s", self.series(|p| Some(p.orders_per_s))),
            ("pick lists/s", self.series(|p| Some(p.picklists_per_s))),
        ];
        let partitions = self.points.iter().map(|p| p.lag.len()).max().unwrap_or(0);
        let lag: Vec<(String, Vec<Option<f64>>)> = (0..partitions)
            .map(|i| {
                let series = self.series(|p| p.lag.get(i).map(|&lag| lag as f64));
                (format!("partition {i}"), series)
            })
            .collect();
        let latency = [
            ("p50 ms", self.series(|p| p.p50_ms.map(|v| v as f64))),
            ("p99 ms", self.series(|p| p.p99_ms.map(|v| v as f64))),
        ];
        Charts {
            points: self.points.len(),
            rates: chart("chart-rates", &rates),
            lag: chart("chart-lag", &lag),
            latency: chart("chart-latency", &latency),
        }
    }

    fn series(&self, value: impl Fn(&Point) -> Option<f64>) -> Vec<Option<f64>> {
        self.points.iter().map(value).collect()
    }
}

/// The charts as SVG text, and how many points they cover.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Charts {
    pub(crate) points: usize,
    pub(crate) rates: String,
    pub(crate) lag: String,
    pub(crate) latency: String,
}

/// An SVG chart with id `id`: one polyline per series (a gap where a value is missing), the
/// y axis from 0 to the largest value, time on the x axis (one point per sample, the newest
/// at the right edge); the legend names each series with its latest value.
fn chart(id: &str, series: &[(impl AsRef<str>, Vec<Option<f64>>)]) -> String {
    let max = series
        .iter()
        .flat_map(|(_, values)| values.iter().flatten())
        .fold(0.0_f64, |max, &v| max.max(v));
    let top = if max > 0.0 { nice(max) } else { 1.0 };
    let step = WIDTH / (POINTS - 1) as f64;
    let width = LEFT + WIDTH + 8.0;
    let height = HEIGHT + LEGEND + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg id="{id}" class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">"##
    );
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{LEGEND}" width="{WIDTH}" height="{HEIGHT}" fill="#fafbf8" stroke="#ccc"/>"##
    );
    for (fraction, label) in [(0.0, 0.0), (0.5, top / 2.0), (1.0, top)] {
        let y = LEGEND + HEIGHT * (1.0 - fraction);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y}" y2="{y}" stroke="#e4e4e4"/><text x="{tx}" y="{ty}" text-anchor="end" font-size="11" fill="#555">{label}</text>"##,
            x2 = LEFT + WIDTH,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            label = short(label),
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{y}" font-size="11" fill="#555">{minutes} min ago</text><text x="{x}" y="{y}" font-size="11" fill="#555" text-anchor="end">now</text>"##,
        y = LEGEND + HEIGHT + 14.0,
        minutes = POINTS / 60,
        x = LEFT + WIDTH,
    );
    let mut legend_x = LEFT;
    for ((name, values), colour) in series.iter().zip(COLOURS.iter().cycle()) {
        let offset = POINTS.saturating_sub(values.len());
        let mut runs: Vec<String> = vec![String::new()];
        let mut count = 0;
        for (i, value) in values.iter().enumerate() {
            match value {
                Some(v) => {
                    let x = LEFT + (offset + i) as f64 * step;
                    let y = LEGEND + HEIGHT * (1.0 - v / top);
                    let run = runs.last_mut().expect("one run at least");
                    let _ = write!(run, "{x:.1},{y:.1} ");
                    count += 1;
                }
                None if !runs.last().is_some_and(String::is_empty) => runs.push(String::new()),
                None => {}
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let _ = write!(
                svg,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"##,
                run.trim_end()
            );
        }
        let latest = values
            .iter()
            .rev()
            .find_map(|v| *v)
            .map_or("–".to_owned(), short);
        let name = escape(name.as_ref());
        let _ = write!(
            svg,
            r##"<rect x="{legend_x}" y="4" width="10" height="10" fill="{colour}"/><text x="{tx}" y="13" font-size="12" data-points="{count}">{name}: {latest}</text>"##,
            tx = legend_x + 14.0,
        );
        legend_x += 30.0 + 8.0 * (name.len() + latest.len()) as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The next "round" number at or above `v` (1, 2 or 5 times a power of ten).
fn nice(v: f64) -> f64 {
    let power = 10_f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&n| n >= v)
        .unwrap_or(10.0 * power)
}

/// A value as a label: whole when large, one decimal when small.
fn short(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `text` safe inside SVG text and attributes.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(n: i64) -> Point {
        Point {
            at_ms: n,
            orders_per_s: n as f64,
            picklists_per_s: 1.0,
            lag: vec![n, 0, 2],
            p50_ms: (n > 1).then_some(10),
            p99_ms: None,
        }
    }

    /// The ring keeps the last POINTS samples whatever the run's length.
    #[test]
    fn the_history_is_bounded() {
        let mut history = History::default();
        for n in 0..(POINTS as i64 + 50) {
            history.push(point(n));
        }
        assert_eq!(history.points.len(), POINTS);
        assert_eq!(history.points.front().unwrap().at_ms, 50);
    }

    /// One polyline per series with a value, the newest point at the right edge, the latest
    /// value in the legend; a series with no value yet draws nothing.
    #[test]
    fn charts_draw_one_polyline_per_series() {
        let mut history = History::default();
        for n in 0..4 {
            history.push(point(n));
        }
        let charts = history.charts();
        assert_eq!(charts.points, 4);
        assert_eq!(charts.rates.matches("<polyline").count(), 2);
        assert!(charts.rates.contains("orders/s: 3<"), "{}", charts.rates);
        assert!(charts.rates.contains(&format!("{:.1},", LEFT + WIDTH)));
        assert_eq!(charts.lag.matches("<polyline").count(), 3);
        assert!(charts.lag.contains("partition 2: 2<"));
        // p50 from the third point on; p99 never.
        assert_eq!(charts.latency.matches("<polyline").count(), 1);
        assert!(charts.latency.contains("p99 ms: –<"));
        assert!(charts.latency.contains(r#"data-points="2">p50 ms"#));
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice(0.7), 1.0);
        assert_eq!(nice(37.0), 50.0);
        assert_eq!(nice(120.0), 200.0);
        assert_eq!(nice(1000.0), 1000.0);
    }
}
