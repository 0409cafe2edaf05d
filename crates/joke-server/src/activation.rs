//! Sockets handed over by a service manager, and telling it when we are ready: systemd's
//! socket activation and `sd_notify`, the way a daemon gets port 17 without running as root.
//!
//! With a `.socket` unit, systemd (or `systemd-socket-activate` by hand) creates and binds the
//! listening sockets itself, privileged port and all, and starts the server with them already
//! open as file descriptors 3, 4, ..., saying so in the environment: `LISTEN_FDS` (how many)
//! and `LISTEN_PID` (for which process). The server never binds: `--addr` and `--backlog` do
//! not apply to a socket it inherits (the `.socket` unit's `ListenStream=` and `Backlog=` do).
//! `deploy/tokio-jokes.socket` and `deploy/tokio-jokes.service` are such a pair.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// The sockets a service manager passed: at most one TCP listener and one UDP socket, each
/// used instead of the one the server would bind. `Arc`s, so that a [`Config`](crate::Config)
/// holding them stays `Clone`; the server takes its own descriptor of each (`try_clone`).
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    pub tcp: Option<Arc<TcpListener>>,
    pub udp: Option<Arc<UdpSocket>>,
}

impl Inherited {
    /// The sockets passed to this process, if any: `LISTEN_FDS` and `LISTEN_PID` read (and
    /// removed from the environment, so that no child of ours takes them for its own) by the
    /// `listenfd` crate, which also checks that each descriptor is a socket of the kind asked.
    ///
    /// Call it once, before any thread is started: it changes the environment. Each
    /// descriptor is told apart by its type (`SO_TYPE`), so the order of the `.socket` unit's
    /// lines does not matter. Fails, naming the descriptor, for one that is neither a TCP
    /// listener nor a UDP socket, and for a second socket of one kind.
    pub fn from_env() -> Result<Option<Inherited>, String> {
        let mut fds = listenfd::ListenFd::from_env();
        if fds.len() == 0 {
            return Ok(None);
        }
        let mut inherited = Inherited::default();
        for n in 0..fds.len() {
            // The descriptor's number, as the service manager counts them (3 is the first).
            let fd = 3 + n;
            if let Ok(Some(tcp)) = fds.take_tcp_listener(n) {
                if inherited.tcp.is_some() {
                    return Err(format!(
                        "LISTEN_FDS: descriptor {fd} is a second TCP socket; one TCP and one \
                         UDP socket at most (one ListenStream= and one ListenDatagram=)"
                    ));
                }
                inherited.tcp = Some(Arc::new(tcp));
                continue;
            }
            match fds.take_udp_socket(n) {
                Ok(Some(udp)) if inherited.udp.is_none() => inherited.udp = Some(Arc::new(udp)),
                Ok(Some(_)) => {
                    return Err(format!(
                        "LISTEN_FDS: descriptor {fd} is a second UDP socket; one TCP and one \
                         UDP socket at most (one ListenStream= and one ListenDatagram=)"
                    ));
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(format!(
                        "LISTEN_FDS: descriptor {fd} is neither a TCP nor a UDP socket ({error})"
                    ));
                }
            }
        }
        Ok(Some(inherited))
    }

    /// The TCP listener, as a descriptor of the server's own, ready for Tokio.
    pub fn tcp_listener(&self) -> Option<io::Result<tokio::net::TcpListener>> {
        let tcp = self.tcp.as_ref()?;
        Some(tcp.try_clone().and_then(|tcp| {
            // Tokio's sockets are non-blocking; one inherited may not be.
            tcp.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(tcp)
        }))
    }

    /// The UDP socket, likewise.
    pub fn udp_socket(&self) -> Option<io::Result<tokio::net::UdpSocket>> {
        let udp = self.udp.as_ref()?;
        Some(udp.try_clone().and_then(|udp| {
            udp.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(udp)
        }))
    }

    /// The addresses passed, for the start-up line.
    pub fn describe(&self) -> String {
        let addr = |addr: io::Result<SocketAddr>| {
            addr.map_or_else(|error| format!("? ({error})"), |addr| addr.to_string())
        };
        let mut parts = Vec::new();
        if let Some(tcp) = &self.tcp {
            parts.push(format!("TCP {}", addr(tcp.local_addr())));
        }
        if let Some(udp) = &self.udp {
            parts.push(format!("UDP {}", addr(udp.local_addr())));
        }
        parts.join(" and ")
    }
}

// ANCHOR: notify
/// Tells the service manager that the server is ready (`READY=1`), when it asked to be told:
/// `NOTIFY_SOCKET` names a Unix datagram socket (a path, or `@name` in the abstract
/// namespace). Returns whether a message was sent.
///
/// This is the whole of `sd_notify` that a server needs, so it is written here over std's
/// `UnixDatagram` rather than taken from a crate: one datagram of text, no descriptors passed,
/// no watchdog. A `Type=notify` service is "started" only once this arrives, so a unit that
/// depends on it never meets a server that is still indexing.
pub fn notify_ready(status: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let message = format!("READY=1\nSTATUS={status}\n");
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match target.as_bytes().strip_prefix(b"@") {
        Some(name) => send_abstract(&socket, name, message.as_bytes())?,
        None => socket.send_to(message.as_bytes(), &target).map(drop)?,
    }
    Ok(true)
}
// ANCHOR_END: notify

#[cfg(target_os = "linux")]
fn send_abstract(
    socket: &std::os::unix::net::UnixDatagram,
    name: &[u8],
    message: &[u8],
) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &std::os::unix::net::UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<()> {
    Err(io::Error::other(
        "NOTIFY_SOCKET names an abstract socket, which only Linux has",
    ))
}
