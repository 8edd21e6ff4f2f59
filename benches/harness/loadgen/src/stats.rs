//! Round-trip latencies and the JSON line a run prints.

use std::fmt::Write;
use std::time::Duration;

/// Latency samples in nanoseconds (clamped at `u32::MAX`, 4.3 s).
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d.as_nanos().min(u32::MAX as u128) as u32);
    }

    /// (p50, p99, max) in µs; zeros without samples.
    pub fn summary(&mut self) -> (f64, f64, f64) {
        if self.0.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let i = ((self.0.len() - 1) as f64 * q).round() as usize;
            self.0[i] as f64 / 1000.0
        };
        (at(0.50), at(0.99), at(1.0))
    }
}

/// A flat JSON object built field by field, in insertion order.
#[derive(Default)]
pub struct Json(String);

impl Json {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{k}\":");
    }

    pub fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Json {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }

    /// A float with `digits` decimals.
    pub fn float(&mut self, k: &str, v: f64, digits: usize) -> &mut Json {
        self.key(k);
        let v = if v.is_finite() { v } else { 0.0 };
        let _ = write!(self.0, "{v:.digits$}");
        self
    }

    pub fn opt_float(&mut self, k: &str, v: Option<f64>, digits: usize) -> &mut Json {
        match v {
            Some(v) => self.float(k, v, digits),
            None => {
                self.key(k);
                self.0.push_str("null");
                self
            }
        }
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Json {
        self.num(k, v)
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Json {
        self.key(k);
        self.0.push('"');
        for c in v.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    pub fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for us in 1..=100 {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.summary(), (51.0, 99.0, 100.0));
    }

    #[test]
    fn json_escapes() {
        let line = Json::default().num("a", 1).str("b", "x\"y\\\n").float("c", 0.5, 2).opt_float("d", None, 1).finish();
        assert_eq!(line, r#"{"a":1,"b":"x\"y\\\u000a","c":0.50,"d":null}"#);
    }
}
