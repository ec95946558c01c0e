//! The real binary: `--help`, `site create`, and `serve` on SQLite and PostgreSQL, as an
//! operator would run them.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{batch, reply, track, Backend, TestDb};
use nudge_server::store::Store;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nudge-server");

/// The binary with a clean environment for the variables it reads.
fn nudge(db: &TestDb) -> Command {
    let mut cmd = Command::new(BIN);
    for var in ["NUDGE_DB", "NUDGE_LISTEN", "NUDGE_KEY_RATE", "NUDGE_ADDR_RATE", "NUDGE_TRUST_FORWARDED_FOR"] {
        cmd.env_remove(var);
    }
    cmd.env("DATABASE_URL", db.url());
    cmd
}

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_lists_flags_and_variables() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "site create",
        "site config",
        "--site",
        "--listen",
        "NUDGE_LISTEN",
        "--db",
        "DATABASE_URL",
        "--origin",
        "--key-rate",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    let out = Command::new(BIN).args(["serve", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

async fn site_create_then_serve(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = nudge(&db)
        .args([
            "site",
            "create",
            "--name",
            "Shop",
            "--origin",
            "https://Shop.example/",
            "--origin",
            "http://localhost:8780",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let site: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(site["name"], "Shop");
    assert_eq!(site["origins"], serde_json::json!(["http://localhost:8780", "https://shop.example"]));
    let (id, write_key) = (site["siteId"].as_str().unwrap(), site["writeKey"].as_str().unwrap());
    assert!(id.starts_with("site_") && write_key.starts_with("wk_"));
    assert!(site["secretKey"].as_str().unwrap().starts_with("sk_"));

    let bad = nudge(&db).args(["site", "create", "--name", "X", "--origin", "shop.example"]).output().unwrap();
    assert!(!bad.status.success());

    // site config: set thresholds from a file, then print them.
    let file = std::env::temp_dir().join(format!("nudge-thresholds-{id}.json"));
    std::fs::write(&file, r#"{"thresholds": {"decision_days": 5}}"#).unwrap();
    let out = nudge(&db).args(["site", "config", "--site", id, "--file"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["overrides"], serde_json::json!({"decision_days": 5}));
    let out = nudge(&db).args(["site", "config", "--site", id]).output().unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&printed["thresholds"]["decision_days"], &printed["thresholds"]["consideration_views"]),
        (&serde_json::json!(5), &serde_json::json!(3))
    );
    std::fs::write(&file, r#"{"decision_dayz": 5}"#).unwrap();
    assert!(!nudge(&db).args(["site", "config", "--site", id, "--file"]).arg(&file).output().unwrap().status.success());
    assert!(!nudge(&db).args(["site", "config", "--site", "site_nope"]).output().unwrap().status.success());
    let _ = std::fs::remove_file(&file);

    let mut child = nudge(&db).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    // Wait for the line that says requests can be sent.
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening line").to_string();

    let client = reqwest::Client::new();
    let request = client
        .post(format!("{url}/v1/batch"))
        .basic_auth(write_key, Some(""))
        .header("content-type", "application/json")
        .body(batch(vec![track("m-1"), track("m-2")]).to_string());
    let (status, json) = reply(request.send().await.unwrap()).await;
    assert_eq!((status, &json["stored"]), (200, &serde_json::json!(2)), "{json}");
    drop(server);

    let store = Store::open(&db.database, 1).await.unwrap();
    let events = store.events_after(id, 0, 10).await.unwrap();
    let ids: Vec<_> = events.into_iter().filter(|e| !common::is_derived(e)).map(|e| e.event.message_id).collect();
    assert_eq!(ids, ["m-1", "m-2"]);
    store.close().await;
}

on_both_backends!(site_create_then_serve);
