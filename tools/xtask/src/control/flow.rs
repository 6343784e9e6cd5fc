//! The flow drawn as the server sees it: the three services and the topics between them as an
//! SVG, each service coloured by its state, live rates on the arrows (orders/s into
//! `grocery.orders.v1`, pick lists/s out of fulfillment, status changes/s on
//! `grocery.order-status.v1`, dead letters/s into `grocery.orders.v1.dlq`) and the fulfillment
//! group's lag on the arrow it reads. Rates are the topics' watermarks over the last seconds
//! (`observe`), not the services' own counts: what Kafka holds.

use std::fmt::Write as _;

use grocery_events::topics;

use super::charts::escape;

/// What the flow shows.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rates {
    pub(crate) orders_per_s: f64,
    pub(crate) picklists_per_s: f64,
    pub(crate) statuses_per_s: f64,
    pub(crate) dead_letters_per_s: f64,
    pub(crate) dead_lettered: i64,
    pub(crate) lag_total: Option<i64>,
}

/// A box's left edge, top, and the box size.
const W: f64 = 140.0;
const H: f64 = 54.0;
const COLUMNS: [f64; 5] = [10.0, 240.0, 470.0, 700.0, 930.0];
const ROW: [f64; 2] = [34.0, 190.0];

/// The flow as SVG: `states` gives each service's state as the page shows it (`running`, …).
pub(crate) fn svg(rates: &Rates, states: &[(&str, &str)]) -> String {
    let state = |name: &str| {
        states
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("not started", |(_, s)| *s)
    };
    let mut svg = String::new();
    svg.push_str(
        r##"<svg id="flow-svg" viewBox="0 0 1080 260" role="img" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif"><defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>"##,
    );
    let dlq = topics::dead_letter(topics::ORDERS);
    // Services (rectangles) and topics (rounded, tinted).
    service(
        &mut svg,
        COLUMNS[0],
        ROW[0],
        "order-producer",
        state("order-producer"),
    );
    topic(&mut svg, COLUMNS[1], ROW[0], topics::ORDERS, "");
    service(
        &mut svg,
        COLUMNS[2],
        ROW[0],
        "fulfillment-service",
        state("fulfillment-service"),
    );
    topic(&mut svg, COLUMNS[3], ROW[0], topics::PICKLISTS, "");
    service(
        &mut svg,
        COLUMNS[4],
        ROW[0],
        "picklist-consumer",
        state("picklist-consumer"),
    );
    topic(
        &mut svg,
        COLUMNS[1],
        ROW[1],
        &dlq,
        &format!("{} dead-lettered", rates.dead_lettered),
    );
    topic(
        &mut svg,
        COLUMNS[3],
        ROW[1],
        topics::ORDER_STATUS,
        &format!("{} changes/s", rate(rates.statuses_per_s)),
    );
    let mid = ROW[0] + H / 2.0;
    // Along the top row: each arrow from a box's right edge to the next box's left edge.
    let along = |i: usize| (COLUMNS[i] + W, mid, COLUMNS[i + 1], mid);
    let lag = rates
        .lag_total
        .map_or("lag –".to_owned(), |lag| format!("lag {lag}"));
    arrow(
        &mut svg,
        along(0),
        "flow-orders",
        &format!("{} orders/s", rate(rates.orders_per_s)),
    );
    arrow(&mut svg, along(1), "flow-lag", &lag);
    arrow(
        &mut svg,
        along(2),
        "flow-picklists",
        &format!("{} pick lists/s", rate(rates.picklists_per_s)),
    );
    arrow(&mut svg, along(3), "flow-shown", "shown to staff");
    // Down to the second row: dead letters and statuses from fulfillment, staff steps.
    let bottom = ROW[0] + H;
    arrow(
        &mut svg,
        (COLUMNS[2] + 30.0, bottom, COLUMNS[1] + W - 20.0, ROW[1]),
        "flow-dead-letters",
        &format!("{} dead letters/s", rate(rates.dead_letters_per_s)),
    );
    arrow(
        &mut svg,
        (COLUMNS[2] + W - 30.0, bottom, COLUMNS[3] + 20.0, ROW[1]),
        "flow-statuses",
        "fulfillment statuses",
    );
    arrow(
        &mut svg,
        (COLUMNS[4] + 40.0, bottom, COLUMNS[3] + W - 10.0, ROW[1]),
        "flow-staff",
        "staff steps",
    );
    svg.push_str("</svg>");
    svg
}

