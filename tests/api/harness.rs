//! Real backing services for black-box tests: `redis-server` processes (standalone, and a master + replica +
//! three Sentinels) and a fresh MariaDB database per test.
//!
//! Contract: every server listens on 127.0.0.1 on a free port with its own temp directory, is started as a
//! child process and stopped by its PID when its handle drops — also when the test panics. Start-up is
//! awaited by polling with a deadline (never a fixed sleep). MariaDB: the local server at 127.0.0.1:3306
//! (root, empty password) gets a uniquely named database that is dropped afterwards; when no local server
//! answers, a private `mariadbd` is started in a temp dir instead.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns true or the deadline passes.
pub fn wait_until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out after {deadline:?} waiting for {what}");
}

/// Sends one command to a Redis-protocol server and returns the raw reply (first reply only, simple parse).
/// Waits until the Redis master on `port` lists a replica `state=online`: online, not merely attached — a
/// replica waiting for its full sync (`wait_bgsave`, at least `repl-diskless-sync-delay`, 5 s) acknowledges
/// no `WAIT`.
pub fn wait_replica_online(port: u16, within: Duration) {
    wait_until("replica online", within, || {
        redis_cmd(port, &["INFO", "replication"]).is_some_and(|s| s.contains("state=online"))
    });
}

pub fn redis_cmd(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(300),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1000))).ok()?;
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    s.write_all(cmd.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    read_reply(&mut r)
}

fn read_reply(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let line = line.trim_end().to_string();
    match line.chars().next()? {
        '+' | '-' | ':' => Some(line),
        '$' => {
            let n: i64 = line[1..].parse().ok()?;
            if n < 0 {
                return Some("(nil)".into());
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
        }
        '*' => {
            let n: i64 = line[1..].parse().ok()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Some(items.join(" "))
        }
        _ => Some(line),
    }
}

fn ensure_binary(name: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{name} is not installed: run scripts/test.sh, which installs it"
    );
}

/// A child process stopped by PID on drop.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// One `redis-server` (standalone or replica).
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    replica_of: Option<u16>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_inner(None, free_port())
    }

    pub fn start_replica_of(master: u16) -> RedisServer {
        Self::start_inner(Some(master), free_port())
    }

    fn start_inner(replica_of: Option<u16>, port: u16) -> RedisServer {
        ensure_binary("redis-server");
        let dir = tempfile::tempdir().unwrap();
        let mut s = RedisServer {
            port,
            dir,
            proc: None,
            replica_of,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
        ])
        .arg(self.dir.path())
        .args(["--logfile", "redis.log"]);
        if let Some(m) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.proc = Some(Proc {
            name: format!("redis-server:{}", self.port),
            child,
        });
        let p = self.port;
        wait_until(
            &format!("redis-server on {p}"),
            Duration::from_secs(10),
            || redis_cmd(p, &["PING"]).as_deref() == Some("+PONG"),
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL by PID), keeping its port for [`RedisServer::restart`].
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }
}

/// A Sentinel process.
pub struct Sentinel {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

/// Master + replica + three Sentinels (quorum 2, down-after 1000 ms, failover-timeout 3000 ms).
pub struct SentinelTopology {
    pub master_name: String,
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<Sentinel>,
}

impl SentinelTopology {
    pub fn start() -> SentinelTopology {
        let master = RedisServer::start();
        let replica = RedisServer::start_replica_of(master.port);
        let mp = master.port;
        wait_replica_online(mp, Duration::from_secs(20));
        let master_name = "mymaster".to_string();
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\nlogfile sentinel.log\n\
                     sentinel monitor {master_name} 127.0.0.1 {mp} 2\n\
                     sentinel down-after-milliseconds {master_name} 1000\n\
                     sentinel failover-timeout {master_name} 3000\n\
                     sentinel parallel-syncs {master_name} 1\n",
                    dir.path().display()
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis sentinel");
            sentinels.push(Sentinel {
                port,
                dir,
                proc: Some(Proc {
                    name: format!("sentinel:{port}"),
                    child,
                }),
            });
        }
        for s in &sentinels {
            let p = s.port;
            wait_until(
                &format!("sentinel {p} knows the master and its peers"),
                Duration::from_secs(20),
                || {
                    let addr = redis_cmd(p, &["SENTINEL", "get-master-addr-by-name", "mymaster"]);
                    let peers = redis_cmd(p, &["SENTINEL", "sentinels", "mymaster"]);
                    addr.is_some_and(|a| a.contains(&mp.to_string()))
                        && peers.is_some_and(|x| x.matches("127.0.0.1").count() >= 2)
                },
            );
        }
        SentinelTopology {
            master_name,
            master,
            replica,
            sentinels,
        }
    }

