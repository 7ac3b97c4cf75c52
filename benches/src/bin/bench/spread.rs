//! A measurement over rounds: its median and range, as every table shows it.

/// Median (the lower middle for an even count), min and max.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// `None` for no value.
    pub(crate) fn of(mut v: Vec<f64>) -> Option<Self> {
        v.sort_by(f64::total_cmp);
        Some(Self {
            median: *v.get(v.len().checked_sub(1)? / 2)?,
            min: v[0],
            max: v[v.len() - 1],
        })
    }

    /// `median (min..max)` with `decimals` decimals.
    pub(crate) fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}..{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}
