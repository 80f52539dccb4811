//! What a wake-up costs this machine in CPU time: the figure that sets most of a load generator's
//! CPU per request (and a server's) when requests are paced precisely, one wake-up each.
//!
//! It measures, as CPU time of this process (`CLOCK_PROCESS_CPUTIME_ID`) per operation:
//! - a plain system call (`getppid`), for scale;
//! - arming a timer that becomes the next one to fire, which reprograms the CPU's timer (on a
//!   virtual machine, a trap to the hypervisor);
//! - arming a timer that does not (one a second away);
//! - sleeping until a timer fires, every PERIOD_US microseconds: the whole wake-up as a thread
//!   paced by a timer pays it (the timer armed, the CPU idle, the interrupt, the switch back in).
//!
//! and how late such a thread runs after the time it asked for (counted from just before the timer
//! is armed, so the arming's few µs are in it): about the least send lag any load generator that
//! sleeps between sends can have here.
//!
//! With SLICE_US, the thread first asks for that scheduler slice as the harness's load thread
//! does (100 µs): run it beside busy loops to see what the slice does to the lateness.
//!
//! ```sh
//! cargo run --release --example wake_cost [-- WAKES [PERIOD_US [SLICE_US]]]   # 5000, 200, none
//! ```

use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::{ClockId as Clock, clock_gettime};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let wakes: u32 = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let period_us: u64 = args.next().map_or(Ok(200), |a| a.parse())?;
    let slice_us: Option<u64> = args.next().map(|a| a.parse()).transpose()?;
    anyhow::ensure!(
        (1..=1_000_000).contains(&wakes) && (1..=1_000_000).contains(&period_us),
        "WAKES and PERIOD_US must be between 1 and 1,000,000"
    );
    let period = Duration::from_micros(period_us);
    // As the harness's load thread does: no timer slack, so every wake-up is at its time.
    nix::sys::prctl::set_timerslack(1)?;
    if let Some(slice_us) = slice_us {
        let taken = harness::load::ask_for_slice(Duration::from_micros(slice_us));
        println!(
            "scheduler slice of {slice_us} µs asked for: {}",
            if taken { "taken" } else { "refused" }
        );
    }
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)?;

    let syscall = per_op(200_000, || {
        let _ = nix::unistd::getppid();
        Ok(())
    })?;
    // Alternating between two near expiries, so that each arming moves the next timer to fire.
    let mut flip = false;
    let arm_next = per_op(20_000, || {
        flip = !flip;
        let wait = period + Duration::from_micros(u64::from(flip));
        Ok(arm(&timer, wait)?)
    })?;
    let arm_later = per_op(20_000, || Ok(arm(&timer, Duration::from_secs(1))?))?;
    let switches_before = context_switches()?;
    let mut late = Vec::with_capacity(wakes as usize);
    let sleep = per_op(wakes, || {
        let due = Instant::now() + period;
        arm(&timer, period)?;
        timer.wait()?;
        late.push(due.elapsed());
        Ok(())
    })?;
    late.sort_unstable();
    let quantile = |q: f64| late[((late.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let switches = context_switches()? - switches_before;

    println!("CPU time per operation (this process, CLOCK_PROCESS_CPUTIME_ID):");
    println!("  {:<40}{syscall:>8.2} µs", "system call (getppid)");
    println!("  {:<40}{arm_next:>8.2} µs", "arm a timer that fires next");
    println!(
        "  {:<40}{arm_later:>8.2} µs",
        "arm a timer that does not (1 s away)"
    );
    let label = format!("wake-up from a {period_us} µs sleep");
    println!(
        "  {label:<40}{sleep:>8.2} µs ({wakes} of them, {:.2} context switches each)",
        switches as f64 / f64::from(wakes)
    );
    println!(
        "Lateness of those wake-ups (woken minus due): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        quantile(0.5),
        quantile(0.99),
        quantile(1.0)
    );
    Ok(())
}

/// Mean CPU time of `op` over `n` runs, in microseconds.
fn per_op(n: u32, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let start = cpu_time()?;
    for _ in 0..n {
        op()?;
    }
    Ok((cpu_time()? - start).as_secs_f64() * 1e6 / f64::from(n))
}

fn arm(timer: &TimerFd, after: Duration) -> nix::Result<()> {
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(after)),
        TimerSetTimeFlags::empty(),
    )
}

fn cpu_time() -> nix::Result<Duration> {
    clock_gettime(Clock::CLOCK_PROCESS_CPUTIME_ID).map(Duration::from)
}

/// Voluntary and involuntary context switches of this (single-threaded) process so far.
fn context_switches() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    Ok(status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum())
}