    /// `host:port,host:port,…` for `MAPLE_REDIS_SENTINELS`.
    pub fn sentinel_list(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master address the first Sentinel reports.
    pub fn reported_master_port(&self) -> Option<u16> {
        let r = redis_cmd(
            self.sentinels[0].port,
            &["SENTINEL", "get-master-addr-by-name", &self.master_name],
        )?;
        r.split_whitespace().nth(1)?.parse().ok()
    }
}

/// A fresh database for one test, dropped afterwards.
pub struct TestDatabase {
    pub name: String,
    pub port: u16,
    private: Option<PrivateMariaDb>,
}

struct PrivateMariaDb {
    _dir: tempfile::TempDir,
    _proc: Proc,
}

fn mariadb_client_ok(port: u16, sql: &str) -> bool {
    Command::new("mariadb")
        .args([
            "--protocol=TCP",
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-uroot",
            "-e",
            sql,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The port of a MariaDB server to use: the local one when it answers, else a private one started once per
/// test process (kept for the process's lifetime).
fn mariadb_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        ensure_binary("mariadb");
        if mariadb_client_ok(3306, "SELECT 1") {
            return 3306;
        }
        let db = start_private_mariadb();
        let port = db.port;
        // Leak on purpose: one private server for the whole test process, stopped when the process exits
        // (the child is in our process group; scripts/test.sh also stops stray private servers).
        Box::leak(Box::new(db));
        port
    })
}

struct PrivateServer {
    port: u16,
    _db: PrivateMariaDb,
}

fn start_private_mariadb() -> PrivateServer {
    ensure_binary("mariadbd");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = Command::new("mariadb-install-db")
        .args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .arg(format!("--datadir={}", data.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("mariadb-install-db");
    assert!(status.success(), "mariadb-install-db failed");
    let port = free_port();
    let child = Command::new("mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!(
            "--socket={}",
            dir.path().join("mysqld.sock").display()
        ))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-grant-tables=0",
            "--user=root",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mariadbd");
    let proc = Proc {
        name: format!("mariadbd:{port}"),
        child,
    };
    wait_until("private mariadbd", Duration::from_secs(60), || {
        mariadb_client_ok(port, "SELECT 1")
    });
    PrivateServer {
        port,
        _db: PrivateMariaDb {
            _dir: dir,
            _proc: proc,
        },
    }
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let port = mariadb_port();
        let name = format!("maple_test_{}_{:08x}", std::process::id(), rand_u32());
        assert!(
            mariadb_client_ok(
                port,
                &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            ),
            "cannot create test database {name}"
        );
        TestDatabase {
            name,
            port,
            private: None,
        }
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{}", self.port, self.name)
    }

    /// Runs SQL in this database through the `mariadb` client and returns its tab-separated output.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args([
                "--protocol=TCP",
                "-h",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "-uroot",
                "-N",
                "-B",
                &self.name,
                "-e",
                sql,
            ])
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        mariadb_client_ok(
            self.port,
            &format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

/// Reads a file to a string (empty when missing), for diagnostics in assertion messages.
pub fn read_log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
