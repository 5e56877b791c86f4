//! Real `redis-server` and `memcached` processes for tests: each on a free 127.0.0.1 port (or a
//! unix socket) in its own temp dir, with no persistence, waited for until it answers (bounded),
//! and killed by pid when dropped, also when the test panics. They also die with the test
//! process (`PR_SET_PDEATHSIG`), so an aborted run leaves nothing behind.
//!
//! Fault injection: [`Proc::kill`], [`Proc::freeze`] (SIGSTOP), [`Proc::thaw`] (SIGCONT) and
//! [`Proc::restart`] (same port, same files).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a server may take to answer after being spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Spawn attempts when a just-picked free port is taken by someone else first.
const PORT_ATTEMPTS: usize = 5;

/// A port that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone)]
enum Probe {
    /// Send `request` over TCP, expect a reply starting with one of `expect`.
    Tcp {
        port: u16,
        request: &'static [u8],
        expect: &'static [&'static [u8]],
    },
    /// The same over a unix socket.
    Unix {
        path: PathBuf,
        request: &'static [u8],
        expect: &'static [&'static [u8]],
    },
    /// A TLS port: the harness speaks no TLS, so wait for the log line and an accepting socket.
    TlsLog { port: u16, log: PathBuf },
}

fn ask(mut s: impl Read + Write, request: &[u8], expect: &[&[u8]]) -> bool {
    let mut buf = [0u8; 64];
    s.write_all(request).is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| expect.iter().any(|e| buf[..n].starts_with(e)))
}

impl Probe {
    fn answers(&self) -> bool {
        let t = Some(Duration::from_millis(500));
        match self {
            Probe::Tcp {
                port,
                request,
                expect,
            } => {
                let addr = ([127, 0, 0, 1], *port).into();
                match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                    Ok(s) => {
                        s.set_read_timeout(t).unwrap();
                        ask(s, request, expect)
                    }
                    Err(_) => false,
                }
            }
            Probe::Unix {
                path,
                request,
                expect,
            } => match UnixStream::connect(path) {
                Ok(s) => {
                    s.set_read_timeout(t).unwrap();
                    ask(s, request, expect)
                }
                Err(_) => false,
            },
            Probe::TlsLog { port, log } => {
                std::fs::read_to_string(log)
                    .is_ok_and(|l| l.contains("Ready to accept connections"))
                    && TcpStream::connect(("127.0.0.1", *port)).is_ok()
            }
        }
    }
}

/// One server process and how to start it again.
pub struct Proc {
    name: &'static str,
    program: &'static str,
    args: Vec<String>,
    log: PathBuf,
    probe: Probe,
    child: Option<Child>,
}

impl Proc {
    fn spawn(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the server
        // when the thread that spawned it (a test thread) goes away.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "{} is not installed: it is needed by these tests (`.ci/run` installs it with apt-get)",
                self.program
            ),
            Err(e) => panic!("cannot start {}: {e}", self.program),
        };
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.probe.answers() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("{} exited early ({status})", self.name));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "{} did not answer within {READY_TIMEOUT:?}",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's pid (while it runs).
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("server not running").id()).unwrap()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// SIGKILL and reap: the server vanishes with its connections, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing. Returns once every thread
    /// of the server is stopped: the signal itself is asynchronous, and a worker thread could
    /// otherwise still answer a request sent right after.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.all_threads_stopped() {
            assert!(Instant::now() < deadline, "{} did not stop", self.name);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn all_threads_stopped(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return false;
        };
        tasks.flatten().all(|t| {
            // The state is the field after the parenthesised command name.
            std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_some_and(|state| state == "T" || state == "t")
            })
        })
    }

    /// SIGCONT after [`Proc::freeze`].
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills the server if it runs, then starts it again on the same port and waits for it.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("{} restart failed: {e}\n{}", self.name, self.log_text());
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `make(port)` on a free port, retrying on a fresh port when the server exits early
/// (another process took the port between our check and its bind).
fn start_on_free_port(make: impl Fn(u16) -> Proc) -> (Proc, u16) {
    let mut errors = Vec::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut p = make(port);
        match p.spawn() {
            Ok(()) => return (p, port),
            Err(e) => errors.push(format!("{e}\n{}", p.log_text())),
        }
    }
    panic!("server did not start:\n{}", errors.join("\n---\n"));
}