fn rate(v: f64) -> String {
    format!("{v:.1}")
}

fn service(svg: &mut String, x: f64, y: f64, name: &str, state: &str) {
    let (fill, stroke) = match state {
        "running" => ("#e3f3e6", "#176b2c"),
        "exited" => ("#f8e1e1", "#b00"),
        _ => ("#eeeeee", "#777"),
    };
    let _ = write!(
        svg,
        r##"<g id="flow-{name}" data-state="{state}"><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="2"/><text x="{tx}" y="{t1}" text-anchor="middle" font-size="13" font-weight="bold">{name}</text><text x="{tx}" y="{t2}" text-anchor="middle" font-size="11" fill="{stroke}">{state}</text></g>"##,
        tx = x + W / 2.0,
        t1 = y + 22.0,
        t2 = y + 40.0,
        state = escape(state),
    );
}

fn topic(svg: &mut String, x: f64, y: f64, name: &str, note: &str) {
    let _ = write!(
        svg,
        r##"<g><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="16" fill="#eef3fb" stroke="#1f6fb2"/><text x="{tx}" y="{t1}" text-anchor="middle" font-size="11" font-family="monospace">{name}</text><text x="{tx}" y="{t2}" text-anchor="middle" font-size="11" fill="#1f6fb2">{note}</text></g>"##,
        tx = x + W / 2.0,
        t1 = y + 24.0,
        t2 = y + 40.0,
        name = escape(name),
        note = escape(note),
    );
}

/// An arrow from `(x1, y1)` to `(x2, y2)` with `label` (its element id `id`) beside its middle:
/// on a horizontal arrow its first word above the line and the rest below (the gaps between
/// boxes are narrow), else beside the line, on the side away from the boxes it joins.
fn arrow(svg: &mut String, (x1, y1, x2, y2): (f64, f64, f64, f64), id: &str, label: &str) {
    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let _ = write!(
        svg,
        r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#444" stroke-width="2" marker-end="url(#flow-arrow)"/>"##
    );
    if (y1 - y2).abs() < 1.0 {
        let (first, rest) = label.split_once(' ').unwrap_or((label, ""));
        let _ = write!(
            svg,
            r##"<text id="{id}" text-anchor="middle" font-size="11" font-weight="bold"><tspan x="{mx}" y="{above}">{first} </tspan><tspan x="{mx}" y="{below}">{rest}</tspan></text>"##,
            above = my - 7.0,
            below = my + 15.0,
            first = escape(first),
            rest = escape(rest),
        );
    } else {
        // Left of a line going down-left, right of one going down-right or straight down.
        let (lx, anchor) = if x2 < x1 && x1 < COLUMNS[4] {
            (mx - 8.0, "end")
        } else {
            (mx + 8.0, "start")
        };
        let _ = write!(
            svg,
            r##"<text id="{id}" x="{lx}" y="{my}" text-anchor="{anchor}" font-size="11" font-weight="bold">{label}</text>"##,
            label = escape(label),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates are on their arrows, the services coloured by state.
    #[test]
    fn the_flow_names_each_rate_on_its_arrow() {
        let rates = Rates {
            orders_per_s: 40.04,
            picklists_per_s: 39.5,
            statuses_per_s: 120.0,
            dead_letters_per_s: 0.2,
            dead_lettered: 1,
            lag_total: Some(7),
        };
        let svg = svg(
            &rates,
            &[
                ("order-producer", "running"),
                ("fulfillment-service", "stopped"),
            ],
        );
        assert!(svg.contains(r#"id="flow-orders""#), "{svg}");
        assert!(svg.contains(">40.0 </tspan>"), "{svg}");
        assert!(svg.contains(">orders/s</tspan>"), "{svg}");
        assert!(svg.contains(">39.5 </tspan>"));
        assert!(svg.contains(">0.2 dead letters/s<"));
        assert!(svg.contains(">1 dead-lettered<"));
        assert!(svg.contains(">120.0 changes/s<"));
        assert!(svg.contains(">lag </tspan>"));
        assert!(svg.contains(">7</tspan>"));
        assert!(svg.contains(r#"id="flow-order-producer" data-state="running""#));
        assert!(svg.contains(r#"id="flow-fulfillment-service" data-state="stopped""#));
        assert!(svg.contains(r#"id="flow-picklist-consumer" data-state="not started""#));
        assert!(svg.contains("grocery.orders.v1.dlq"));
        assert!(svg.ends_with("</svg>"));
    }
}
