//! The text table: a header once, then one line per row as it finishes, so a long run
//! shows progress.

use std::io::{self, Write};

use super::{CryptoBench, REFERENCE_SOURCE, Report, Row};

/// Writes the report as an aligned text table.
#[derive(Debug)]
pub struct TextTable<W> {
    out: W,
    name_width: usize,
}

impl<W: Write> TextTable<W> {
    /// A table sized for `bench`'s rows, writing to `out`.
    pub fn new(bench: &CryptoBench, out: W) -> Self {
        let name_width = bench.names().map(str::len).max().unwrap_or(0).max(4);
        Self { out, name_width }
    }

    /// The settings line and the column headings.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn header(&mut self, bench: &CryptoBench) -> io::Result<()> {
        let options = bench.options();
        let threads = if options.threads == 1 {
            "1 thread".to_owned()
        } else {
            format!("{} threads (figures are totals)", options.threads)
        };
        writeln!(
            self.out,
            "strongroom bench crypto: {} s per row after up to {} warm-up calls, {threads}",
            options.seconds, options.warmup
        )?;
        writeln!(
            self.out,
            "reference (dev machine): {REFERENCE_SOURCE}; ~ marks 2 x the 1-thread figure"
        )?;
        if let Some(load) = crate::load::load_average() {
            writeln!(self.out, "load average before: {load}")?;
        }
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{:<name$}  {:>13}  {:>10}  {:>11}  {:>10}  {:>5}  {:>14}  {:>8}",
            "name",
            "ops/s",
            "µs/op",
            "throughput",
            "iterations",
            "other",
            "reference",
            "ours/ref",
            name = self.name_width
        )?;
        self.out.flush()
    }

    /// One row.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn row(&mut self, row: &Row) -> io::Result<()> {
        let throughput = row.bytes_per_sec.map(bytes_per_sec).unwrap_or_default();
        let other = row
            .other_load_percent
            .map(|p| format!("{p:.0}%"))
            .unwrap_or_else(|| "-".to_owned());
        let (reference, ratio) = match &row.reference {
            Some(r) => {
                let mark = if r.basis.contains("estimate") {
                    "~"
                } else {
                    ""
                };
                (
                    format!("{mark}{}", grouped(r.ops_per_sec)),
                    format!("{:.2}", r.ratio),
                )
            }
            None => (String::new(), String::new()),
        };
        writeln!(
            self.out,
            "{:<name$}  {:>13}  {:>10}  {:>11}  {:>10}  {:>5}  {:>14}  {:>8}",
            row.name,
            grouped(row.ops_per_sec),
            micros(row.us_per_op),
            throughput,
            row.iterations,
            other,
            reference,
            ratio,
            name = self.name_width
        )?;
        self.out.flush()
    }

    /// The closing line.
    ///
    /// # Errors
    /// Whatever writing to the output returns.
    pub fn footer(&mut self, report: &Report) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{} rows; load average after: {}",
            report.rows.len(),
            report.load_average_after.as_deref().unwrap_or("unknown")
        )?;
        self.out.flush()
    }
}

/// A whole number with thousands separators.
pub(crate) fn grouped(value: f64) -> String {
    let digits = format!("{value:.0}");
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits.as_str()),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds with a precision that suits their size.
pub(crate) fn micros(us: f64) -> String {
    if us < 1.0 {
        format!("{us:.3}")
    } else if us < 100.0 {
        format!("{us:.2}")
    } else if us < 10_000.0 {
        format!("{us:.1}")
    } else {
        grouped(us)
    }
}

/// Bytes per second in decimal units, as limits.md prints them.
fn bytes_per_sec(rate: f64) -> String {
    if rate >= 1e9 {
        format!("{:.2} GB/s", rate / 1e9)
    } else if rate >= 1e6 {
        format!("{:.1} MB/s", rate / 1e6)
    } else {
        format!("{:.0} kB/s", rate / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Options;

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(12_712_615.4), "12,712,615");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(0.2), "0");
        assert_eq!(micros(0.0787), "0.079");
        assert_eq!(micros(214.13), "214.1");
        assert_eq!(micros(50_000.0), "50,000");
        assert_eq!(bytes_per_sec(6.89e9), "6.89 GB/s");
        assert_eq!(bytes_per_sec(1.2e8), "120.0 MB/s");
    }

    #[test]
    fn table_has_a_line_per_row() {
        let bench = CryptoBench::new(Options {
            seconds: 0.01,
            warmup: 0,
            filter: Some("Aliyun_AES_256 Encrypt AES_GCM".into()),
            threads: 1,
        })
        .unwrap();
        let mut out = Vec::new();
        let mut table = TextTable::new(&bench, &mut out);
        table.header(&bench).unwrap();
        let report = bench.run(|row| Ok(table.row(row)?)).unwrap();
        table.footer(&report).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("ours/ref"));
        let line = text
            .lines()
            .find(|l| l.starts_with("Aliyun_AES_256 Encrypt AES_GCM 32 B"))
            .unwrap();
        // The reference figure from limits.md and a ratio follow the measurement.
        assert!(line.contains("12,712,615"), "{line}");
        assert!(text.contains("2 rows"));
    }
}
