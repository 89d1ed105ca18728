//! The pacer: the task that waits for each request's due time and then releases it to the
//! workers, one permit per request.
//!
//! Tokio's timer counts whole milliseconds, and workers that each waited for their request by
//! yielding would keep a core busy all run. On Linux the pacer waits on a timerfd set to the due
//! time to the nanosecond (a timerfd has no timer slack), whose expiry the runtime's own epoll
//! reports with the sockets' readiness: the request is released on the same thread that sends
//! it, with no hand-over between threads. The timer is set a little early (by the wake-up latency
//! seen lately, [`Lead`]) and only the pacer waits the last stretch, by yielding, which keeps the
//! sockets served. When it wakes late it releases everything due by then at once: the workers
//! see lateness, never a lower rate. Elsewhere it waits on tokio's timer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::schedule::Schedule;

/// How long the pacer waits while released requests are still untaken.
const BACKLOGGED: Duration = Duration::from_millis(1);

/// What the pacer shares with the run.
pub(super) struct Pacing {
    /// One permit per request released, then one more after the last (or on a stop): the
    /// worker that takes it finds the run's end and passes it on.
    pub released: Semaphore,
    pub stop: AtomicBool,
    /// Wakes the pacer for a stop.
    pub stopped: Notify,
}

impl Pacing {
    pub fn new() -> Pacing {
        Pacing {
            released: Semaphore::new(0),
            stop: AtomicBool::new(false),
            stopped: Notify::new(),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.stopped.notify_one();
    }
}

/// Releases the `total` requests of `schedule` from `start`, each at its due time; ends after
/// the last, or on a stop.
pub(super) async fn pace(schedule: &Schedule, start: Instant, total: u64, pacing: &Pacing) {
    let mut timer = Timer::new(start);
    let mut lead = Lead::default();
    let mut i = 0;
    while i < total && !pacing.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let due = start + schedule.due(i);
        if due > now {
            if pacing.released.available_permits() > 0 {
                // Every worker is busy with requests released already: the next one will be
                // late whenever it is released, and its lateness counts from its due time all
                // the same. Wait on the cheap timer instead (arming a timerfd costs the kernel
                // a timer reprogramming each time, much of a saturated run's CPU).
                tokio::select! {
                    _ = tokio::time::sleep(BACKLOGGED) => {}
                    _ = pacing.stopped.notified() => {}
                }
                continue;
            }
            let wake = due - lead.get();
            if wake > now {
                tokio::select! {
                    _ = timer.sleep_until(wake) => lead.woke(Instant::now().saturating_duration_since(wake)),
                    _ = pacing.stopped.notified() => {}
                }
            } else {
                // (the last stretch: yielding lets the runtime poll the sockets meanwhile)
                tokio::task::yield_now().await;
            }
            continue;
        }
        let mut n = 0;
        while i < total && start + schedule.due(i) <= now {
            i += 1;
            n += 1;
        }
        pacing.released.add_permits(n);
    }
    pacing.released.add_permits(1);
}

/// How long before a due time the pacer has the timer wake it: about the 99th percentile of
/// the wake-up latency seen lately (tens of µs on a quiet machine, a few hundred in a VM), so
/// that the rest is waited by yielding and the request goes out within microseconds of its due
/// time. A stochastic quantile estimate: each latency above it raises it by 99 steps, each below
/// lowers it by one, so it settles where 1% lie above; kept within [`Lead::MIN`], [`Lead::MAX`].
struct Lead(Duration);

impl Default for Lead {
    fn default() -> Lead {
        Lead(Duration::from_micros(150))
    }
}

impl Lead {
    const MIN: Duration = Duration::from_micros(10);
    const MAX: Duration = Duration::from_millis(1);
    const STEP: Duration = Duration::from_nanos(200);

    fn get(&self) -> Duration {
        self.0
    }

    /// The timer fired `late` after the time it was set to.
    fn woke(&mut self, late: Duration) {
        self.0 = if late > self.0 {
            self.0 + Lead::STEP * 99
        } else {
            self.0.saturating_sub(Lead::STEP)
        }
        .clamp(Lead::MIN, Lead::MAX);
    }
}

