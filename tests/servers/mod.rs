//! Real servers from Debian's packages, started privately on loopback for a
//! test, and a harness that reports a test whose server is missing as
//! ignored (with the reason), never as passed. Under
//! `RINGPOOL_REQUIRE_SERVERS=1` (as in CI) a missing server fails the test
//! instead.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// Finds `binary` on `PATH`, then in the `sbin` folders that a non-root
/// `PATH` often lacks (Debian puts `nginx` there), as `.ci/run` does.
pub fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .chain(postgres_bins())
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// Debian's PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`, not
/// on `PATH`), newest first.
fn postgres_bins() -> Vec<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.reverse();
    versions
}

/// Whether a missing server must fail its test.
fn servers_required() -> bool {
    std::env::var("RINGPOOL_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// A test that needs the server binary `needs`.
pub struct ServerTest {
    pub name: &'static str,
    pub needs: &'static str,
    pub run: fn(PathBuf),
}

/// Runs `tests` with libtest's command line and summary: a test whose
/// server is missing is reported as ignored, with the reason in its name,
/// or failed under `RINGPOOL_REQUIRE_SERVERS=1`.
pub fn run(tests: Vec<ServerTest>) -> ! {
    let arguments = Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|test| match find(test.needs) {
            Some(binary) => Trial::test(test.name, move || catch(move || (test.run)(binary))),
            None if servers_required() => Trial::test(test.name, move || {
                Err(Failed::from(format!(
                    "{} is required (RINGPOOL_REQUIRE_SERVERS=1) but not found on PATH; \
                     install it (apt-get install {})",
                    test.needs,
                    package(test.needs)
                )))
            }),
            None => Trial::test(
                format!("{} [not run: {} not found on PATH]", test.name, test.needs),
                || Ok(()),
            )
            .with_ignored_flag(true),
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit()
}

fn package(binary: &str) -> &str {
    match binary {
        "pg_ctl" | "initdb" | "postgres" => "postgresql",
        "mariadbd" | "mariadb-install-db" => "mariadb-server",
        other => other,
    }
}

/// Runs a test body, turning a panic into a failure with its message.
fn catch(body: impl FnOnce() + std::panic::UnwindSafe) -> Result<(), Failed> {
    std::panic::catch_unwind(body).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the test panicked".to_string());
        Failed::from(message)
    })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 20 s) until `done`, something another thread or the
/// server makes true; fails with `what` if it never does.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits, bounded, until `addr` accepts connections.
pub fn wait_listening(addr: SocketAddr, server: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server exited before listening: {status}");
        }
        if started.elapsed() > Duration::from_secs(30) {
            // Never left running after the test.
            let _ = server.kill();
            let _ = server.wait();
            panic!("{addr} never started listening");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A private `redis-server` on a loopback port, killed on drop; it can be
/// killed, restarted on the same port, paused and resumed.
pub struct Redis {
    binary: PathBuf,
    pub addr: SocketAddr,
    extra: Vec<String>,
    child: Option<Child>,
    /// Files the server reads (its TLS certificate), removed on drop.
    files: Option<PathBuf>,
}

impl Redis {
    /// Starts one with extra `redis-server` arguments (`--maxclients 4`).
    pub fn start(binary: PathBuf, extra: &[&str]) -> Redis {
        let port = free_port();
        let mut redis = Redis {
            binary,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
            child: None,
            files: None,
        };
        redis.restart();
        redis
    }

    /// Starts one with a plain port (`addr`, for the caller's own
    /// commands) and a TLS port (returned) serving this certificate;
    /// client certificates issued by `ca_pem` are required when
    /// `require_client_cert`.
    pub fn start_tls(
        binary: PathBuf,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        require_client_cert: bool,
    ) -> (Redis, u16) {
        let tls_port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "ringpool-redis-tls-{}-{tls_port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.display().to_string()
        };
        let args = [
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".to_string(),
            file("server.crt", cert_pem),
            "--tls-key-file".to_string(),
            file("server.key", key_pem),
            "--tls-ca-cert-file".to_string(),
            file("ca.crt", ca_pem),
            "--tls-auth-clients".to_string(),
            if require_client_cert { "yes" } else { "no" }.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut redis = Redis::start(binary, &args);
        redis.files = Some(dir);
        (redis, tls_port)
    }

    /// Starts the server (again) on its port and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(&self.binary)
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(self.addr, &mut child);
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and reaps it: its port refuses from now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the server a signal (`SIGSTOP` hangs it, `SIGCONT` resumes).
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our
        // own child, not yet reaped.
        let result = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(result, 0, "signal {signal}");
    }

    /// Runs one command on a fresh connection and returns the raw reply.
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = stream.read(&mut chunk).unwrap();
            reply.extend_from_slice(&chunk[..n]);
            if n == 0 || complete(&reply) {
                break;
            }
        }
        // Close, and wait for the server to close too: by then it has
        // dropped this client, so a `CLIENT KILL` or `CLIENT LIST` right
        // after never counts it (it did, once in a few hundred runs on a
        // busy machine). A server that does not close in time is left be.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.read_to_end(&mut Vec::new());
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// A number from `INFO` (for example `total_connections_received`).
    pub fn info_number(&self, section: &str, field: &str) -> u64 {
        let text = self.command(&["INFO", section]);
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
    }
}

