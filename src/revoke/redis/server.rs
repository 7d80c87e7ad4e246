//! A real `redis-server` for one test: a free loopback port, its own temp dir, killed on drop.
//! Missing redis-server fails the test (it is a dependency of the test suite, not optional).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running (or killed, then restartable) redis-server.
pub struct Server {
    port: u16,
    dir: TempDir,
    durable: bool,
    child: Option<Child>,
}

impl Server {
    /// Starts one without persistence.
    pub fn start() -> Server {
        Server::launch(false)
    }

    /// Starts one with `appendonly yes` and `appendfsync always`: every acknowledged write
    /// survives a kill -9.
    pub fn durable() -> Server {
        Server::launch(true)
    }

    fn launch(durable: bool) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("the OS hands out a free loopback port")
            .port();
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let mut server = Server {
            port,
            dir,
            durable,
            child: None,
        };
        server.restart();
        server
    }

    /// redis://127.0.0.1:<port>/
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it the hard way (SIGKILL): nothing gets flushed on the way out.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port and dir, and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let appendonly = if self.durable { "yes" } else { "no" };
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", appendonly])
            .args(["--appendfsync", "always", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not on PATH: the Redis store tests need a real one \
                 (Debian/Ubuntu: apt-get install redis-server)"
            ),
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        self.child = Some(child);
        self.wait_for_pong();
    }

    fn wait_for_pong(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.pings() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0_u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
