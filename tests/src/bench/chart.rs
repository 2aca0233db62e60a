//! The charts of a run, as SVG files (plotters' SVG backend): throughput by case against each
//! reference, request rates by case, and throughput and rates against the number of workers.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{Case, Row, System};

const SIZE: (u32, u32) = (1000, 560);
/// One colour per series, in order.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing: {e}")
}

/// Bars: one group per label, one bar per series in each group (`None`: not measured).
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

/// Lines: one per series, over `x` (workers).
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// The bar chart of `rows` whose case `wanted` picks, by case and system, in row order.
pub fn bars_of(rows: &[Row], title: &str, y_label: &str, wanted: impl Fn(&Row) -> bool) -> Bars {
    let picked: Vec<&Row> = rows
        .iter()
        .filter(|r| wanted(r) && r.value().is_some())
        .collect();
    let mut groups: Vec<Case> = Vec::new();
    let mut systems: Vec<System> = Vec::new();
    for r in &picked {
        if !groups.contains(&r.case) {
            groups.push(r.case);
        }
        if !systems.contains(&r.system) {
            systems.push(r.system);
        }
    }
    let series = systems
        .iter()
        .map(|&s| {
            let values = groups
                .iter()
                .map(|&c| {
                    picked
                        .iter()
                        .find(|r| r.case == c && r.system == s)
                        .and_then(|r| r.value())
                })
                .collect();
            (s.title().to_string(), values)
        })
        .collect();
    Bars {
        title: title.to_string(),
        y_label: y_label.to_string(),
        groups: groups.iter().map(|c| c.label()).collect(),
        series,
    }
}

/// The lines of the scaling rows `wanted` picks: one per case, system and queue count, the
/// figure over the workers.
pub fn lines_of(rows: &[Row], title: &str, y_label: &str, wanted: impl Fn(&Row) -> bool) -> Lines {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows.iter().filter(|r| r.scenario == 6 && wanted(r)) {
        let (Some(w), Some(v)) = (r.workers, r.value()) else {
            continue;
        };
        let mut name = format!("{}, {}", r.case.label(), r.system.title());
        if let Some(q) = r.queues {
            name.push_str(&format!(", {q} queue(s)"));
        }
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push((w as f64, v)),
            None => series.push((name, vec![(w as f64, v)])),
        }
    }
    Lines {
        title: title.to_string(),
        x_label: "workers (network and transport each)".to_string(),
        y_label: y_label.to_string(),
        series,
    }
}

fn top(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, f64::max);
    if max > 0.0 {
        max * 1.15
    } else {
        1.0
    }
}