/// Whether `reply` holds one whole RESP reply (simple, error, integer or
/// bulk string).
fn complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match reply.first() {
        Some(b'$') => {
            let len: i64 = String::from_utf8_lossy(&reply[1..end]).parse().unwrap_or(0);
            len < 0 || reply.len() >= end + 2 + len as usize + 2
        }
        _ => true,
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        if let Some(files) = &self.files {
            let _ = std::fs::remove_dir_all(files);
        }
    }
}

/// A private PostgreSQL cluster on a loopback port (`initdb` in a fresh
/// directory, `trust` authentication, no Unix socket), run as `nobody` when
/// the tests run as root (the server refuses root); stopped and removed on
/// drop.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// `-c` settings beyond the defaults (TLS).
    extra: Vec<String>,
}

impl Postgres {
    /// `initdb` names the binary the test found; its folder has `postgres`.
    pub fn start(initdb: PathBuf) -> Postgres {
        Self::start_with(initdb, None, None)
    }

    /// `start`, with TLS on (`ssl = on`) with this certificate and key.
    pub fn start_tls(initdb: PathBuf, cert_pem: &str, key_pem: &str) -> Postgres {
        Self::start_with(initdb, Some((cert_pem, key_pem)), None)
    }

    /// `start_tls`, and every TLS login must show a client certificate
    /// issued by `client_ca_pem` (`hostssl ... clientcert=verify-ca`).
    /// Plain logins stay open on loopback for the readiness probe.
    pub fn start_mutual_tls(
        initdb: PathBuf,
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
    ) -> Postgres {
        Self::start_with(initdb, Some((cert_pem, key_pem)), Some(client_ca_pem))
    }

    fn start_with(initdb: PathBuf, tls: Option<(&str, &str)>, client_ca: Option<&str>) -> Postgres {
        let bin = initdb.parent().unwrap().to_path_buf();
        let data = std::env::temp_dir().join(format!(
            "ringpool-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&data).unwrap();
        as_server_user(&data);
        let status = server_command(&initdb)
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed: {status}");
        let mut extra = Vec::new();
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem).unwrap();
                // The server refuses a key others can read.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                as_server_user(&path);
            }
            extra.push("ssl=on".to_string());
        }
        if let Some(ca) = client_ca {
            let path = data.join("client_ca.crt");
            std::fs::write(&path, ca).unwrap();
            as_server_user(&path);
            // Relative paths are read from the data directory.
            extra.push("ssl_ca_file=client_ca.crt".to_string());
            let hba = data.join("pg_hba.conf");
            std::fs::write(
                &hba,
                "hostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n\
                 hostnossl all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
            as_server_user(&hba);
        }
        let mut postgres = Postgres {
            bin,
            data,
            addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            child: None,
            extra,
        };
        postgres.restart();
        postgres
    }

