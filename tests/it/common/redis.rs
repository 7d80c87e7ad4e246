//! A real `redis-server` on a free loopback port with its own directory, killed on Drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port, TestDir};

/// A running redis-server.
pub struct Redis {
    child: Option<Child>,
    /// AOF with fsync always: every acknowledged write survives a kill -9.
    durable: bool,
    pub port: u16,
    dir: TestDir,
    /// PEM certificate the server presents when it speaks TLS only.
    tls_cert: Option<String>,
}

impl Redis {
    /// Starts redis-server (AOF on, fsync always) and waits until it answers PING.
    pub async fn start() -> Redis {
        Redis::launch(true).await
    }

    /// Starts redis-server without persistence, for tests that never restart it.
    pub async fn start_volatile() -> Redis {
        Redis::launch(false).await
    }

    async fn launch(durable: bool) -> Redis {
        let dir = TestDir::new();
        let port = free_port();
        let mut redis = Redis {
            child: None,
            durable,
            port,
            dir,
            tls_cert: None,
        };
        redis.spawn().await;
        redis
    }

    /// Starts redis-server speaking TLS only, with a certificate for 127.0.0.1 made here.
    pub async fn start_tls() -> Redis {
        let dir = TestDir::new();
        let (cert, key, _) = super::tls_cert();
        dir.write("redis-cert.pem", &cert);
        dir.write("redis-key.pem", &key);
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
            durable: true,
            tls_cert: Some(cert),
        };
        redis.spawn().await;
        redis
    }

    /// Path of the certificate a TLS server presents (the CA a client must trust).
    pub fn tls_cert_file(&self) -> std::path::PathBuf {
        self.dir.join("redis-cert.pem")
    }

    /// `rediss://127.0.0.1:PORT/`.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.port)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `url()` as the stores take it.
    pub fn target(&self) -> portcullis::store::Target {
        portcullis::store::Target::parse(&self.url(), None).expect("a redis:// URL parses")
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (the AOF is replayed).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        if self.tls_cert.is_some() {
            let cert = self.dir.join("redis-cert.pem");
            let key = self.dir.join("redis-key.pem");
            command.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ]);
            command
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&key);
            command.arg("--tls-ca-cert-file").arg(&cert);
        } else {
            command.args(["--port", &port]);
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server must be installed (apt-get install redis-server): {e}")
            });
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let tls = self.tls_cert.is_some();
        let ready = eventually(Duration::from_secs(10), || {
            let addr = addr.clone();
            async move {
                match tls {
                    // A plain PING cannot cross TLS; an accepting port is enough there.
                    true => tokio::net::TcpStream::connect(&addr)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    false => ping(&addr).await,
                }
            }
        })
        .await;
        ready.expect("redis-server answers PING");
    }
}

impl Redis {
    /// Runs one command (e.g. `CLIENT PAUSE 2000 WRITE`) on a fresh connection and returns
    /// the first line of the reply, as `redis-cli` would send it.
    pub async fn command(&self, args: &[&str]) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let addr = format!("127.0.0.1:{}", self.port);
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect to redis-server");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the command");
        let mut line = String::new();
        tokio::io::BufReader::new(stream)
            .read_line(&mut line)
            .await
            .expect("read the reply");
        line.trim_end().to_string()
    }
}

async fn ping(addr: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"PING\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
    (buf[..n].starts_with(b"+PONG"))
        .then_some(())
        .ok_or_else(|| "no PONG yet".to_string())
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