fn draw_bars(area: &DrawingArea<SVGBackend, Shift>, b: &Bars) -> DrawResult<()> {
    let n = b.groups.len().max(1);
    let ymax = top(b
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied()));
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(b.y_label.as_str())
        .draw()
        .map_err(err)?;
    let k = b.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (j, (name, values)) in b.series.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let bars = values.iter().enumerate().filter_map(|(i, v)| {
            let x0 = i as f64 + 0.1 + j as f64 * width;
            v.map(|v| Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], colour.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    // Group labels under the axis, centred on each group, a line per word pair.
    for (i, label) in b.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        let style =
            TextStyle::from(("sans-serif", 13)).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ));
        area.draw(&Text::new(label.clone(), (x, y + 8), style))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_lines(area: &DrawingArea<SVGBackend, Shift>, l: &Lines) -> DrawResult<()> {
    let xmax = l
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .fold(1.0f64, f64::max);
    let ymax = top(l.series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)));
    let mut chart = ChartBuilder::on(area)
        .caption(&l.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..xmax + 0.5, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(l.x_label.as_str())
        .y_desc(l.y_label.as_str())
        .x_labels(xmax as usize + 1)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(err)?;
    for (j, (name, points)) in l.series.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let mut points = points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Writes `b` to `path`; nothing when it has no bars.
pub fn write_bars(path: &Path, b: &Bars) -> DrawResult<Option<PathBuf>> {
    if b.groups.is_empty() {
        return Ok(None);
    }
    let area = SVGBackend::new(path, SIZE).into_drawing_area();
    area.fill(&WHITE).map_err(err)?;
    draw_bars(&area, b)?;
    area.present().map_err(err)?;
    Ok(Some(path.to_path_buf()))
}

/// Writes `charts` side by side to `path`; nothing when none has a line.
pub fn write_lines(path: &Path, charts: &[Lines]) -> DrawResult<Option<PathBuf>> {
    let charts: Vec<&Lines> = charts.iter().filter(|l| !l.series.is_empty()).collect();
    if charts.is_empty() {
        return Ok(None);
    }
    let area = SVGBackend::new(path, (SIZE.0, SIZE.1 * charts.len() as u32)).into_drawing_area();
    area.fill(&WHITE).map_err(err)?;
    for (part, l) in area.split_evenly((charts.len(), 1)).iter().zip(charts) {
        draw_lines(part, l)?;
    }
    area.present().map_err(err)?;
    Ok(Some(path.to_path_buf()))
}

/// Every chart of `rows` into `dir` as `<prefix>-throughput.svg`, `-rates.svg` and
/// `-scaling.svg`; the files written.
pub fn write_charts(dir: &Path, prefix: &str, rows: &[Row]) -> DrawResult<Vec<PathBuf>> {
    // smoltcp's own loopback framing (MTU 65535, no checksums) is an order of magnitude above
    // every other bar and would flatten them: it stays in the table only.
    let bulk = |r: &Row| {
        r.scenario <= 2
            && r.system != System::SmoltcpLoopbackBenchmark
            && r.result.as_ref().is_ok_and(|f| f.unit() == "Gbit/s")
    };
    let rates = |r: &Row| {
        matches!(r.scenario, 3 | 4)
            && !matches!(r.case, Case::UdpOneWay)
            && r.result.as_ref().is_ok_and(|f| f.unit().ends_with("/s"))
    };
    let mut written = Vec::new();
    let throughput = bars_of(
        rows,
        "TCP bulk throughput by case, beside each reference",
        "Gbit/s",
        bulk,
    );
    written.extend(write_bars(
        &dir.join(format!("{prefix}-throughput.svg")),
        &throughput,
    )?);
    let exchanges = bars_of(
        rows,
        "Request/response rates by case, beside Linux",
        "per second",
        rates,
    );
    written.extend(write_bars(
        &dir.join(format!("{prefix}-rates.svg")),
        &exchanges,
    )?);
    let scaling = [
        lines_of(rows, "TCP bulk against workers", "Gbit/s", |r| {
            matches!(
                r.case,
                Case::StackReceives | Case::StackSends | Case::MemoryBulk { .. }
            )
        }),
        lines_of(rows, "TCP exchanges against workers", "per second", |r| {
            matches!(r.case, Case::RequestResponse | Case::ConnectRequestClose)
        }),
    ];
    written.extend(write_lines(
        &dir.join(format!("{prefix}-scaling.svg")),
        &scaling,
    )?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Figure;
    use crate::bench::tcp::Outcome;
    use std::time::Duration;

    fn row(scenario: u8, case: Case, system: System, workers: Option<usize>, gbit: f64) -> Row {
        Row {
            scenario,
            case,
            system,
            workers,
            queues: workers.map(|_| 1),
            result: Ok(Figure::Bulk(Outcome {
                bytes: (gbit * 1e9 / 8.0) as u64,
                ops: 1,
                elapsed: Duration::from_secs(1),
                ..Outcome::default()
            })),
            samples: vec![gbit],
        }
    }

    #[test]
    fn charts_are_svg_files_with_every_series_named() {
        let on = System::NetstackTap { offload: true };
        let rows = vec![
            row(1, Case::StackReceives, on, None, 3.0),
            row(1, Case::StackReceives, System::LinuxVeth, None, 24.0),
            row(1, Case::StackSends, on, None, 1.5),
            row(
                2,
                Case::MemoryBulk { flows: 1 },
                System::NetstackMemory,
                None,
                9.0,
            ),
            row(6, Case::StackReceives, on, Some(1), 3.0),
            row(6, Case::StackReceives, on, Some(2), 3.5),
        ];
        let b = bars_of(&rows, "t", "Gbit/s", |r| r.scenario <= 2);
        assert_eq!(b.groups.len(), 3);
        assert_eq!(
            b.series[1].1,
            vec![Some(24.0), None, None],
            "Linux only where measured"
        );
        let dir = crate::system::ScratchDir::new("bench-chart");
        let written = write_charts(dir.path(), "run", &rows).unwrap();
        assert_eq!(written.len(), 2, "no rates were measured: {written:?}");
        let svg = std::fs::read_to_string(&written[0]).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("Linux, veth"),
            "{svg}"
        );
        let svg = std::fs::read_to_string(&written[1]).unwrap();
        assert!(svg.contains("offloads on, 1 queue(s)"), "{svg}");
    }
}
