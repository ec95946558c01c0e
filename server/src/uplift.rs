//! Uplift statistics for campaign reports: the difference between a treatment group (shown
//! the popup) and a holdout group (held out), with a 95% confidence interval. Pure
//! functions, no I/O.
//!
//! - Conversion rate: difference of two independent proportions with the normal
//!   approximation (Wald interval): `d = p1 - p2`,
//!   `se = sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)`, `d ± 1.959964 se`. It is poor for
//!   small groups or rates near 0 or 1; the report gives the group sizes beside it.
//! - Revenue per shopper: Welch's unequal-variance t interval for the difference of two
//!   means: `se = sqrt(s1² / n1 + s2² / n2)`, Welch–Satterthwaite degrees of freedom, and
//!   the 97.5% quantile of Student's t with those degrees of freedom.

use serde::Serialize;

/// The 97.5% quantile of the standard normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// An estimate with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Treatment minus holdout.
    pub estimate: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
}

/// `x1 / n1 - x2 / n2` with its 95% interval (normal approximation); `None` when a group
/// is empty.
pub fn proportion_difference(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Interval> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1, x2 as f64 / n2);
    let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let d = p1 - p2;
    Some(Interval { estimate: d, low: d - Z_975 * se, high: d + Z_975 * se })
}

/// The mean of `xs` (0 for none).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The sample variance (divided by `n - 1`); 0 for fewer than two values.
pub fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// The Welch–Satterthwaite degrees of freedom of two samples; `None` when either has
/// fewer than two values or both have no spread.
pub fn welch_df(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (va, vb) = (variance(a) / a.len() as f64, variance(b) / b.len() as f64);
    let denominator = va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64;
    (denominator > 0.0).then(|| (va + vb) * (va + vb) / denominator)
}

/// `mean(a) - mean(b)` with its 95% Welch interval; `None` when either sample has fewer
/// than two values. Two samples without spread give a zero-width interval.
pub fn mean_difference(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let d = mean(a) - mean(b);
    let se = (variance(a) / a.len() as f64 + variance(b) / b.len() as f64).sqrt();
    let half = match welch_df(a, b) {
        Some(df) => t_quantile_975(df) * se,
        None => 0.0,
    };
    Some(Interval { estimate: d, low: d - half, high: d + half })
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (`df > 0`), found by
/// bisection on the distribution function.
pub fn t_quantile_975(df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df > 1e7 {
        return Z_975;
    }
    // P(T > t) = I_{df / (df + t²)}(df / 2, 1 / 2) / 2; find where it is 0.025.
    let upper_tail = |t: f64| 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while upper_tail(hi) > 0.025 && hi < 1e9 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if upper_tail(mid) > 0.025 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized incomplete beta function `I_x(a, b)` (continued fraction, after
/// Numerical Recipes' `betai`).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn difference_of_proportions_by_hand() {
        // 30/100 against 20/100: d = 0.1, se = sqrt(0.3 * 0.7 / 100 + 0.2 * 0.8 / 100)
        // = sqrt(0.0037) = 0.0608276, half width 1.959964 * 0.0608276 = 0.1192200.
        let i = proportion_difference(30, 100, 20, 100).unwrap();
        assert!(close(i.estimate, 0.1, 1e-12));
        assert!(close(i.low, -0.0192200, 1e-6) && close(i.high, 0.2192200, 1e-6), "{i:?}");
        // 1/2 against 0/2: se = sqrt(0.25 / 2) = 0.3535534.
        let i = proportion_difference(1, 2, 0, 2).unwrap();
        assert!(close(i.low, 0.5 - 0.6929519, 1e-6) && close(i.high, 0.5 + 0.6929519, 1e-6), "{i:?}");
        assert_eq!(proportion_difference(1, 0, 0, 2), None);
        assert_eq!(proportion_difference(3, 2, 0, 2), None);
    }

    #[test]
    fn student_t_quantiles_match_the_tables() {
        for (df, t) in
            [(1.0, 12.706_204_7), (2.0, 4.302_652_7), (4.0, 2.776_445_1), (10.0, 2.228_138_9), (30.0, 2.042_272_5)]
        {
            assert!(close(t_quantile_975(df), t, 1e-6), "df {df}: {} vs {t}", t_quantile_975(df));
        }
        assert!(close(t_quantile_975(1e6), Z_975, 1e-5));
        assert!(t_quantile_975(0.0).is_nan());
    }

    #[test]
    fn welch_interval_by_hand() {
        // Means 2 and 5, variances 1 and 1, n = 3 each: se = sqrt(1/3 + 1/3) = 0.8164966,
        // df = (2/3)² / (2 (1/3)² / 2) = 4, t = 2.7764451, half width 2.2669580.
        let i = mean_difference(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!(close(i.estimate, -3.0, 1e-12));
        assert!(close(i.low, -5.2669580, 1e-6) && close(i.high, -0.7330420, 1e-6), "{i:?}");
        // Unequal: variances 5/3 (n 4) and 4 (n 3): v = 5/12 and 4/3, df = 1.75² /
        // ((5/12)² / 3 + (4/3)² / 2) = 3.0625 / 0.9467593 = 3.2347188.
        assert!(close(welch_df(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0]).unwrap(), 3.2347188, 1e-6));
        // No spread: a zero-width interval; too few values: none.
        let i = mean_difference(&[2.0, 2.0], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!((i.low, i.estimate, i.high), (1.0, 1.0, 1.0));
        assert_eq!(mean_difference(&[1.0], &[1.0, 2.0]), None);
        assert!(close(variance(&[1.0, 2.0, 3.0, 4.0]), 5.0 / 3.0, 1e-12));
    }
}