    /// The connection string for `user` postgres on database postgres.
    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@{}:{}/postgres",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Starts the server (again) and waits until it accepts logins.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = server_command(&self.bin.join("postgres"))
            .args(["-D", self.data.to_str().unwrap()])
            .args(["-p", &self.addr.port().to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off"])
            .args(["-c", "max_connections=200"])
            .args(
                self.extra
                    .iter()
                    .flat_map(|setting| ["-c", setting.as_str()]),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(self.addr, &mut child);
        let started = Instant::now();
        while !self.accepts_logins() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "postgres never accepted a login"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child = Some(child);
    }

    /// Whether a login gets past the startup: the server answers a
    /// startup message with an authentication request (`R`), not an error
    /// (`E`: "the database system is starting up").
    fn accepts_logins(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let body = b"\0\x03\0\0user\0postgres\0database\0postgres\0\0";
        let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        startup.extend_from_slice(body);
        let mut reply = [0u8; 1];
        stream.write_all(&startup).is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && reply[0] == b'R'
    }

    /// A fast shutdown (`SIGINT`, what `pg_ctl stop -m fast` sends): every
    /// session is terminated; waits until the server exited.
    pub fn stop_fast(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: `kill` has no memory-safety preconditions; the pid is
            // our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }

    /// `pg_ctl restart -m fast`: a fast shutdown, then a start.
    pub fn restart_fast(&mut self) {
        self.stop_fast();
        self.restart();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_fast();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A command that runs as `nobody` when this process is root.
fn server_command(program: &std::path::Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.uid(NOBODY).gid(NOBODY);
    }
    command
}

const NOBODY: u32 = 65534;

/// Hands `dir` to the user the server runs as.
fn as_server_user(dir: &std::path::Path) {
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
}

/// A private `nginx` on a loopback port answering `pong`, that logs each
/// request's connection number (so reuse is counted by the server), killed
/// and removed on drop; it can be killed and started again on its port.
pub struct Nginx {
    binary: PathBuf,
    dir: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Files kept beside the configuration (certificates), removed on
    /// drop.
    extra_dir: Option<PathBuf>,
}

impl Nginx {
    /// Starts one that closes a connection (`Connection: close`) after
    /// `keepalive_requests` requests on it.
    pub fn start(binary: PathBuf, keepalive_requests: u32) -> Nginx {
        Nginx::start_with(
            binary,
            "",
            &format!("keepalive_requests {keepalive_requests};"),
        )
    }

    /// Starts one that speaks HTTP/2 with prior knowledge on its port,
    /// carrying at most `max_concurrent_streams` requests a connection.
    pub fn start_http2(binary: PathBuf, max_concurrent_streams: u32) -> Nginx {
        Nginx::start_with(
            binary,
            " http2",
            &format!("http2_max_concurrent_streams {max_concurrent_streams};"),
        )
    }

    /// Starts one that serves HTTPS with `cert_pem` and `key_pem`,
    /// closing a connection after `keepalive_requests` requests, and
    /// logging whether each connection's handshake resumed a session
    /// (`$ssl_session_reused`). With `client_ca_pem`, it requires a client
    /// certificate that CA issued (mutual TLS).
    pub fn start_https(
        binary: PathBuf,
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: Option<&str>,
        keepalive_requests: u32,
    ) -> Nginx {
        let files = std::env::temp_dir().join(format!(
            "ringpool-nginx-tls-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(files.join("key.pem"), key_pem).unwrap();
        let mut settings = format!(
            "keepalive_requests {keepalive_requests};\n\
             ssl_certificate {files}/cert.pem; ssl_certificate_key {files}/key.pem;\n\
             ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:ringpool:1m;",
            files = files.display()
        );
        if let Some(ca) = client_ca_pem {
            std::fs::write(files.join("client-ca.pem"), ca).unwrap();
            settings.push_str(&format!(
                "\nssl_verify_client on; ssl_client_certificate {}/client-ca.pem;",
                files.display()
            ));
        }
        let mut nginx = Nginx::start_with(binary, " ssl", &settings);
        nginx.extra_dir = Some(files);
        nginx
    }

    fn start_with(binary: PathBuf, listen: &str, settings: &str) -> Nginx {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("ringpool-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let config = format!(
            "daemon off; master_process off; pid {dir}/nginx.pid; error_log {dir}/logs/error.log;\n\
             events {{}}\n\
             http {{ log_format conn '$connection $connection_requests $request_uri $ssl_session_reused';\n\
               access_log {dir}/logs/access.log conn;\n\
               {settings}\n\
               client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};\n\
               uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               server {{ listen 127.0.0.1:{port}{listen};\n\
                 location / {{ return 200 \"pong\"; }}\n\
                 location /large {{ return 200 \"{large}\"; }} }} }}\n",
            dir = dir.display(),
            large = "x".repeat(4000),
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let mut nginx = Nginx {
            binary,
            dir,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            child: None,
            extra_dir: None,
        };
        nginx.restart();
        nginx
    }

    /// Starts the server (again) and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(&self.binary)
            .args(["-p", &self.dir.display().to_string()])
            .args(["-c", &self.dir.join("nginx.conf").display().to_string()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(self.addr, &mut child);
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and reaps it: its port refuses from now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The access log: one `(connection number, request number on it,
    /// uri)` per request logged so far.
    pub fn requests(&self) -> Vec<(u64, u64, String)> {
        let log = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let mut fields = line.split(' ');
                let mut number = || fields.next().unwrap().parse::<u64>().unwrap();
                let (conn, nth) = (number(), number());
                (conn, nth, fields.next().unwrap_or("").to_string())
            })
            .collect()
    }

    /// HTTPS: the connections that carried requests, and of those the
    /// ones whose handshake resumed a session (`$ssl_session_reused` is
    /// `r`), from the access log.
    pub fn tls_sessions(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        let mut connections = std::collections::HashMap::new();
        for line in log.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if let (Some(conn), Some(reused)) = (fields.first(), fields.get(3)) {
                connections.insert(conn.to_string(), *reused == "r");
            }
        }
        let resumed = connections.values().filter(|&&reused| reused).count();
        (connections.len(), resumed)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(dir) = &self.extra_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A private MariaDB server on a loopback port (`mariadb-install-db` in a
/// fresh directory, then `mariadbd` on it, with its socket in that
/// directory), run as root's own user when the tests run as root
/// (`--user=root`); killed and removed on drop.
pub struct Mariadb {
    dir: PathBuf,
    pub addr: SocketAddr,
    mariadbd: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Mariadb {
    /// `mariadbd` names the server binary the test found; the installer
    /// is found on `PATH`.
    pub fn start(mariadbd: PathBuf) -> Mariadb {
        Self::start_with(mariadbd, None, None)
    }

    /// `start`, with TLS on (`require_secure_transport`: plain logins are
    /// refused) with this certificate and key.
    pub fn start_tls(mariadbd: PathBuf, cert_pem: &str, key_pem: &str) -> Mariadb {
        Self::start_with(mariadbd, Some((cert_pem, key_pem)), None)
    }

    /// `start_tls`, and client certificates issued by `client_ca_pem` are
    /// checked (`--ssl-ca`), for users created `REQUIRE X509`.
    pub fn start_mutual_tls(
        mariadbd: PathBuf,
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
    ) -> Mariadb {
        Self::start_with(mariadbd, Some((cert_pem, key_pem)), Some(client_ca_pem))
    }

    fn start_with(
        mariadbd: PathBuf,
        tls: Option<(&str, &str)>,
        client_ca: Option<&str>,
    ) -> Mariadb {
        let install = find("mariadb-install-db").expect("mariadb-install-db next to mariadbd");
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("ringpool-mariadb-{}-{port}", std::process::id()));
        // Each server has a temporary directory of its own: in the shared
        // `/tmp`, installers run side by side collide on their temporary
        // tables' names and fail.
        let tmpdir = format!("--tmpdir={}", dir.join("tmp").display());
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let user = mariadb_user();
        let installed = Command::new(install)
            .args([
                "--no-defaults",
                &format!("--datadir={}", dir.join("data").display()),
                &tmpdir,
                &format!("--user={user}"),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .unwrap();
        assert!(
            installed.status.success(),
            "mariadb-install-db failed ({}):\n{}{}",
            installed.status,
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", dir.join("data").display()),
            tmpdir,
            format!("--socket={}", dir.join("sock").display()),
            format!("--pid-file={}", dir.join("pid").display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--user={user}"),
            "--skip-log-bin".to_string(),
            "--innodb-buffer-pool-size=16M".to_string(),
            "--max-connections=200".to_string(),
        ];
        if let Some((cert, key)) = tls {
            std::fs::write(dir.join("server.crt"), cert).unwrap();
            std::fs::write(dir.join("server.key"), key).unwrap();
            args.extend([
                format!("--ssl-cert={}", dir.join("server.crt").display()),
                format!("--ssl-key={}", dir.join("server.key").display()),
                "--require-secure-transport=ON".to_string(),
            ]);
        }
        if let Some(ca) = client_ca {
            std::fs::write(dir.join("client_ca.crt"), ca).unwrap();
            args.push(format!("--ssl-ca={}", dir.join("client_ca.crt").display()));
        }
        let mut mariadb = Mariadb {
            dir,
            addr,
            mariadbd,
            args,
            child: None,
        };
        mariadb.restart();
        mariadb
    }

    /// Starts the server (again) on its port and data, and waits until it
    /// listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(&self.mariadbd)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(self.addr, &mut child);
        let started = Instant::now();
        while !self.greets() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "mariadbd never greeted a client"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child = Some(child);
    }

    /// Whether a client is greeted with the server's handshake (protocol
    /// version 10), not an error packet: a server still starting may
    /// listen before it serves.
    fn greets(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        // Three bytes of length, one of sequence, then the payload.
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).is_ok() && header[4] == 10
    }

    /// Kills the server (`SIGKILL`: every session cut, no goodbye) and
    /// waits until it exited.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The URL for user root (no password) on database `mysql`, over TCP
    /// (`mysql_async` would otherwise move a loopback connection to the
    /// server's Unix socket, a second connection each).
    pub fn url(&self) -> String {
        self.url_for("root")
    }

    /// [`url`](Self::url) for another user (no password).
    pub fn url_for(&self, user: &str) -> String {
        format!(
            "mysql://{user}@{}:{}/mysql?prefer_socket=false",
            self.addr.ip(),
            self.addr.port()
        )
    }
}

/// The user `mariadbd` runs as: root's own when the tests run as root.
fn mariadb_user() -> String {
    // SAFETY: `geteuid` has no preconditions.
    match unsafe { libc::geteuid() } {
        0 => "root".to_string(),
        _ => std::env::var("USER").unwrap_or_else(|_| "nobody".to_string()),
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
