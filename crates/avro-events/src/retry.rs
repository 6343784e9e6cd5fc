//! The one backoff policy of the library's retries, built on `backon`: exponential, with
//! jitter so that many clients retrying after the same outage do not all ask at once.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Backoff whose step starts at `first` and doubles up to `max`; each wait is drawn between
/// half the step and the whole step (equal jitter). At most `times` retries, or, with `None`,
/// as many as it takes.
pub(crate) fn exponential(
    first: Duration,
    max: Duration,
    times: Option<usize>,
) -> ExponentialBuilder {
    // backon's jitter adds up to one more step: [step/2, step) comes from half steps.
    let builder = ExponentialBuilder::default()
        .with_factor(2.0)
        .with_min_delay(first / 2)
        .with_max_delay(max / 2)
        .with_jitter();
    match times {
        Some(times) => builder.with_max_times(times),
        None => builder.without_max_times(),
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder as _;

    use super::*;

    #[test]
    fn waits_double_within_jitter_and_stop_at_the_limit() {
        let first = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let waits: Vec<Duration> = exponential(first, max, Some(8)).build().collect();
        assert_eq!(waits.len(), 8);
        let mut step = first;
        for wait in waits {
            assert!(
                wait >= step / 2 && wait <= step,
                "{wait:?} outside [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(max);
        }
        assert!(exponential(first, max, None).build().nth(1000).is_some());
    }
}
