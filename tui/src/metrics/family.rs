//! The exporter's metric model and its two encodings.
//!
//! The collector turns a snapshot into a list of [`Family`] values once per scrape; this
//! module writes them either as OpenMetrics 1.0 (through `prometheus-client`, the official
//! Rust client, whose text encoder writes only OpenMetrics) or as the Prometheus text format
//! 0.0.4 (a small encoder here: `prometheus-client` cannot write it, and scrapers that do not
//! ask for OpenMetrics, `curl` and `promtool check metrics` expect it). Keeping one model for
//! both means the two formats cannot disagree about names, labels or values.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// What kind of metric a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; samples are named `<name>_total`.
    Counter,
    /// A value that goes up and down; samples are named `<name>`.
    Gauge,
    /// Constant 1 carrying labels; samples are named `<name>_info`.
    Info,
}

/// A sample's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A whole number (counters, counts).
    Int(u64),
    /// A real number (ratios, seconds).
    Float(f64),
}

/// One series: its labels (the `interface` label first) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Label names and values, in output order.
    pub labels: Vec<(&'static str, String)>,
    /// The value; always 1 for info families.
    pub value: Value,
}

/// A metric family: name without the `_total` / `_info` suffix, help, kind and samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The base name, e.g. `traffic_counter_packets` for `traffic_counter_packets_total`.
    pub name: &'static str,
    /// One line of help, without a final period.
    pub help: &'static str,
    /// Counter, gauge or info.
    pub kind: Kind,
    /// The series.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds one series.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: Value) {
        self.samples.push(Sample { labels, value });
    }

    /// The name its samples carry in either format.
    pub fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge => self.name.to_owned(),
            Kind::Info => format!("{}_info", self.name),
        }
    }
}

/// Series in `families`: what the cardinality budget counts.
pub fn series(families: &[Family]) -> usize {
    families.iter().map(|f| f.samples.len()).sum()
}

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Writes `families` in the Prometheus text format 0.0.4. Empty families are left out.
pub fn encode_text(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let name = family.sample_name();
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}.", escape(family.help, false));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for sample in &family.samples {
            out.push_str(&name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (key, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape(value, true));
                }
                out.push('}');
            }
            let _ = match sample.value {
                Value::Int(v) => writeln!(out, " {v}"),
                Value::Float(v) => writeln!(out, " {}", float(v)),
            };
        }
    }
    out
}

/// Escapes backslash and newline (and, in label values, double quotes) as 0.0.4 requires.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Writes `families` as OpenMetrics 1.0 text, ending with `# EOF`. Empty families are left
/// out.
pub fn encode_openmetrics(families: Vec<Family>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(families)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The families of one scrape, handed to `prometheus-client` as a collector.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
            };
            let help = format!("{}.", family.help);
            let mut metric = encoder.encode_descriptor(family.name, &help, None, kind)?;
            for sample in &family.samples {
                if family.kind == Kind::Info {
                    metric.encode_info(&sample.labels)?;
                    continue;
                }
                let mut series = metric.encode_family(&sample.labels)?;
                match (family.kind, sample.value) {
                    (Kind::Counter, Value::Int(v)) => {
                        series.encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                    }
                    (Kind::Counter, Value::Float(v)) => {
                        series.encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                    }
                    (_, Value::Int(v)) => series.encode_gauge(&v)?,
                    (_, Value::Float(v)) => series.encode_gauge(&v)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_families() -> Vec<Family> {
        let mut packets = Family::new("tc_packets", "IP packets counted", Kind::Counter);
        packets.push(vec![("interface", "eth0".into())], Value::Int(42));
        let mut ratio = Family::new("tc_ratio", "A ratio", Kind::Gauge);
        ratio.push(
            vec![("interface", "eth0".into()), ("odd", "a\"b\\c\nd".into())],
            Value::Float(0.5),
        );
        let mut build = Family::new("tc_build", "Build", Kind::Info);
        build.push(
            vec![("interface", "eth0".into()), ("version", "1.2.3".into())],
            Value::Int(1),
        );
        let empty = Family::new("tc_empty", "Nothing", Kind::Counter);
        vec![packets, ratio, build, empty]
    }

    #[test]
    fn text_format_names_counters_total_and_info_as_gauges() {
        let text = encode_text(&sample_families());
        assert_eq!(
            text,
            "# HELP tc_packets_total IP packets counted.\n\
             # TYPE tc_packets_total counter\n\
             tc_packets_total{interface=\"eth0\"} 42\n\
             # HELP tc_ratio A ratio.\n\
             # TYPE tc_ratio gauge\n\
             tc_ratio{interface=\"eth0\",odd=\"a\\\"b\\\\c\\nd\"} 0.5\n\
             # HELP tc_build_info Build.\n\
             # TYPE tc_build_info gauge\n\
             tc_build_info{interface=\"eth0\",version=\"1.2.3\"} 1\n"
        );
        assert_eq!(series(&sample_families()), 3);
    }

    #[test]
    fn openmetrics_uses_family_names_and_ends_with_eof() {
        let text = encode_openmetrics(sample_families()).unwrap();
        assert!(text.contains("# TYPE tc_packets counter\n"), "{text}");
        assert!(
            text.contains("tc_packets_total{interface=\"eth0\"} 42\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE tc_build info\n"), "{text}");
        assert!(text.contains("tc_build_info{interface=\"eth0\",version=\"1.2.3\"} 1\n"));
        assert!(text.contains("tc_ratio{interface=\"eth0\",odd=\"a\\\"b\\\\c\\nd\"} 0.5\n"));
        assert!(!text.contains("tc_empty"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
