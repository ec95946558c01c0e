//! Command-line parsing, by hand (two commands and a dozen flags do not need a crate).
//! Flags win over environment variables, which win over defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{Config, Database, Rate, DEFAULT_DB_PATH};
use crate::webhooks::worker::Settings as WebhookSettings;

/// What to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// `serve`: run the HTTP server.
    Serve(Box<Config>),
    /// `site create`: add a site and print its keys as JSON.
    CreateSite {
        /// Where to add it.
        database: Database,
        /// Display name.
        name: String,
        /// Allowed browser origins.
        origins: Vec<String>,
    },
    /// `site config`: set a site's threshold overrides from a file (if given) and print
    /// its config as JSON.
    SiteConfig {
        /// Where the site is.
        database: Database,
        /// The site id.
        site: String,
        /// A JSON file: `{"thresholds": {...}}` or the thresholds object alone.
        file: Option<String>,
    },
    /// `webhook add|list|remove`: manage a site's webhooks; prints JSON.
    Webhook {
        /// Where the site is.
        database: Database,
        /// The site id.
        site: String,
        /// What to do.
        action: crate::webhooks::CliAction,
    },
    /// `campaigns load|list`: replace a site's campaigns from a file, or print them; prints
    /// JSON.
    Campaigns {
        /// Where the site is.
        database: Database,
        /// The site id.
        site: String,
        /// What to do.
        action: crate::campaigns::api::CliAction,
    },
    /// `catalog load`: replace a site's catalogue from a JSON or CSV file; prints JSON.
    Catalog {
        /// Where the site is.
        database: Database,
        /// The site id.
        site: String,
        /// The file: `.json` (an array of products) or `.csv` (a header row, then products).
        file: String,
    },
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// `--help`: every command, flag and environment variable.
pub const HELP: &str = "\
nudge-server: Segment-compatible event ingest, shared profiles and site config for Nudge

USAGE:
    nudge-server serve [FLAGS]
    nudge-server site create --name NAME [--origin ORIGIN]... [--db PATH | --database-url URL]
    nudge-server site config --site ID [--file thresholds.json] [--db PATH | --database-url URL]
    nudge-server webhook add --site ID --url URL [--event NAME]... [--db PATH | --database-url URL]
    nudge-server webhook list --site ID [--db PATH | --database-url URL]
    nudge-server webhook remove --site ID --id WEBHOOK_ID [--db PATH | --database-url URL]
    nudge-server campaigns load --site ID --file campaigns.json|campaigns.toml [--db PATH | --database-url URL]
    nudge-server campaigns list --site ID [--db PATH | --database-url URL]
    nudge-server catalog load --site ID --file products.json|products.csv [--db PATH | --database-url URL]
    nudge-server --help | --version

DATABASE (every command):
    --db PATH                 SQLite file, created if missing        [env NUDGE_DB, default ./nudge.db]
    --database-url URL        postgres://... (or sqlite://PATH); wins over --db
                                                                     [env DATABASE_URL]
    --db-connections N        most pooled connections                [env NUDGE_DB_CONNECTIONS, default 10]

SERVE:
    --listen ADDR             address to listen on                   [env NUDGE_LISTEN, default 127.0.0.1:8700]
    --key-rate N              requests per second per write key, 0 = unlimited
                                                                     [env NUDGE_KEY_RATE, default 1000]
    --key-burst N             requests a key may send at once        [env NUDGE_KEY_BURST, default 2000]
    --addr-rate N             requests per second per client address, 0 = unlimited
                                                                     [env NUDGE_ADDR_RATE, default 500]
    --addr-burst N            requests an address may send at once   [env NUDGE_ADDR_BURST, default 1000]
    --trust-forwarded-for     take the client address from the last X-Forwarded-For entry
                              (only behind a proxy that sets it)     [env NUDGE_TRUST_FORWARDED_FOR=1]
    --webhook-poll-ms N       pause of the webhook worker when idle  [env NUDGE_WEBHOOK_POLL_MS, default 250]
    --webhook-backoff-ms N    first retry's wait, doubled per retry up to an hour, for 24 hours
                                                                     [env NUDGE_WEBHOOK_BACKOFF_MS, default 10000]
    --webhook-timeout-ms N    time limit of each webhook POST        [env NUDGE_WEBHOOK_TIMEOUT_MS, default 10000]
    --no-webhook-worker       do not deliver webhooks from this process (another node does)
                                                                     [env NUDGE_WEBHOOK_WORKER=0]
    --abandon-poll-ms N       pause of the cart abandonment worker   [env NUDGE_ABANDON_POLL_MS, default 250]
    --catalog-refresh-minutes M  serve a built catalogue feed this long before counting product
                              popularity again; 0 = every request   [env NUDGE_CATALOG_REFRESH_MINUTES, default 10]

