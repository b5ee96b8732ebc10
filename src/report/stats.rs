//! The estimators behind the report's figures (docs/results.md, "Statistics"), kept
//! free of the report's types so each can be checked against hand-computed cases.
//!
//! Tasks are the unit of sampling: a benchmark's tasks are a sample of the tasks it
//! could have had, and the repeats of one task are not independent of each other. So a
//! cell's mean is the mean over tasks of each task's mean over its repeats, and its
//! standard error comes from the spread of those task means (the cluster-robust
//! standard error for clusters of equal size; with one run per task it is the usual
//! standard error of the mean).

/// Mean, standard error and two-sided 95% interval of the means of `tasks` (each a
/// task's scores over its repeats). The standard error and interval are None with
/// fewer than two tasks: one task says nothing about the spread between tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub se: Option<f64>,
    /// Student's t interval with (tasks − 1) degrees of freedom.
    pub ci95: Option<(f64, f64)>,
}

/// The mean of each task's scores, then the mean of those. None without scores.
pub fn clustered_mean(tasks: &[Vec<f64>]) -> Option<Estimate> {
    let means: Vec<f64> = tasks.iter().filter_map(|t| mean(t)).collect();
    mean_estimate(&means)
}

/// Mean, standard error and 95% t interval of independent values (task means, or
/// paired differences). None when `values` is empty.
pub fn mean_estimate(values: &[f64]) -> Option<Estimate> {
    let m = mean(values)?;
    let n = values.len();
    if n < 2 {
        return Some(Estimate {
            mean: m,
            se: None,
            ci95: None,
        });
    }
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let half = t_975(n - 1) * se;
    Some(Estimate {
        mean: m,
        se: Some(se),
        ci95: Some((m - half, m + half)),
    })
}

fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// The unbiased pass@k of one task with `n` runs of which `c` passed: the chance that
/// at least one of k runs drawn without replacement passed, 1 − C(n−c, k)/C(n, k).
/// Computed as 1 − Π_{i=n−c+1..n} (1 − k/i), which never forms a binomial coefficient
/// (they overflow f64 near n = 1030). None when k is 0 or k > n (not estimable).
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        // Every draw of k holds a pass.
        return Some(1.0);
    }
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - miss)
}

/// pass^k of one task: the chance that all of k runs drawn without replacement passed,
/// C(c, k)/C(n, k) = Π_{i=0..k−1} (c−i)/(n−i). None when k is 0 or k > n.
pub fn pass_hat_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if c < k {
        return Some(0.0);
    }
    Some((0..k).map(|i| (c - i) as f64 / (n - i) as f64).product())
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (the half-width of
/// a 95% interval in standard errors). Exact to 3 places for df ≤ 30 (table); above, a
/// Cornish-Fisher expansion around the normal quantile (error below 1e-4).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df == 0 {
        return f64::INFINITY;
    }
    if df <= TABLE.len() {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * v.powi(3))
}

