//! Socket activation, the way systemd starts a server on port 17 without root: the sockets are
//! made by the service manager and passed as descriptors 3 and up (`LISTEN_FDS`), and the
//! server says `READY=1` on `NOTIFY_SOCKET` when it is. Run under Debian's
//! `systemd-socket-activate` (package `systemd`; it needs no running systemd), two of them
//! nested, since one applies its `--datagram` to every socket it makes: the outer passes a TCP
//! socket, the inner adds a UDP one on the same port and runs the server, which tells the two
//! apart by their type. It serves Debian's fortunes directory (package `fortunes-min`).
//!
//! `cargo test -p acts --features system-tests --test socket_activation`
#![cfg(feature = "system-tests")]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use joke_index::FormatChoice;
use joke_index::dir::{index_listed, list_dir};

const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";
const FORTUNES: &str = "/usr/share/games/fortunes";
const RUN_ACT: &str = env!("CARGO_BIN_EXE_run-act");

/// Every joke of Debian's fortunes directory, in served form.
fn debian_jokes() -> HashSet<String> {
    let listing = list_dir(Path::new(FORTUNES), false)
        .unwrap_or_else(|e| panic!("{FORTUNES}: {e} (apt-get install fortunes-min)"));
    let mut jokes = HashSet::new();
    for file in &listing.files {
        let index = index_listed(file, FormatChoice::Auto).unwrap();
        jokes.extend(index.read_all_blocking().unwrap());
    }
    jokes
}

/// A loopback port free for both TCP and UDP just now.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// Connects (retrying while the outer activator is still starting) and reads one answer.
fn fetch(addr: SocketAddr, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => break stream,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("connecting to {addr}: {error}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("reading the joke");
    String::from_utf8(answer).expect("UTF-8")
}

#[test]
fn a_socket_activated_server_answers_tcp_and_udp_and_says_ready() {
    assert!(
        Path::new(ACTIVATE).is_file(),
        "{ACTIVATE} is missing (apt-get install systemd)"
    );
    let jokes = debian_jokes();
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let notify_dir = tempfile::tempdir().unwrap();
    let notify_path = notify_dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(ACTIVATE)
        .args(["-l", &listen, "--", ACTIVATE, "--datagram", "-l", &listen])
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
        .args([
            "--setenv=RUST_LOG=info",
            "--",
            RUN_ACT,
            "act2-spawn-blocking",
        ])
        .args(["--jokes", FORTUNES])
        // Ignored for inherited sockets, and said so.
        .args(["--addr", "127.0.0.1:1", "--backlog", "16"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting systemd-socket-activate");

    // The first connection makes the outer activator start the inner one, which starts the
    // server as soon as it sees that connection waiting.
    let first = fetch(addr, Duration::from_secs(20));
    let mut ready = [0u8; 256];
    let n = notify.recv(&mut ready).expect("READY=1 on NOTIFY_SOCKET");
    let ready = String::from_utf8_lossy(&ready[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS=serving"), "{ready:?}");

    let mut answers = vec![first];
    for _ in 0..5 {
        answers.push(fetch(addr, Duration::from_secs(5)));
    }
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.connect(addr).unwrap();
    for _ in 0..3 {
        udp.send(b"a joke, please\n").unwrap();
        let mut buffer = [0u8; 2048];
        let n = udp.recv(&mut buffer).expect("the datagram is answered");
        answers.push(String::from_utf8(buffer[..n].to_vec()).expect("UTF-8"));
    }
    for answer in &answers {
        assert!(
            jokes.contains(answer),
            "not one whole joke of {FORTUNES}: {answer:?}"
        );
    }

    // systemd-socket-activate execs the inner one, which execs the server: one process.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&server),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "serving the sockets the service manager passed: TCP 127.0.0.1:{port} and UDP \
             127.0.0.1:{port} (--addr and --backlog do not apply to them)"
        )),
        "{stderr}"
    );
    let _ = std::io::stdout().flush();
}

/// `LISTEN_FDS` naming a descriptor that is not a socket is refused at start-up, exit 2.
#[test]
fn a_passed_descriptor_that_is_no_socket_is_refused_with_2() {
    // Descriptor 3 is not open in the child (Rust opens everything close-on-exec); listenfd
    // takes a missing LISTEN_PID as "for this process".
    let output = Command::new(RUN_ACT)
        .args(["act1-naive", "--jokes", FORTUNES])
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LISTEN_FDS: descriptor 3 is neither a TCP nor a UDP socket"),
        "{stderr}"
    );
}
