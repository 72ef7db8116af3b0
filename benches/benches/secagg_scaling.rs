//! How a SecAgg+ round scales in the number of participants n (issue #13): one whole
//! round in memory for each n, timing the coordinator's work per phase (receiving every
//! message of the phase, closing it, and building what each participant is sent next, as
//! `cairn_protocol::secure_round` does) and one client's (the median over the clients).
//!
//! `cargo bench -p cairn-benches --bench secagg_scaling [-- N...]` (default n = 100, 300,
//! 1000). Times are the CPU time of the one thread that runs everything, so that other
//! work on a shared machine does not count. d = 10^4 ring elements; (k, t) is what cairn runs: `choose_params` against a
//! malicious coordinator at δ = 0.1, γ = 0.05. 5% of the participants drop after sharing
//! their keys (their mask keys are rebuilt) and 5% after their masked input (their self
//! masks are rebuilt from shares, though they never sign nor answer). The unmasked sum is
//! checked against the plain sum. Bytes are bincode (standard config), as on the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_crypto::ring::{add_assign, RingElem};
use cairn_crypto::secagg::*;
use cairn_crypto::sign::IdentityKey;
use cairn_crypto::{ParticipantId, RoundId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const D: usize = 10_000;

/// What the coordinator sends each participant after phase 0.
fn rosters(server: &ShareRouting) -> Vec<(ParticipantId, Vec<AdvertiseKeys>)> {
    server
        .advertised()
        .map(|id| (id, server.roster_for(id)))
        .collect()
}

fn encoded<T: serde::Serialize>(v: &T) -> usize {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).map_or(0, |v| v.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// CPU time of this thread: on a machine shared with other work, wall time would count
/// theirs too.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Runs `f`, returning its result and the CPU time it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = cpu_now();
    let out = f();
    (out, cpu_now().saturating_sub(t))
}

/// One round's figures.
struct Row {
    n: u32,
    k: usize,
    t: usize,
    /// Coordinator, per phase: keys, shares, masked input, consistency, unmask (+ finish).
    coord: [Duration; 5],
    /// One client, per phase: configuration (the graph), advertise, share keys, mask,
    /// consistency, unmask.
    client: [Duration; 6],
    /// Bytes one client receives: the keys roster, the unmask request.
    roster_bytes: usize,
    request_bytes: usize,
}

fn round(n: u32) -> Row {
    let p = choose_params(&ParamRequest::new(n as usize, 0.1, 0.05)).expect("feasible");
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(n));
    let ids: Vec<ParticipantId> = (0..n).map(ParticipantId).collect();
    let keys: Vec<IdentityKey> = ids.iter().map(|_| IdentityKey::random(&mut rng)).collect();
    let identities: std::collections::BTreeMap<_, _> = ids
        .iter()
        .zip(&keys)
        .map(|(&id, key)| (id, key.public()))
        .collect();
    let graph_seed: [u8; 32] = rng.gen();
    let round_id = RoundId::new("scaling", n);
    // Every client builds the configuration (and so the graph) itself: time a few.
    let mut setup = Vec::new();
    let mut config = None;
    for _ in 0..5 {
        let (c, took) = timed(|| {
            RoundConfig::new(
                round_id,
                graph_seed,
                p.k,
                p.threshold,
                D,
                identities.clone(),
            )
            .expect("valid")
        });
        setup.push(took);
        config = Some(c);
    }
    let config = Arc::new(config.expect("built"));
    // Who drops: every 20th after sharing, every 20th (offset by 10) after masking.
    let drops_after_sharing = |id: ParticipantId| id.0 % 20 == 7;
    let drops_after_masking = |id: ParticipantId| id.0 % 20 == 17;
    let mut coord = [Duration::ZERO; 5];
    let mut client: [Vec<Duration>; 6] = Default::default();
    client[0] = setup;

    // Phase 0: advertise.
    let mut clients = Vec::new();
    let mut msgs = Vec::new();
    for (&id, key) in ids.iter().zip(&keys) {
        let mut crng = ChaCha20Rng::seed_from_u64(u64::from(id.0) + 1);
        let ((c, m), took) =
            timed(|| ClientAdvertised::new(config.clone(), id, key, &mut crng).expect("member"));
        client[1].push(took);
        clients.push((id, c, crng));
        msgs.push(m);
    }
    let ((server, rosters), took) = timed(|| {
        let mut server = KeyCollection::new(config.clone());
        for m in msgs {
            server.receive(m).expect("valid");
        }
        let server = server.close().expect("enough");
        let rosters = rosters(&server);
        (server, rosters)
    });
    coord[0] = took;
    let roster_bytes = encoded(&rosters[0].1);

    // Phase 1: share keys.
    let mut shared = Vec::new();
    let mut msgs = Vec::new();
    for ((id, c, mut crng), (to, roster)) in clients.into_iter().zip(rosters) {
        assert_eq!(id, to);
        let ((c, m), took) = timed(|| c.share_keys(&roster, &mut crng).expect("honest"));
        client[2].push(took);
        shared.push((id, c, crng));
        msgs.push(m);
    }
    let ((server, inboxes), took) = timed(|| {
        let mut server = server;
        for m in msgs {
            server.receive(m).expect("valid");
        }
        let server = server.close().expect("enough");
        let inboxes: Vec<Vec<EncryptedShare>> = server
            .shared()
            .map(|id| server.inbox(id).to_vec())
            .collect();
        (server, inboxes)
    });
    coord[1] = took;

    // Phase 2: masked input.
    let mut expected = vec![0 as RingElem; D];
    let mut masked = Vec::new();
    let mut msgs = Vec::new();
    for ((id, c, mut crng), inbox) in shared.into_iter().zip(inboxes) {
        let x: Vec<RingElem> = (0..D).map(|_| crng.gen()).collect();
        if drops_after_sharing(id) {
            continue;
        }
        add_assign(&mut expected, &x);
        let ((c, m), took) = timed(|| c.mask(&inbox, x).expect("honest"));
        client[3].push(took);
        masked.push((id, c));
        msgs.push(m);
    }
    let ((server, lists), took) = timed(|| {
        let mut server = server;
        for m in &msgs {
            server.receive(m).expect("valid");
        }
        let server = server.close().expect("enough");
        let lists: Vec<Vec<ParticipantId>> = server
            .survivors()
            .iter()
            .map(|_| server.survivors().to_vec())
            .collect();
        (server, lists)
    });
    drop(msgs);
    coord[2] = took;

    // Phase 3: consistency.
    let mut ready = Vec::new();
    let mut msgs = Vec::new();
    for ((id, c), list) in masked.into_iter().zip(lists) {
        if drops_after_masking(id) {
            continue;
        }
        let key = &keys[id.0 as usize];
        let ((c, m), took) = timed(|| c.consistency(&list, key).expect("honest"));
        client[4].push(took);
        ready.push((id, c));
        msgs.push(m);
    }
    let ((server, requests), took) = timed(|| {
        let mut server = server;
        for m in msgs {
            server.receive(m).expect("valid");
        }
        let server = server.close().expect("enough");
        let requests: Vec<(ParticipantId, UnmaskRequest)> = server
            .survivors()
            .iter()
            .filter_map(|&id| Some((id, server.request_for(id)?)))
            .collect();
        (server, requests)
    });
    coord[3] = took;
    let request_bytes = encoded(&requests[0].1);

    // Phase 4: unmask.
    let mut requests = requests.into_iter();
    let mut msgs = Vec::new();
    for (id, c) in ready {
        let req = requests
            .by_ref()
            .find(|(to, _)| *to == id)
            .expect("a request for every signer")
            .1;
        let (m, took) = timed(|| c.unmask(&req).expect("honest"));
        client[5].push(took);
        msgs.push(m);
    }
    let (sum, took) = timed(|| {
        let mut server = server;
        for m in msgs {
            server.receive(m).expect("valid");
        }
        server.finish().expect("recoverable")
    });
    coord[4] = took;
    assert_eq!(sum, expected, "n = {n}: the round must be exact");

    Row {
        n,
        k: p.k,
        t: p.threshold,
        coord,
        client: client.map(median),
        roster_bytes,
        request_bytes,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// Milliseconds with two decimals (a client's cheaper steps take well under 0.1 ms).
fn ms2(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Runs the rounds and prints the table (markdown, as benches/README.md quotes it).
fn main() {
    let mut ns: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if ns.is_empty() {
        ns = vec![100, 300, 1000];
    }
    let rows: Vec<Row> = ns
        .into_iter()
        .map(|n| {
            let wall = Instant::now();
            let (row, took) = timed(|| round(n));
            eprintln!(
                "n = {n}: whole simulation {:.1} s CPU, {:.1} s wall",
                took.as_secs_f64(),
                wall.elapsed().as_secs_f64()
            );
            row
        })
        .collect();
    println!("coordinator, CPU ms per phase (d = {D}):");
    println!(
        "| n | (k, t) | keys | shares | masked input | consistency | unmask + finish | total |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let total: Duration = r.coord.iter().sum();
        println!(
            "| {} | ({}, {}) | {} | {} | {} | {} | {} | {} |",
            r.n,
            r.k,
            r.t,
            ms(r.coord[0]),
            ms(r.coord[1]),
            ms(r.coord[2]),
            ms(r.coord[3]),
            ms(r.coord[4]),
            ms(total)
        );
    }
    println!("one client, CPU ms per phase (median over the clients; configuration: median of 5 builds):");
    println!("| n | configuration (graph) | advertise | share keys | mask | consistency | unmask | total | roster bytes | unmask request bytes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let total: Duration = r.client.iter().sum();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.n,
            ms2(r.client[0]),
            ms2(r.client[1]),
            ms2(r.client[2]),
            ms2(r.client[3]),
            ms2(r.client[4]),
            ms2(r.client[5]),
            ms2(total),
            r.roster_bytes,
            r.request_bytes
        );
    }
}
