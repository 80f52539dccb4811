use super::*;

#[test]
fn quantile_estimates_follow_histogram_quantile() {
    let b = [(0.1, 10.0), (0.2, 30.0), (0.4, 40.0), (f64::INFINITY, 40.0)];
    // rank 20 in the (0.1, 0.2] bucket: halfway.
    let e = histogram_quantile(0.5, &b).expect("estimate");
    assert!(
        (e.value - 0.15).abs() < 1e-12 && (e.lower, e.upper) == (0.1, 0.2),
        "{e:?}"
    );
    // rank 4 in the first bucket, interpolated from 0.
    let e = histogram_quantile(0.1, &b).expect("estimate");
    assert!((e.value - 0.04).abs() < 1e-12 && e.lower == 0.0, "{e:?}");
    // A rank in the +Inf bucket gives the highest finite bound.
    let b = [(0.1, 10.0), (f64::INFINITY, 20.0)];
    let e = histogram_quantile(0.99, &b).expect("estimate");
    assert_eq!((e.value, e.upper), (0.1, f64::INFINITY));
    assert_eq!(
        histogram_quantile(0.99, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
        None
    );
    assert_eq!(histogram_quantile(0.99, &[(0.1, 1.0), (0.2, 1.0)]), None);
    // A dip from reading series at different moments does not break the estimate.
    let b = [(0.1, 5.0), (0.2, 4.0), (f64::INFINITY, 10.0)];
    let e = histogram_quantile(0.5, &b).expect("estimate");
    assert_eq!(e.value, 0.1);
}

#[test]
fn a_check_reads_with_both_values_and_what_the_expectation_stands_for() {
    let check = Check {
        service: "api-gateway".into(),
        metric: "http_requests_total".into(),
        labels: "status=\"200\"".into(),
        expected: 1200.0,
        observed: 2400.0,
        passed: false,
        skipped: false,
        detail: "responses received".into(),
    };
    assert_eq!(
        check.subject(),
        "api-gateway http_requests_total{status=\"200\"}"
    );
    assert_eq!(
        check.comparison(),
        "expected 1200 (responses received), observed 2400"
    );
    assert_eq!(
        check.to_string(),
        "FAILED api-gateway http_requests_total{status=\"200\"}: expected 1200 (responses received), observed 2400"
    );
    let latency = Check {
        labels: String::new(),
        expected: 0.1 + 0.2,
        observed: f64::NAN,
        ..check
    };
    assert_eq!(
        latency.comparison(),
        "expected 0.300000 (responses received), observed NaN"
    );
}