fn tmp() -> TempDir {
    tempfile::Builder::new()
        .prefix("ostro-srv-")
        .tempdir()
        .unwrap()
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// Files for a TLS server, signed by a throwaway CA made with openssl.
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[String]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| s(x)).collect()
}

impl TlsFiles {
    /// A CA and a server certificate for `127.0.0.1`/`localhost` (P-256 keys, 2 days), in `dir`
    /// with file names starting with `name`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        let f = |suffix: &str| format!("{name}-{suffix}");
        let ec = strings(&[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ]);
        let mut ca = strings(&["req", "-x509"]);
        ca.extend(ec.iter().cloned());
        ca.extend([
            s("-keyout"),
            f("ca.key"),
            s("-out"),
            f("ca.crt"),
            s("-days"),
            s("2"),
            s("-subj"),
            format!("/CN=ostro-session test CA {name}"),
            s("-addext"),
            s("basicConstraints=critical,CA:TRUE"),
            s("-addext"),
            s("keyUsage=critical,keyCertSign,cRLSign"),
        ]);
        openssl(dir, &ca);
        let mut req = strings(&["req"]);
        req.extend(ec);
        req.extend([
            s("-keyout"),
            f("server.key"),
            s("-out"),
            f("server.csr"),
            s("-subj"),
            s("/CN=localhost"),
        ]);
        openssl(dir, &req);
        std::fs::write(
            dir.join(f("ext.cnf")),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                s("x509"),
                s("-req"),
                s("-in"),
                f("server.csr"),
                s("-CA"),
                f("ca.crt"),
                s("-CAkey"),
                f("ca.key"),
                s("-CAcreateserial"),
                s("-out"),
                f("server.crt"),
                s("-days"),
                s("2"),
                s("-extfile"),
                f("ext.cnf"),
            ],
        );
        Self {
            ca_cert: dir.join(f("ca.crt")),
            cert: dir.join(f("server.crt")),
            key: dir.join(f("server.key")),
        }
    }
}

/// A `redis-server` with no persistence.
pub struct RedisServer {
    pub proc: Proc,
    /// The TCP (or TLS) port; 0 for a unix-socket-only server.
    pub port: u16,
    /// The unix socket, for [`RedisServer::start_unix`].
    pub socket: Option<PathBuf>,
    /// The CA that signed the server certificate, for [`RedisServer::start_tls`].
    pub tls: Option<TlsFiles>,
    pub dir: TempDir,
}

fn redis_args(dir: &Path, extra: &[String]) -> Vec<String> {
    let mut a = vec![
        s("--bind"),
        s("127.0.0.1"),
        s("--save"),
        s(""),
        s("--appendonly"),
        s("no"),
        s("--dir"),
        dir.to_str().unwrap().to_owned(),
        s("--logfile"),
        s(""),
    ];
    a.extend_from_slice(extra);
    a
}

const PING: &[u8] = b"PING\r\n";
/// A server started with `--requirepass` answers PING with a NOAUTH error: still an answer.
const PONG: &[&[u8]] = &[b"+PONG", b"-NOAUTH"];