EMAIL (serve; without --smtp-url no emails are sent):
    --smtp-url URL            smtp://user:pass@host:port (plain; add ?tls=required for STARTTLS)
                              or smtps://user:pass@host:465 (TLS)    [env NUDGE_SMTP_URL]
    --mail-from ADDRESS       From address, e.g. \"Shop <shop@example.com>\" [env NUDGE_MAIL_FROM]
    --public-url URL          this server's public base URL, for unsubscribe links
                                                                     [env NUDGE_PUBLIC_URL, default http://LISTEN]
    --coupon-reminder-hours H reminder when no order follows a coupon [env NUDGE_COUPON_REMINDER_HOURS, default 24]
    --review-email-hours H    evaluation email after an order        [env NUDGE_REVIEW_EMAIL_HOURS, default 0]
    --consent-wait-ms N       wait for a consent choice before skipping [env NUDGE_CONSENT_WAIT_MS, default 600000]
    --mail-poll-ms N          pause of the email worker when idle    [env NUDGE_MAIL_POLL_MS, default 250]
    --mail-backoff-ms N       first retry's wait when SMTP fails, doubled up to an hour, for a week
                                                                     [env NUDGE_MAIL_BACKOFF_MS, default 30000]

SITE CREATE:
    --name NAME               the site's display name (required)
    --origin ORIGIN           a browser origin allowed to send, e.g. https://shop.example;
                              repeat for several; '*' allows any

SITE CONFIG:
    --site ID                 the site (its siteId from site create)
    --file PATH               set its stage thresholds from this JSON file, e.g.
                              {\"thresholds\": {\"decision_days\": 5, \"consideration_views\": 2}};
                              without it, print the config in force

WEBHOOK:
    --site ID                 the site
    --url URL                 (add) where to POST deliveries, http:// or https://
    --event NAME              (add) a track event to deliver, e.g. \"Stage Changed\"; repeat for
                              several; none (or '*') delivers every message
    --id WEBHOOK_ID           (remove) the webhook
    add prints the webhook with its signing secret, shown only then.

CAMPAIGNS:
    --site ID                 the site
    --file PATH               (load) the site's whole campaign list: a JSON array, or TOML
                              with [[campaigns]] tables (by extension: .json or .toml); it
                              replaces the list, and a file with any mistake changes nothing

CATALOG:
    --site ID                 the site
    --file PATH               (load) the site's whole catalogue: a JSON array of products, or
                              CSV with a header row id,name,category,brand,price,image,url,in_stock
                              (by extension: .json or .csv); it replaces the catalogue, and a
                              file with any mistake changes nothing

Migrations run at start. Flags also take the form --flag=value.
";

/// Reads the arguments (without the program name); `env` looks up environment variables.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Command, String> {
    let mut flags = Flags::default();
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            words.push(arg.as_str());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("--{name} needs a value"));
        match name {
            "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            "trust-forwarded-for" => flags.trust_forwarded_for = true,
            "no-webhook-worker" => flags.no_webhook_worker = true,
            "origin" => flags.origins.push(value()?),
            "event" => flags.events.push(value()?),
            "db"
            | "database-url"
            | "db-connections"
            | "listen"
            | "key-rate"
            | "key-burst"
            | "addr-rate"
            | "addr-burst"
            | "name"
            | "site"
            | "file"
            | "url"
            | "id"
            | "webhook-poll-ms"
            | "webhook-backoff-ms"
            | "webhook-timeout-ms"
            | "smtp-url"
            | "mail-from"
            | "public-url"
            | "coupon-reminder-hours"
            | "review-email-hours"
            | "consent-wait-ms"
            | "mail-poll-ms"
            | "mail-backoff-ms"
            | "abandon-poll-ms"
            | "catalog-refresh-minutes" => {
                let v = value()?;
                flags.values.push((name.to_string(), v));
            }
            _ => return Err(format!("unknown flag --{name}")),
        }
    }
    match words.as_slice() {
        [] => Ok(Command::Help),
        ["serve"] => Ok(Command::Serve(Box::new(flags.config(env)?))),
        ["site", "create"] => {
            let name = flags.get("name").ok_or("site create needs --name NAME")?.to_string();
            Ok(Command::CreateSite { database: flags.database(env)?, name, origins: flags.origins })
        }
        ["site", "config"] => {
            let site = flags.get("site").ok_or("site config needs --site ID")?.to_string();
            let file = flags.get("file").map(str::to_string);
            Ok(Command::SiteConfig { database: flags.database(env)?, site, file })
        }
        ["webhook", verb] => {
            let site = flags.get("site").ok_or_else(|| format!("webhook {verb} needs --site ID"))?.to_string();
            let action = match *verb {
                "add" => crate::webhooks::CliAction::Add {
                    url: flags.get("url").ok_or("webhook add needs --url URL")?.to_string(),
                    events: flags.events.clone(),
                },
                "list" => crate::webhooks::CliAction::List,
                "remove" => crate::webhooks::CliAction::Remove {
                    id: flags.get("id").ok_or("webhook remove needs --id WEBHOOK_ID")?.to_string(),
                },
                _ => return Err(format!("unknown command \"webhook {verb}\" (add, list or remove)")),
            };
            Ok(Command::Webhook { database: flags.database(env)?, site, action })
        }
        ["campaigns", verb] => {
            let site = flags.get("site").ok_or_else(|| format!("campaigns {verb} needs --site ID"))?.to_string();
            let action = match *verb {
                "load" => crate::campaigns::api::CliAction::Load {
                    file: flags.get("file").ok_or("campaigns load needs --file PATH")?.to_string(),
                },
                "list" => crate::campaigns::api::CliAction::List,
                _ => return Err(format!("unknown command \"campaigns {verb}\" (load or list)")),
            };
            Ok(Command::Campaigns { database: flags.database(env)?, site, action })
        }
        ["catalog", "load"] => {
            let site = flags.get("site").ok_or("catalog load needs --site ID")?.to_string();
            let file = flags.get("file").ok_or("catalog load needs --file PATH")?.to_string();
            Ok(Command::Catalog { database: flags.database(env)?, site, file })
        }
        ["catalog", verb] => Err(format!("unknown command \"catalog {verb}\" (load)")),
        _ => Err(format!("unknown command {:?}", words.join(" "))),
    }
}