/// `x` rounded to 4 decimal places (what every rendering shows).
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn pass_at_k_matches_the_binomial_formula() {
        // n=5, c=2, k=2: 1 − C(3,2)/C(5,2) = 1 − 3/10.
        assert!(close(pass_at_k(5, 2, 2).unwrap(), 0.7));
        // k=1 is the pass rate.
        assert!(close(pass_at_k(5, 2, 1).unwrap(), 0.4));
        // n=4, c=1, k=3: 1 − C(3,3)/C(4,3) = 1 − 1/4.
        assert!(close(pass_at_k(4, 1, 3).unwrap(), 0.75));
        // n − c < k: every draw holds a pass.
        assert_eq!(pass_at_k(4, 3, 2), Some(1.0));
    }

    #[test]
    fn pass_at_k_edge_cases() {
        assert_eq!(pass_at_k(3, 3, 3), Some(1.0), "all pass");
        assert_eq!(pass_at_k(3, 0, 3), Some(0.0), "none pass");
        assert_eq!(pass_at_k(3, 0, 1), Some(0.0), "none pass, k=1");
        assert_eq!(pass_at_k(1, 1, 1), Some(1.0), "one run, passed");
        assert_eq!(pass_at_k(1, 0, 1), Some(0.0), "one run, failed");
        assert_eq!(pass_at_k(2, 1, 3), None, "n < k");
        assert_eq!(pass_at_k(0, 0, 1), None, "no runs");
        assert_eq!(pass_at_k(3, 1, 0), None, "k = 0");
        assert_eq!(pass_at_k(2, 3, 1), None, "more passes than runs");
    }

    #[test]
    fn pass_at_k_stays_finite_where_binomials_overflow() {
        // C(2000, 1000) overflows f64; the product does not. c = 1, k = 1000 of 2000:
        // 1 − C(1999,1000)/C(2000,1000) = 1 − 1000/2000.
        assert!(close(pass_at_k(2000, 1, 1000).unwrap(), 0.5));
    }

    #[test]
    fn pass_hat_k_matches_the_binomial_formula() {
        // n=5, c=3, k=2: C(3,2)/C(5,2) = 3/10.
        assert!(close(pass_hat_k(5, 3, 2).unwrap(), 0.3));
        assert!(close(pass_hat_k(5, 3, 1).unwrap(), 0.6));
        assert_eq!(pass_hat_k(3, 3, 3), Some(1.0), "all pass");
        assert_eq!(pass_hat_k(3, 0, 1), Some(0.0), "none pass");
        assert_eq!(pass_hat_k(3, 1, 2), Some(0.0), "fewer passes than k");
        assert_eq!(pass_hat_k(1, 1, 1), Some(1.0), "one run");
        assert_eq!(pass_hat_k(2, 2, 3), None, "n < k");
    }

    #[test]
    fn clustered_mean_weights_tasks_equally() {
        // Task a: 1, 0 (mean 0.5); task b: 1, 1 (mean 1); task c: 0, 0 (mean 0).
        let e = clustered_mean(&[vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 0.0]]).unwrap();
        assert!(close(e.mean, 0.5));
        // Task means 0.5, 1, 0: sample variance 0.25, se = sqrt(0.25 / 3).
        let se = (0.25f64 / 3.0).sqrt();
        assert!(close(e.se.unwrap(), se));
        let (lo, hi) = e.ci95.unwrap();
        assert!(close(lo, 0.5 - 4.303 * se) && close(hi, 0.5 + 4.303 * se));
    }

    #[test]
    fn one_run_per_task_is_the_plain_standard_error() {
        let e = clustered_mean(&[vec![1.0], vec![0.0], vec![1.0], vec![1.0]]).unwrap();
        assert!(close(e.mean, 0.75));
        // Sample variance of 1,0,1,1 = 0.25; se = sqrt(0.25/4) = 0.25.
        assert!(close(e.se.unwrap(), 0.25));
        let (lo, hi) = e.ci95.unwrap();
        assert!(close(lo, 0.75 - 3.182 * 0.25) && close(hi, 0.75 + 3.182 * 0.25));
    }

    #[test]
    fn one_task_or_no_spread() {
        let e = clustered_mean(&[vec![0.2, 0.4]]).unwrap();
        assert!(close(e.mean, 0.3));
        assert_eq!((e.se, e.ci95), (None, None), "one task: no spread known");
        let e = clustered_mean(&[vec![1.0], vec![1.0]]).unwrap();
        assert_eq!((e.mean, e.se, e.ci95), (1.0, Some(0.0), Some((1.0, 1.0))));
        assert_eq!(clustered_mean(&[]), None);
        assert_eq!(clustered_mean(&[vec![]]), None);
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        // Published values: t(40) = 2.021, t(120) = 1.980, and the normal 1.960 far out.
        assert!((t_975(40) - 2.021).abs() < 5e-4, "{}", t_975(40));
        assert!((t_975(120) - 1.980).abs() < 5e-4, "{}", t_975(120));
        assert!((t_975(100_000) - 1.960).abs() < 5e-4);
        assert!(t_975(0).is_infinite());
    }
}