impl RedisServer {
    /// On a free loopback port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// On a free loopback port, with extra `redis-server` arguments (e.g. `--requirepass`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tmp();
        let log = dir.path().join("redis.log");
        let extra: Vec<String> = extra.iter().map(|x| s(x)).collect();
        let (proc, port) = start_on_free_port(|port| {
            let mut args = redis_args(dir.path(), &[s("--port"), port.to_string()]);
            args.extend(extra.iter().cloned());
            Proc {
                name: "redis-server",
                program: "redis-server",
                args,
                log: log.clone(),
                probe: Probe::Tcp {
                    port,
                    request: PING,
                    expect: PONG,
                },
                child: None,
            }
        });
        Self {
            proc,
            port,
            socket: None,
            tls: None,
            dir,
        }
    }

    /// TLS only, on a free loopback port, with a certificate from a fresh test CA.
    pub fn start_tls() -> Self {
        let dir = tmp();
        let tls = TlsFiles::generate(dir.path(), "redis");
        let log = dir.path().join("redis.log");
        let (proc, port) = start_on_free_port(|port| {
            // redis writes its log to stdout, which goes to `log`.
            let args = redis_args(
                dir.path(),
                &[
                    s("--port"),
                    s("0"),
                    s("--tls-port"),
                    port.to_string(),
                    s("--tls-cert-file"),
                    tls.cert.to_str().unwrap().to_owned(),
                    s("--tls-key-file"),
                    tls.key.to_str().unwrap().to_owned(),
                    s("--tls-ca-cert-file"),
                    tls.ca_cert.to_str().unwrap().to_owned(),
                    s("--tls-auth-clients"),
                    s("no"),
                ],
            );
            // A fresh log per attempt, so the readiness line is this attempt's.
            let _ = std::fs::remove_file(&log);
            Proc {
                name: "redis-server (tls)",
                program: "redis-server",
                args,
                log: log.clone(),
                probe: Probe::TlsLog {
                    port,
                    log: log.clone(),
                },
                child: None,
            }
        });
        Self {
            proc,
            port,
            socket: None,
            tls: Some(tls),
            dir,
        }
    }

    /// On a unix socket only.
    pub fn start_unix() -> Self {
        let dir = tmp();
        let path = dir.path().join("redis.sock");
        let log = dir.path().join("redis.log");
        let mut proc = Proc {
            name: "redis-server (unix)",
            program: "redis-server",
            args: redis_args(
                dir.path(),
                &[
                    s("--port"),
                    s("0"),
                    s("--unixsocket"),
                    path.to_str().unwrap().to_owned(),
                    s("--unixsocketperm"),
                    s("700"),
                ],
            ),
            log,
            probe: Probe::Unix {
                path: path.clone(),
                request: PING,
                expect: PONG,
            },
            child: None,
        };
        if let Err(e) = proc.spawn() {
            panic!("{e}\n{}", proc.log_text());
        }
        Self {
            proc,
            port: 0,
            socket: Some(path),
            tls: None,
            dir,
        }
    }

    /// The URL a handler connects with.
    pub fn url(&self) -> String {
        match (&self.socket, &self.tls) {
            (Some(p), _) => format!("redis+unix://{}", p.display()),
            (None, Some(_)) => format!("rediss://127.0.0.1:{}", self.port),
            (None, None) => format!("redis://127.0.0.1:{}", self.port),
        }
    }
}

/// A `memcached` with UDP off.
pub struct MemcachedServer {
    pub proc: Proc,
    pub port: u16,
    pub dir: TempDir,
}

impl MemcachedServer {
    /// On a free loopback port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra arguments (e.g. `-I 2m` for a larger item limit).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tmp();
        let log = dir.path().join("memcached.log");
        let extra: Vec<String> = extra.iter().map(|x| s(x)).collect();
        let (proc, port) = start_on_free_port(|port| {
            let mut args = vec![
                s("-l"),
                s("127.0.0.1"),
                s("-p"),
                port.to_string(),
                s("-U"),
                s("0"),
            ];
            // memcached refuses to run as root unless told which user to be.
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                args.extend([s("-u"), s("root")]);
            }
            args.extend(extra.iter().cloned());
            Proc {
                name: "memcached",
                program: "memcached",
                args,
                log: log.clone(),
                probe: Probe::Tcp {
                    port,
                    request: b"version\r\n",
                    expect: &[b"VERSION"],
                },
                child: None,
            }
        });
        Self { proc, port, dir }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
