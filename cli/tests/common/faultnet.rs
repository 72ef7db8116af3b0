//! A userspace fault proxy for QUIC tests on loopback: the network faults of the netem
//! tests, for machines without network namespaces or the kernel's `sch_netem`.
//!
//! One UDP relay per holder: the holder connects to its relay's port instead of the
//! coordinator's, and the relay forwards each datagram to the coordinator from a socket of
//! its own (so the coordinator sees one address per holder, as on a real network), and the
//! coordinator's answers back to the holder. On the way each datagram may be
//!
//! - **lost**, with probability [`Faults::loss`], each way;
//! - **delayed** by [`Faults::delay`] ± [`Faults::jitter`] (uniform), each way: datagrams
//!   whose delays differ by more than their spacing overtake each other, which reorders
//!   them (counted);
//! - **partitioned**: while a link is cut ([`FaultNet::partition`]) every datagram on it is
//!   dropped both ways, including those already delayed in flight; cutting every link is
//!   the coordinator partitioned from everyone. [`FaultNet::heal`] restores them.
//!
//! Loss draws come from a seeded RNG per link and direction. Everything binds 127.0.0.1
//! only, and the relay's tasks end when the [`FaultNet`] is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The faults every link applies (both directions alike).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Probability that a datagram is lost, each way.
    pub loss: f64,
    /// Mean one-way delay.
    pub delay: Duration,
    /// Each datagram's delay is drawn uniformly from `delay ± jitter`.
    pub jitter: Duration,
}

/// What the relays did, summed over links and directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received from either side.
    pub received: u64,
    /// Datagrams passed on.
    pub forwarded: u64,
    /// Datagrams dropped by the random loss.
    pub lost: u64,
    /// Datagrams dropped because their link was cut.
    pub partitioned: u64,
    /// Datagrams held back by a delay before being passed on (or dropped).
    pub delayed: u64,
    /// Datagrams passed on after one that arrived later than them.
    pub reordered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    lost: AtomicU64,
    partitioned: AtomicU64,
    delayed: AtomicU64,
    reordered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            lost: get(&self.lost),
            partitioned: get(&self.partitioned),
            delayed: get(&self.delayed),
            reordered: get(&self.reordered),
        }
    }
}

/// One holder's relay: its port, and whether it is cut.
struct Link {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

/// The relays of a job's holders (see the module's documentation).
pub struct FaultNet {
    links: Vec<Link>,
    tasks: Vec<JoinHandle<()>>,
}

impl FaultNet {
    /// Starts `holders` relays to the coordinator at `coordinator` (a loopback address),
    /// applying `faults`; loss draws are seeded from `seed`.
    pub async fn start(
        coordinator: SocketAddr,
        holders: usize,
        faults: Faults,
        seed: u64,
    ) -> std::io::Result<Self> {
        assert!(
            coordinator.ip().is_loopback(),
            "the fault proxy relays on loopback only"
        );
        let mut links = Vec::with_capacity(holders);
        let mut tasks = Vec::with_capacity(2 * holders);
        for i in 0..holders {
            // The holder's side, and the socket the coordinator sees this holder as.
            let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
            let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
            back.connect(coordinator).await?;
            let link = Link {
                addr: front.local_addr()?,
                cut: Arc::new(AtomicBool::new(false)),
                counters: Arc::default(),
            };
            let holder: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
            let seed = seed.wrapping_mul(1_000_003).wrapping_add(2 * i as u64);
            let relay = |from: Arc<UdpSocket>, to: Arc<UdpSocket>, dest: Dest, seed: u64| Relay {
                from,
                to,
                dest,
                faults,
                cut: Arc::clone(&link.cut),
                counters: Arc::clone(&link.counters),
                rng: StdRng::seed_from_u64(seed),
            };
            let up = relay(
                Arc::clone(&front),
                Arc::clone(&back),
                Dest::Connected(Arc::clone(&holder)),
                seed,
            );
            let down = relay(back, front, Dest::Holder(holder), seed + 1);
            tasks.push(tokio::spawn(up.run()));
            tasks.push(tokio::spawn(down.run()));
            links.push(link);
        }
        Ok(Self { links, tasks })
    }

    /// The address holder `i` connects to (its relay).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.links[i].addr
    }

    /// Cuts the links of `holders` (both ways) until [`FaultNet::heal`].
    pub fn partition(&self, holders: &[usize]) {
        for &i in holders {
            self.links[i].cut.store(true, Ordering::SeqCst);
        }
    }

