//! A real SMTP server for the tests: `tests/smtp/sink.py` (aiosmtpd) run as a child
//! process on a free port, saving each message as a file; and a small reader of those
//! files (headers, and the decoded text and HTML parts).

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// A Python 3 that has aiosmtpd (the one on PATH, else Debian's).
fn python() -> &'static str {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate).args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return candidate;
        }
    }
    panic!("no python3 with aiosmtpd: run scripts/install-tools (apt-get install python3-aiosmtpd)");
}

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The sink, killed when dropped.
pub struct Sink {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sink {
    /// A sink on a free port, saving into a new temporary directory.
    pub fn start() -> Sink {
        let dir = std::env::temp_dir().join(format!("nudge-mail-{}", nudge_server::sites::random_hex(6).unwrap()));
        Sink::start_on(free_port(), dir)
    }

    /// A sink on `port` saving into `dir`; returns once it accepts connections.
    pub fn start_on(port: u16, dir: PathBuf) -> Sink {
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/sink.py");
        let child = Command::new(python())
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the SMTP sink");
        let mut sink = Sink { child: Some(child), port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = sink.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the SMTP sink exited: {status}");
            }
            assert!(Instant::now() < deadline, "the SMTP sink did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(20)); // polling the port
        }
        sink
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the saved messages stay).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The messages received so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| Mail::parse(&std::fs::read_to_string(p).unwrap())).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Top-level headers, lowercase names, unfolded.
    pub headers: HashMap<String, String>,
    /// The decoded `text/plain` part.
    pub text: String,
    /// The decoded `text/html` part.
    pub html: String,
    /// The raw message.
    pub raw: String,
}

fn split_head(s: &str) -> (HashMap<String, String>, &str) {
    let s = s.trim_start_matches(['\r', '\n']);
    let (head, body) = s.split_once("\r\n\r\n").or_else(|| s.split_once("\n\n")).unwrap_or((s, ""));
    let mut headers = HashMap::new();
    let mut last: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(name) = &last {
                headers.entry(name.clone()).and_modify(|v: &mut String| v.push_str(line.trim_start()));
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            headers.insert(name.clone(), value.trim().to_string());
            last = Some(name);
        }
    }
    (headers, body)
}

fn decode(headers: &HashMap<String, String>, body: &str) -> String {
    match headers.get("content-transfer-encoding").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("base64") => {
            let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(clean).unwrap()).unwrap()
        }
        Some("quoted-printable") => {
            let mut out = Vec::new();
            let joined = body.replace("=\r\n", "").replace("=\n", "");
            let bytes = joined.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        _ => body.to_string(),
    }
}

impl Mail {
    /// Parses a saved message (a multipart/alternative of text and HTML, or one part).
    pub fn parse(raw: &str) -> Mail {
        let (headers, body) = split_head(raw);
        let mut mail =
            Mail { headers: headers.clone(), text: String::new(), html: String::new(), raw: raw.to_string() };
        let content_type = headers.get("content-type").cloned().unwrap_or_default();
        if let Some(b) = content_type.split("boundary=").nth(1) {
            let boundary = format!("--{}", b.trim_matches('"').split(';').next().unwrap().trim_matches('"'));
            for part in body.split(boundary.as_str()).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let (h, b) = split_head(part);
                let text = decode(&h, b.trim_end_matches(['\r', '\n']));
                let ct = h.get("content-type").cloned().unwrap_or_default();
                if ct.starts_with("text/plain") {
                    mail.text = text;
                } else if ct.starts_with("text/html") {
                    mail.html = text;
                }
            }
        } else {
            mail.text = decode(&headers, body);
        }
        mail
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(&name.to_ascii_lowercase()).map_or("", String::as_str)
    }

    /// The unsubscribe link from `List-Unsubscribe`.
    pub fn unsubscribe_url(&self) -> String {
        let h = self.header("List-Unsubscribe");
        h.trim().trim_start_matches('<').trim_end_matches('>').to_string()
    }
}