#[cfg(target_os = "linux")]
use linux::Timer;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use tokio::io::unix::AsyncFd;

    /// A timerfd on CLOCK_MONOTONIC (the clock of `Instant`), armed at absolute times.
    pub struct Timer {
        fd: Option<AsyncFd<OwnedFd>>,
        /// CLOCK_MONOTONIC at the run's start, and that start.
        base: (Duration, Instant),
    }

    fn monotonic() -> Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    impl Timer {
        /// A timer for a run started at `start`; tokio's timer when no timerfd can be had.
        pub fn new(start: Instant) -> Timer {
            // SAFETY: timerfd_create takes flags and returns a new descriptor or -1.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            let fd = (raw >= 0)
                // SAFETY: `raw` is a new descriptor of ours, owned from here on; the AsyncFd
                // owns it while registered and neither replaces nor closes it.
                .then(|| unsafe { OwnedFd::from_raw_fd(raw) })
                .and_then(|fd| unsafe { AsyncFd::register(fd) }.ok());
            let now = Instant::now();
            let base = monotonic().saturating_sub(now.saturating_duration_since(start));
            Timer {
                fd,
                base: (base, start),
            }
        }

        pub async fn sleep_until(&mut self, due: Instant) {
            let Some(fd) = &self.fd else {
                return tokio::time::sleep_until(due.into()).await;
            };
            let at = self.base.0 + due.saturating_duration_since(self.base.1);
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: at.as_secs() as libc::time_t,
                    tv_nsec: at.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: a valid timerfd and itimerspec; the old value is not asked for.
            let set = unsafe {
                libc::timerfd_settime(
                    fd.as_raw_fd(),
                    libc::TFD_TIMER_ABSTIME,
                    &spec,
                    std::ptr::null_mut(),
                )
            };
            if set != 0 {
                return tokio::time::sleep_until(due.into()).await;
            }
            loop {
                let Ok(mut ready) = fd.readable().await else {
                    return tokio::time::sleep_until(due.into()).await;
                };
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into the buffer.
                let n = unsafe {
                    libc::read(
                        fd.as_raw_fd(),
                        expirations.as_mut_ptr().cast(),
                        expirations.len(),
                    )
                };
                if n == 8 {
                    return;
                }
                ready.clear_ready();
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
struct Timer;

#[cfg(not(target_os = "linux"))]
impl Timer {
    fn new(_start: Instant) -> Timer {
        Timer
    }

    async fn sleep_until(&mut self, due: Instant) {
        tokio::time::sleep_until(due.into()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_settles_where_one_wake_in_a_hundred_is_later() {
        // wake-up latencies spread evenly over 0..200 µs: 1% lie above 198 µs
        let mut lead = Lead::default();
        for i in 0..50_000u64 {
            lead.woke(Duration::from_micros((i * 7919) % 200));
        }
        let got = lead.get().as_micros();
        assert!((170..=220).contains(&got), "lead {got} µs");
        // a quiet machine: it comes down to just above the latencies seen
        for _ in 0..50_000 {
            lead.woke(Duration::from_micros(5));
        }
        assert_eq!(lead.get(), Lead::MIN);
    }

    #[tokio::test]
    async fn every_request_is_released_in_order_and_the_end_once_more() {
        let schedule = Schedule::constant(2000.0, Duration::from_millis(50));
        let total = schedule.total();
        let pacing = Pacing::new();
        let start = Instant::now();
        pace(&schedule, start, total, &pacing).await;
        assert!(start.elapsed() >= schedule.due(total - 1));
        assert_eq!(pacing.released.available_permits() as u64, total + 1);
    }

    #[tokio::test]
    async fn a_stop_ends_the_pacing_early() {
        let schedule = Schedule::constant(10.0, Duration::from_secs(60));
        let pacing = Pacing::new();
        let start = Instant::now();
        let stop = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            pacing.stop();
        };
        tokio::join!(pace(&schedule, start, schedule.total(), &pacing), stop);
        assert!(start.elapsed() < Duration::from_secs(5));
        // the request due before the stop (at 0; the next is due at 100 ms), then the end
        assert_eq!(pacing.released.available_permits(), 2);
    }
}
