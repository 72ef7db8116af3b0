//! Network namespaces joined by veth pairs, with `netem` on the links: the coordinator in
//! a namespace of its own, each holder in another, holder i reaching the coordinator at
//! 10.77.i.1 over its own veth pair (10.77.i.2 on its side). Every link carries a netem
//! qdisc at both ends (each direction delayed and lossy alike); a partition sets the loss
//! of a link to 100 % at both ends, healing restores the link's settings. The processes
//! (`cairn coordinator`, `cairn participant`) run in their namespaces with `ip netns exec`.
//!
//! Needs root, `ip` and `tc`, and a kernel with network namespaces and `sch_netem`:
//! [`probe`] tries each and says which is missing. Namespaces are named after the test
//! process and deleted when the [`Topology`] is dropped, also when a test fails.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `program args`, returning its stderr as the error when it fails.
fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace name unique to this process and call.
fn fresh_name(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "cairn-{}-{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes a namespace when dropped.
struct Ns(String);

impl Ns {
    fn add(what: &str) -> Result<Self, String> {
        let name = fresh_name(what);
        sh("ip", &["netns", "add", &name])?;
        let ns = Ns(name);
        sh("ip", &["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &self.0]);
    }
}

/// Whether this machine can run the netem tests; `Err` says what is missing.
pub fn probe() -> Result<(), String> {
    for tool in ["ip", "tc"] {
        if Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err(format!(
                "network namespaces unavailable: no `{tool}` command"
            ));
        }
    }
    let ns = Ns::add("probe").map_err(|e| format!("network namespaces unavailable: {e}"))?;
    sh("ip", &["netns", "exec", &ns.0, "true"])
        .map_err(|e| format!("network namespaces unavailable: cannot run a process in one: {e}"))?;
    sh(
        "tc",
        &[
            "-n", &ns.0, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ],
    )
    .map_err(|e| {
        if e.contains("qdisc kind is unknown") {
            format!("netem unavailable: the kernel has no sch_netem qdisc ({e})")
        } else {
            format!("netem unavailable: {e}")
        }
    })?;
    Ok(())
}

/// One holder's link: its namespace and the netem settings of the link.
struct Link {
    ns: Ns,
    netem: Vec<String>,
}

/// The namespaces of a job (see the module's documentation).
pub struct Topology {
    coordinator: Ns,
    links: Vec<Link>,
}

/// The interface of holder `i`'s link on the coordinator's side (holders' side: `c0`).
fn coordinator_end(i: usize) -> String {
    format!("h{i}")
}

impl Topology {
    /// Namespaces for a coordinator and `holders` holders, each link shaped by `netem`
    /// (netem's arguments, e.g. `["delay", "100ms", "50ms", "loss", "5%"]`).
    pub fn new(holders: usize, netem: &[&str]) -> Result<Self, String> {
        let coordinator = Ns::add("c")?;
        let mut links = Vec::with_capacity(holders);
        for i in 0..holders {
            let ns = Ns::add(&format!("h{i}"))?;
            let (c, h) = (&coordinator.0, &ns.0);
            let end = coordinator_end(i);
            sh(
                "ip",
                &[
                    "link", "add", "name", &end, "netns", c, "type", "veth", "peer", "name", "c0",
                    "netns", h,
                ],
            )?;
            let (c_addr, h_addr) = (format!("10.77.{i}.1/24"), format!("10.77.{i}.2/24"));
            sh("ip", &["-n", c, "addr", "add", &c_addr, "dev", &end])?;
            sh("ip", &["-n", h, "addr", "add", &h_addr, "dev", "c0"])?;
            sh("ip", &["-n", c, "link", "set", &end, "up"])?;
            sh("ip", &["-n", h, "link", "set", "c0", "up"])?;
            let link = Link {
                ns,
                netem: netem.iter().map(|s| s.to_string()).collect(),
            };
            for (n, dev) in link.ends(&coordinator, i) {
                let mut args = vec!["-n", n, "qdisc", "add", "dev", dev.as_str()];
                args.extend(["root", "netem"]);
                args.extend(link.netem.iter().map(String::as_str));
                sh("tc", &args)?;
            }
            links.push(link);
        }
        Ok(Self { coordinator, links })
    }

    /// `cmd` to run in the coordinator's namespace.
    pub fn in_coordinator(&self, program: &str) -> Command {
        exec_in(&self.coordinator.0, program)
    }

    /// `cmd` to run in holder `i`'s namespace.
    pub fn in_holder(&self, i: usize, program: &str) -> Command {
        exec_in(&self.links[i].ns.0, program)
    }

    /// Where holder `i` reaches the coordinator listening on `port`.
    pub fn coordinator_addr(&self, i: usize, port: u16) -> String {
        format!("10.77.{i}.1:{port}")
    }

    fn set(&self, holders: &[usize], cut: bool) -> Result<(), String> {
        for &i in holders {
            let link = &self.links[i];
            for (n, dev) in link.ends(&self.coordinator, i) {
                let mut args = vec!["-n", n, "qdisc", "change", "dev", dev.as_str()];
                args.extend(["root", "netem"]);
                if cut {
                    args.extend(["loss", "100%"]);
                } else {
                    args.extend(link.netem.iter().map(String::as_str));
                    // `change` keeps what it is not told: put the loss back explicitly.
                    if !link.netem.iter().any(|a| a == "loss") {
                        args.extend(["loss", "0%"]);
                    }
                }
                sh("tc", &args)?;
            }
        }
        Ok(())
    }

    /// Cuts the links of `holders` (both ways).
    pub fn partition(&self, holders: &[usize]) -> Result<(), String> {
        self.set(holders, true)
    }

    /// Restores the links of `holders`.
    pub fn heal(&self, holders: &[usize]) -> Result<(), String> {
        self.set(holders, false)
    }

    /// Every holder, for partitioning the coordinator from all of them.
    pub fn all(&self) -> Vec<usize> {
        (0..self.links.len()).collect()
    }

    /// Packets sent and dropped by the links' qdiscs so far (both ends of every link),
    /// from `tc -s`.
    pub fn stats(&self) -> (u64, u64) {
        let (mut sent, mut dropped) = (0, 0);
        for (i, link) in self.links.iter().enumerate() {
            for (n, dev) in link.ends(&self.coordinator, i) {
                let Ok(text) = sh("tc", &["-s", "-n", n, "qdisc", "show", "dev", &dev]) else {
                    continue;
                };
                // "Sent 1234 bytes 56 pkt (dropped 7, overlimits 0 requeues 0)"
                let words: Vec<&str> = text.split_whitespace().collect();
                for w in words.windows(2) {
                    match w {
                        [n, "pkt"] => sent += n.parse::<u64>().unwrap_or(0),
                        ["(dropped", n] => {
                            dropped += n.trim_end_matches(',').parse::<u64>().unwrap_or(0)
                        }
                        _ => {}
                    }
                }
            }
        }
        (sent, dropped)
    }
}

impl Link {
    /// Both ends of holder `i`'s link: (namespace, interface).
    fn ends<'a>(&'a self, coordinator: &'a Ns, i: usize) -> [(&'a str, String); 2] {
        [
            (coordinator.0.as_str(), coordinator_end(i)),
            (self.ns.0.as_str(), "c0".to_string()),
        ]
    }
}

fn exec_in(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}