    /// Restores the links of `holders`.
    pub fn heal(&self, holders: &[usize]) {
        for &i in holders {
            self.links[i].cut.store(false, Ordering::SeqCst);
        }
    }

    /// Every holder, for partitioning the coordinator from all of them.
    pub fn all(&self) -> Vec<usize> {
        (0..self.links.len()).collect()
    }

    /// What holder `i`'s relay has done so far, both directions.
    pub fn link_stats(&self, i: usize) -> Stats {
        self.links[i].counters.snapshot()
    }

    /// What the relays have done so far, summed.
    pub fn stats(&self) -> Stats {
        (0..self.links.len())
            .map(|i| self.link_stats(i))
            .fold(Stats::default(), |a, s| Stats {
                received: a.received + s.received,
                forwarded: a.forwarded + s.forwarded,
                lost: a.lost + s.lost,
                partitioned: a.partitioned + s.partitioned,
                delayed: a.delayed + s.delayed,
                reordered: a.reordered + s.reordered,
            })
    }
}

impl Drop for FaultNet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where a relay sends: to the coordinator through its connected socket (learning the
/// holder's address on the way), or back to the holder's learnt address.
enum Dest {
    Connected(Arc<Mutex<Option<SocketAddr>>>),
    Holder(Arc<Mutex<Option<SocketAddr>>>),
}

/// One direction of one link.
struct Relay {
    from: Arc<UdpSocket>,
    to: Arc<UdpSocket>,
    dest: Dest,
    faults: Faults,
    cut: Arc<AtomicBool>,
    counters: Arc<Counters>,
    rng: StdRng,
}

impl Relay {
    async fn run(mut self) {
        // Arrival order, and the latest arrival passed on so far: a datagram passed on
        // after a later one has been reordered.
        let last_sent = Arc::new(AtomicU64::new(0));
        let mut seq = 0u64;
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, peer) = match self.from.recv_from(&mut buf).await {
                Ok(r) => r,
                // ICMP errors (a peer gone, for now) surface here: keep relaying.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            };
            let c = &self.counters;
            c.received.fetch_add(1, Ordering::Relaxed);
            let to = match &self.dest {
                Dest::Connected(holder) => {
                    *holder.lock().expect("holder address") = Some(peer);
                    None
                }
                Dest::Holder(holder) => match *holder.lock().expect("holder address") {
                    Some(a) => Some(a),
                    // Nothing from the holder yet: nowhere to send.
                    None => continue,
                },
            };
            if self.cut.load(Ordering::SeqCst) {
                c.partitioned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let f = self.faults;
            if f.loss > 0.0 && self.rng.gen_bool(f.loss.min(1.0)) {
                c.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            seq += 1;
            let delay = if f.jitter.is_zero() {
                f.delay
            } else {
                let lo = f.delay.saturating_sub(f.jitter);
                let hi = f.delay + f.jitter;
                self.rng.gen_range(lo..=hi)
            };
            let datagram = buf[..n].to_vec();
            let send = Outgoing {
                to: Arc::clone(&self.to),
                addr: to,
                cut: Arc::clone(&self.cut),
                counters: Arc::clone(&self.counters),
                last_sent: Arc::clone(&last_sent),
                seq,
            };
            if delay.is_zero() {
                send.now(&datagram).await;
            } else {
                c.delayed.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    send.now(&datagram).await;
                });
            }
        }
    }
}

/// A datagram's way out once its delay is over.
struct Outgoing {
    to: Arc<UdpSocket>,
    addr: Option<SocketAddr>,
    cut: Arc<AtomicBool>,
    counters: Arc<Counters>,
    last_sent: Arc<AtomicU64>,
    seq: u64,
}

impl Outgoing {
    async fn now(self, datagram: &[u8]) {
        let c = &self.counters;
        // Cut while it was in flight: lost with the link.
        if self.cut.load(Ordering::SeqCst) {
            c.partitioned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.last_sent.fetch_max(self.seq, Ordering::Relaxed) > self.seq {
            c.reordered.fetch_add(1, Ordering::Relaxed);
        }
        let sent = match self.addr {
            Some(a) => self.to.send_to(datagram, a).await,
            None => self.to.send(datagram).await,
        };
        if sent.is_ok() {
            c.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}
