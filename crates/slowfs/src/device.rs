//! The "device": a fixed number of service slots, each a thread, that take requests in arrival
//! order and hold each one for at least its service time.
//!
//! fuser reads requests from the kernel on a single thread. If that thread slept out the delay
//! itself, the disk would have a queue depth of one whatever we asked for. So it only submits
//! work here and goes back to reading; `queue_depth` worker threads do the I/O, sleep and reply.
//! Sleeping threads cost no CPU, which matters on a small machine shared with the servers being
//! measured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Counters the tests and the README figures read: how much the device did, and the most
/// requests it ever held in service at once (never more than the queue depth).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reads: AtomicU64,
    pub(crate) opens: AtomicU64,
    in_service: AtomicUsize,
    pub(crate) max_in_service: AtomicUsize,
}

#[derive(Debug)]
pub(crate) struct Device {
    /// `None` once the device is shutting down; dropping the sender lets the workers finish.
    queue: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pub(crate) counters: Arc<Counters>,
}

impl Device {
    pub(crate) fn new(queue_depth: usize, counters: Arc<Counters>) -> std::io::Result<Device> {
        let (queue, line) = mpsc::channel::<Job>();
        // One receiver shared by all slots: whichever slot is free takes the next request, in
        // the order the kernel sent them.
        let line = Arc::new(Mutex::new(line));
        let mut workers = Vec::with_capacity(queue_depth);
        for slot in 0..queue_depth {
            let line = Arc::clone(&line);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("slowfs-slot-{slot}"))
                    .spawn(move || serve(&line))?,
            );
        }
        Ok(Device {
            queue: Some(queue),
            workers,
            counters,
        })
    }

    /// Queues one request. When a slot takes it, `work` runs (the real I/O), then the slot
    /// sleeps until `service_time` has passed since it took the request, then `complete` runs
    /// with the result (the reply to the kernel). So the request is answered no sooner than
    /// `service_time` after its service began, and later if the work itself took longer.
    pub(crate) fn submit<T: 'static>(
        &self,
        service_time: Duration,
        work: impl FnOnce() -> T + Send + 'static,
        complete: impl FnOnce(T) + Send + 'static,
    ) {
        let counters = Arc::clone(&self.counters);
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let now_in_service = counters.in_service.fetch_add(1, Ordering::SeqCst) + 1;
            counters
                .max_in_service
                .fetch_max(now_in_service, Ordering::SeqCst);
            let result = work();
            let deadline = started + service_time;
            // `sleep` may wake late, never early, so the delay is a lower bound.
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            counters.in_service.fetch_sub(1, Ordering::SeqCst);
            complete(result);
        });
        if let Some(queue) = &self.queue {
            // The workers only stop after `queue` is dropped, so sending cannot fail here.
            let _ = queue.send(job);
        }
    }
}

fn serve(line: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only to take the next job, never while serving it.
        let next = match line.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            // The sender is gone: the filesystem is being unmounted.
            Err(_) => return,
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // Requests still in line are dropped with their replies; fuser answers a reply dropped
        // unsent with an error, so no caller is left waiting.
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_requests_each_take_the_service_time() {
        let counters = Arc::new(Counters::default());
        let device = Device::new(1, Arc::clone(&counters)).unwrap();
        let (done, finished) = mpsc::channel();
        let start = Instant::now();
        for i in 0..5 {
            let done = done.clone();
            device.submit(
                Duration::from_millis(10),
                move || i,
                move |i| {
                    done.send(i).unwrap();
                },
            );
        }
        let order: Vec<i32> = (0..5).map(|_| finished.recv().unwrap()).collect();
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            order,
            vec![0, 1, 2, 3, 4],
            "one slot serves in arrival order"
        );
        assert_eq!(counters.max_in_service.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn never_more_than_queue_depth_in_service() {
        let counters = Arc::new(Counters::default());
        let device = Device::new(3, Arc::clone(&counters)).unwrap();
        let (done, finished) = mpsc::channel();
        for _ in 0..12 {
            let done = done.clone();
            device.submit(
                Duration::from_millis(5),
                || (),
                move |()| {
                    done.send(()).unwrap();
                },
            );
        }
        for _ in 0..12 {
            finished.recv().unwrap();
        }
        assert!(counters.max_in_service.load(Ordering::SeqCst) <= 3);
    }
}
