//! A real nginx in front of the gateway with `auth_request`: started by the test on a free
//! loopback port, with its own prefix, config and logs in a temp dir (never the system
//! service), killed on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{addr_in_use, eventually, free_port, Gateway, RawResponse, TestDir, DEADLINE};

/// The nginx binary: on PATH, in /usr/sbin, or installed with apt-get when missing.
/// None (with the reason) only when it cannot be found or installed.
pub fn nginx_binary() -> Result<PathBuf, String> {
    let find = || {
        ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "nginx"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match (installed, find()) {
        (_, Some(found)) => Ok(found),
        (Ok(status), None) => Err(format!("apt-get install nginx exited with {status}")),
        (Err(err), None) => Err(format!("apt-get could not run: {err}")),
    }
}

/// nginx proxying to `upstream_url`, asking `gw`'s forward-auth endpoint first.
pub struct Nginx {
    child: Child,
    dir: TestDir,
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx; Err(reason) only when no nginx binary can be had.
    pub async fn start(gw: &Gateway, upstream_url: &str) -> Result<Nginx, String> {
        let binary = nginx_binary()?;
        let mut dir = TestDir::new();
        for attempt in 1..=4 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            std::fs::create_dir_all(dir.join("temp")).expect("nginx temp dir");
            let conf = dir.write("nginx.conf", &config(&dir, gw, addr, upstream_url));
            let err_log = dir.join("error.log");
            let log = std::fs::File::create(dir.join("stderr.log")).expect("nginx stderr log");
            let child = Command::new(&binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(&err_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
            let mut nginx = Nginx { child, dir, addr };
            let up = eventually(DEADLINE, || {
                let exited = nginx.child.try_wait().ok().flatten();
                async move {
                    if let Some(status) = exited {
                        return Err(format!("nginx exited with {status}"));
                    }
                    TcpStream::connect(addr)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            match up {
                Ok(()) => return Ok(nginx),
                Err(_) if attempt < 4 && addr_in_use(&nginx.log()) => {
                    let _ = nginx.child.kill();
                    let _ = nginx.child.wait();
                    dir = std::mem::take(&mut nginx.dir);
                    continue;
                }
                Err(e) => panic!("nginx did not start: {e}\n{}", nginx.log()),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// nginx's error log and stderr.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    /// `METHOD path HTTP/1.1` to nginx, written byte for byte, with `Connection: close`.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        let fut = async {
            let mut s = TcpStream::connect(self.addr).await.expect("connect nginx");
            s.write_all(req.as_bytes()).await.expect("write to nginx");
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.expect("read from nginx");
            buf
        };
        let buf = tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("nginx answered within 10 s");
        RawResponse::parse(&buf).unwrap_or_else(|| {
            panic!(
                "no HTTP response from nginx: {:?}\n{}",
                String::from_utf8_lossy(&buf),
                self.log()
            )
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- nginx log -----\n{}\n----- end -----", self.log());
        }
    }
}

/// The README's nginx snippet, on test ports: one process in the foreground (so killing
/// it stops everything), every path inside `dir`, the gateway's cert verified.
fn config(dir: &TestDir, gw: &Gateway, addr: SocketAddr, upstream_url: &str) -> String {
    let d = dir.path().display();
    let cert = gw.dir.join("cert.pem");
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    server {{
        listen {addr};

        location = /_portcullis_verify {{
            internal;
            proxy_pass https://{gw_addr}/auth/verify;
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_trusted_certificate {cert};
            proxy_ssl_verify on;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host $host;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }}

        location / {{
            auth_request /_portcullis_verify;
            auth_request_set $auth_user $upstream_http_x_auth_user;
            auth_request_set $auth_roles $upstream_http_x_auth_roles;
            proxy_set_header X-Auth-User $auth_user;
            proxy_set_header X-Auth-Roles $auth_roles;
            proxy_pass {upstream_url};
            auth_request_set $auth_redirect $upstream_http_x_auth_redirect;
            auth_request_set $auth_challenge $upstream_http_www_authenticate;
            error_page 401 = @portcullis_sign_in;
        }}

        location @portcullis_sign_in {{
            if ($auth_redirect) {{
                return 302 $auth_redirect;
            }}
            add_header WWW-Authenticate $auth_challenge always;
            return 401;
        }}

        location /auth/ {{
            proxy_pass https://{gw_addr};
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_trusted_certificate {cert};
            proxy_ssl_verify on;
            proxy_set_header Host $host;
        }}
    }}
}}
"#,
        gw_addr = gw.https,
        cert = cert.display(),
    )
}
