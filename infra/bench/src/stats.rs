//! Small statistics: percentiles of latencies, medians, and the busiest one-second window of
//! a series of moments.

use std::time::Duration;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Self {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        Self {
            count: us.len(),
            p50_us: percentile(&us, 0.50),
            p90_us: percentile(&us, 0.90),
            p99_us: percentile(&us, 0.99),
        }
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least q of the samples at or below it.
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Median of unsorted values (0 for none); the lower middle for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// The most moments that fall into any half-open window `[t, t + window)`. `moments` are
/// offsets from any one origin, in any order (whole nanoseconds: a float would turn exactly
/// one second apart into a hair less).
pub fn max_in_window(moments: &[Duration], window: Duration) -> usize {
    let mut t = moments.to_vec();
    t.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..t.len() {
        while t[end] - t[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// The most moments in one whole second counted from the origin.
pub fn max_per_whole_second(moments: &[Duration]) -> usize {
    let mut counts = std::collections::HashMap::<u64, usize>::new();
    for m in moments {
        *counts.entry(m.as_secs()).or_default() += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.9), 90.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn sliding_window_counts() {
        let ms = |m: u64| Duration::from_millis(m);
        let second = Duration::from_secs(1);
        // 40 evenly spaced moments per second never put 41 in one window.
        let even: Vec<Duration> = (0..400).map(|i| ms(25 * i)).collect();
        assert_eq!(max_in_window(&even, second), 40);
        // A burst is found wherever it sits.
        let mut burst = even.clone();
        burst.extend([ms(5001), ms(5002)]);
        assert_eq!(max_in_window(&burst, second), 42);
        assert_eq!(max_in_window(&[], second), 0);
        assert_eq!(
            max_per_whole_second(&[ms(100), ms(900), ms(1000), ms(1500)]),
            2
        );
    }
}