#[derive(Default)]
struct Flags {
    values: Vec<(String, String)>,
    origins: Vec<String>,
    events: Vec<String>,
    trust_forwarded_for: bool,
    no_webhook_worker: bool,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A flag's value, else the environment variable's.
    fn lookup(&self, name: &str, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        self.get(name).map(str::to_string).or_else(|| env(var).filter(|v| !v.is_empty()))
    }

    fn database(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Database, String> {
        if let Some(url) = self.get("database-url") {
            return Database::from_url(url);
        }
        if let Some(path) = self.get("db") {
            return Ok(Database::Sqlite(path.into()));
        }
        if let Some(url) = env("DATABASE_URL").filter(|v| !v.is_empty()) {
            return Database::from_url(&url);
        }
        Ok(Database::Sqlite(env("NUDGE_DB").filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_DB_PATH.into())))
    }

    fn number(&self, name: &str, var: &str, default: f64, env: &dyn Fn(&str) -> Option<String>) -> Result<f64, String> {
        match self.lookup(name, var, env) {
            None => Ok(default),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
                _ => Err(format!("--{name} ({var}) must be a number >= 0, not {v:?}")),
            },
        }
    }

    fn config(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let defaults = Config::default();
        let listen = match self.lookup("listen", "NUDGE_LISTEN", env) {
            None => defaults.listen,
            Some(v) => {
                v.parse::<SocketAddr>().map_err(|_| format!("--listen (NUDGE_LISTEN) must be IP:PORT, not {v:?}"))?
            }
        };
        let connections =
            self.number("db-connections", "NUDGE_DB_CONNECTIONS", f64::from(defaults.db_connections), env)?;
        if !(1.0..=1000.0).contains(&connections) || connections.fract() != 0.0 {
            return Err("--db-connections must be a whole number from 1 to 1000".into());
        }
        let trust_env = env("NUDGE_TRUST_FORWARDED_FOR").is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        Ok(Config {
            listen,
            database: self.database(env)?,
            db_connections: connections as u32,
            key_rate: Rate {
                per_second: self.number("key-rate", "NUDGE_KEY_RATE", defaults.key_rate.per_second, env)?,
                burst: self.number("key-burst", "NUDGE_KEY_BURST", defaults.key_rate.burst, env)?,
            },
            addr_rate: Rate {
                per_second: self.number("addr-rate", "NUDGE_ADDR_RATE", defaults.addr_rate.per_second, env)?,
                burst: self.number("addr-burst", "NUDGE_ADDR_BURST", defaults.addr_rate.burst, env)?,
            },
            trust_forwarded_for: self.trust_forwarded_for || trust_env,
            webhooks: self.webhook_settings(env)?,
            abandon: crate::abandon::Settings {
                poll: Duration::from_millis(
                    self.number("abandon-poll-ms", "NUDGE_ABANDON_POLL_MS", 250.0, env)?.max(1.0) as u64,
                ),
                ..Default::default()
            },
            email: crate::email::settings_from(&|flag, var| self.lookup(flag, var, env))?,
            catalog_refresh: Duration::from_secs_f64(
                self.number(
                    "catalog-refresh-minutes",
                    "NUDGE_CATALOG_REFRESH_MINUTES",
                    defaults.catalog_refresh.as_secs_f64() / 60.0,
                    env,
                )?
                .min(525_600.0)
                    * 60.0,
            ),
        })
    }

    fn webhook_settings(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<WebhookSettings, String> {
        let defaults = WebhookSettings::default();
        let ms = |name: &str, var: &str, default: Duration| -> Result<Duration, String> {
            let n = self.number(name, var, default.as_millis() as f64, env)?;
            if !(1.0..=86_400_000.0).contains(&n) {
                return Err(format!("--{name} ({var}) must be from 1 to 86400000 ms"));
            }
            Ok(Duration::from_millis(n as u64))
        };
        let worker_env =
            env("NUDGE_WEBHOOK_WORKER").is_some_and(|v| matches!(v.as_str(), "0" | "false" | "no" | "off"));
        Ok(WebhookSettings {
            enabled: !(self.no_webhook_worker || worker_env),
            poll: ms("webhook-poll-ms", "NUDGE_WEBHOOK_POLL_MS", defaults.poll)?,
            backoff_base: ms("webhook-backoff-ms", "NUDGE_WEBHOOK_BACKOFF_MS", defaults.backoff_base)?,
            timeout: ms("webhook-timeout-ms", "NUDGE_WEBHOOK_TIMEOUT_MS", defaults.timeout)?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn serve_defaults() {
        let Command::Serve(c) = parse(&args("serve"), &no_env).unwrap() else { panic!("not serve") };
        assert_eq!(c.listen.to_string(), "127.0.0.1:8700");
        assert_eq!(c.database, Database::Sqlite("nudge.db".into()));
    }

    #[test]
    fn flags_win_over_env() {
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://u@h/db".to_string()),
            "NUDGE_LISTEN" => Some("127.0.0.1:1".to_string()),
            "NUDGE_KEY_RATE" => Some("5".to_string()),
            _ => None,
        };
        let Command::Serve(c) = parse(&args("serve --listen=127.0.0.1:2 --addr-rate 3"), &env).unwrap() else {
            panic!("not serve")
        };
        assert_eq!(c.listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.database, Database::Postgres("postgres://u@h/db".into()));
        assert_eq!((c.key_rate.per_second, c.addr_rate.per_second), (5.0, 3.0));
        let Command::Serve(c) = parse(&args("serve --db x.db"), &env).unwrap() else { panic!("not serve") };
        assert_eq!(c.database, Database::Sqlite("x.db".into()));
    }

    #[test]
    fn site_create_collects_origins() {
        let cmd =
            parse(&args("site create --name Shop --origin https://a.example --origin=https://b.example"), &no_env);
        let Command::CreateSite { name, origins, .. } = cmd.unwrap() else { panic!("not site create") };
        assert_eq!(name, "Shop");
        assert_eq!(origins, ["https://a.example", "https://b.example"]);
        assert!(parse(&args("site create"), &no_env).is_err());
    }

    #[test]
    fn webhook_commands_and_worker_settings() {
        let cmd = parse(&args("webhook add --site s1 --url https://h.example/x --event A --event=B"), &no_env);
        let Command::Webhook { site, action, .. } = cmd.unwrap() else { panic!("not webhook") };
        assert_eq!(site, "s1");
        let expected =
            crate::webhooks::CliAction::Add { url: "https://h.example/x".into(), events: vec!["A".into(), "B".into()] };
        assert_eq!(action, expected);
        assert!(parse(&args("webhook add --site s1"), &no_env).is_err());
        assert!(parse(&args("webhook add --url https://h.example/"), &no_env).is_err());
        assert!(parse(&args("webhook remove --site s1"), &no_env).is_err());
        assert!(parse(&args("webhook frob --site s1"), &no_env).is_err());
        let env = |k: &str| (k == "NUDGE_WEBHOOK_POLL_MS").then(|| "20".to_string());
        let Command::Serve(c) = parse(&args("serve --webhook-backoff-ms 50"), &env).unwrap() else { panic!() };
        assert_eq!((c.webhooks.poll, c.webhooks.backoff_base), (Duration::from_millis(20), Duration::from_millis(50)));
        assert!(c.webhooks.enabled);
        let Command::Serve(c) = parse(&args("serve --no-webhook-worker"), &no_env).unwrap() else { panic!() };
        assert!(!c.webhooks.enabled);
        assert!(parse(&args("serve --webhook-poll-ms 0"), &no_env).is_err());
    }

    #[test]
    fn campaign_commands() {
        let cmd = parse(&args("campaigns load --site s1 --file c.toml"), &no_env).unwrap();
        let Command::Campaigns { site, action, .. } = cmd else { panic!("not campaigns") };
        assert_eq!((site.as_str(), action), ("s1", crate::campaigns::api::CliAction::Load { file: "c.toml".into() }));
        assert!(matches!(parse(&args("campaigns list --site s1"), &no_env), Ok(Command::Campaigns { .. })));
        assert!(parse(&args("campaigns load --site s1"), &no_env).is_err());
        assert!(parse(&args("campaigns load --file c.json"), &no_env).is_err());
        assert!(parse(&args("campaigns drop --site s1"), &no_env).is_err());
        assert!(HELP.contains("campaigns load --site ID --file") && HELP.contains("campaigns list --site ID"));
    }

    #[test]
    fn catalog_commands() {
        let cmd = parse(&args("catalog load --site s1 --file p.csv"), &no_env).unwrap();
        let Command::Catalog { site, file, .. } = cmd else { panic!("not catalog") };
        assert_eq!((site.as_str(), file.as_str()), ("s1", "p.csv"));
        assert!(parse(&args("catalog load --site s1"), &no_env).is_err());
        assert!(parse(&args("catalog load --file p.json"), &no_env).is_err());
        assert!(parse(&args("catalog drop --site s1"), &no_env).is_err());
        let Command::Serve(c) = parse(&args("serve --catalog-refresh-minutes 0.5"), &no_env).unwrap() else { panic!() };
        assert_eq!(c.catalog_refresh, Duration::from_secs(30));
        let Command::Serve(c) = parse(&args("serve"), &no_env).unwrap() else { panic!() };
        assert_eq!(c.catalog_refresh, Duration::from_secs(600));
        assert!(HELP.contains("catalog load --site ID --file") && HELP.contains("NUDGE_CATALOG_REFRESH_MINUTES"));
    }

    #[test]
    fn mistakes_are_errors() {
        assert!(parse(&args("serve --bogus"), &no_env).is_err());
        assert!(parse(&args("serve --listen"), &no_env).is_err());
        assert!(parse(&args("serve --key-rate -1"), &no_env).is_err());
        assert!(parse(&args("launch"), &no_env).is_err());
        assert!(matches!(parse(&args("serve --help"), &no_env), Ok(Command::Help)));
    }

    #[test]
    fn help_names_every_flag_and_variable() {
        for word in [
            "--db",
            "--database-url",
            "--db-connections",
            "--listen",
            "--key-rate",
            "--key-burst",
            "--addr-rate",
            "--addr-burst",
            "--trust-forwarded-for",
            "--name",
            "--origin",
            "--site",
            "--file",
            "--url",
            "--event",
            "--id",
            "--webhook-poll-ms",
            "--webhook-backoff-ms",
            "--webhook-timeout-ms",
            "--no-webhook-worker",
            "NUDGE_WEBHOOK_POLL_MS",
            "NUDGE_WEBHOOK_BACKOFF_MS",
            "NUDGE_WEBHOOK_TIMEOUT_MS",
            "NUDGE_WEBHOOK_WORKER",
            "NUDGE_DB",
            "DATABASE_URL",
            "NUDGE_DB_CONNECTIONS",
            "NUDGE_LISTEN",
            "NUDGE_KEY_RATE",
            "NUDGE_KEY_BURST",
            "NUDGE_ADDR_RATE",
            "NUDGE_ADDR_BURST",
            "NUDGE_TRUST_FORWARDED_FOR",
        ] {
            assert!(HELP.contains(word), "--help lacks {word}");
        }
    }
}
