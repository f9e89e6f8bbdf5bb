//! The text table of `strongroom bench hsm`: a header, a line per row as it finishes,
//! then each operation's best level against the target.

use std::io::{self, Write};

use super::{HsmBench, Report, Row, Target};
use crate::crypto::REFERENCE_SOURCE;
use crate::crypto::text::{grouped, micros};

/// Writes the report as an aligned text table.
#[derive(Debug)]
pub struct TextTable<W> {
    out: W,
    name_width: usize,
    scale: f64,
}

impl<W: Write> TextTable<W> {
    /// A table sized for `bench`'s rows, writing to `out`.
    pub fn new(bench: &HsmBench, out: W) -> Self {
        let name_width = bench.names().map(|n| n.len()).max().unwrap_or(0).max(4);
        Self {
            out,
            name_width,
            scale: bench.options().machine_scale,
        }
    }

    /// The settings lines and the column headings.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn header(&mut self, bench: &HsmBench, target: &Target) -> io::Result<()> {
        let options = bench.options();
        writeln!(
            self.out,
            "strongroom bench hsm: {}; {} round(s) of {} s per row (median reported), {} connection(s) per node",
            target.describe(),
            options.rounds,
            options.seconds,
            options.connections_per_node,
        )?;
        writeln!(
            self.out,
            "reference (dev machine, 1 core): {REFERENCE_SOURCE}"
        )?;
        writeln!(
            self.out,
            "xN = requests in flight; direct = the same request on the engine in process, 1 thread (--local only); \
             scaled = ours / ({} x reference)",
            self.scale
        )?;
        if let Some(load) = crate::load::load_average() {
            writeln!(self.out, "load average before: {load}")?;
        }
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{:<name$}  {:>10}  {:>9}  {:>9}  {:>10}  {:>10}  {:>8}  {:>6}  {:>5}",
            "name",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "direct",
            "reference",
            "ours/ref",
            "scaled",
            "other",
            name = self.name_width
        )?;
        self.out.flush()
    }

    /// One row.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn row(&mut self, row: &Row) -> io::Result<()> {
        let direct = row.direct_ops_per_sec.map(grouped).unwrap_or_default();
        let other = row
            .other_load_percent
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.0}%"));
        writeln!(
            self.out,
            "{:<name$}  {:>10}  {:>9}  {:>9}  {:>10}  {:>10}  {:>8.3}  {:>6.2}  {:>5}",
            row.name,
            grouped(row.ops_per_sec),
            micros(row.p50_us),
            micros(row.p99_us),
            direct,
            grouped(row.reference_ops_per_sec),
            row.ratio,
            row.scaled_ratio,
            other,
            name = self.name_width
        )?;
        self.out.flush()
    }

    /// Each operation's best level against its target, and the closing line.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn footer(&mut self, report: &Report) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(self.out, "targets (best in-flight level per operation):")?;
        for row in report.best() {
            writeln!(
                self.out,
                "  {:<name$}  {:>10} ops/s vs {:>10} ({})  {}",
                row.name,
                grouped(row.ops_per_sec),
                grouped(row.target_ops_per_sec),
                row.target,
                if row.meets_target { "met" } else { "NOT met" },
                name = self.name_width
            )?;
        }
        writeln!(
            self.out,
            "{} rows; load average after: {}",
            report.rows.len(),
            report.load_average_after.as_deref().unwrap_or("unknown")
        )?;
        self.out.flush()
    }
}
