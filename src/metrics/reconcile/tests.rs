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
