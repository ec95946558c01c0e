//! The `nudge-server` binary: parses the command line and runs the command.

use std::process::ExitCode;

use nudge_server::cli::{self, Command, HELP};
use nudge_server::store::Store;
use nudge_server::{app, campaigns, catalog, site_config, sites, webhooks};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args, &|name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("nudge-server: {e}\nRun `nudge-server --help` for usage.");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nudge-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::Version => {
            println!("nudge-server {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve(config) => runtime.block_on(app::run(*config)),
        Command::CreateSite { database, name, origins } => runtime.block_on(create_site(database, name, origins)),
        Command::SiteConfig { database, site, file } => {
            runtime.block_on(site_config::cli(&database, &site, file.as_deref())).map(|out| print_out(&out))
        }
        Command::Campaigns { database, site, action } => {
            runtime.block_on(campaigns::api::cli(&database, &site, &action)).map(|out| print_out(&out))
        }
        Command::Catalog { database, site, file } => {
            runtime.block_on(catalog::api::cli(&database, &site, &file)).map(|out| print_out(&out))
        }
        Command::Webhook { database, site, action } => {
            runtime.block_on(webhooks::cli(&database, &site, &action)).map(|out| print_out(&out))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nudge-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `site create`: stores a new site and prints `{siteId, writeKey, secretKey, name, origins}`.
async fn create_site(
    database: nudge_server::config::Database,
    name: String,
    origins: Vec<String>,
) -> Result<(), String> {
    let site = sites::new_site(&name, &origins, app::now_ms())?;
    let store = Store::open(&database, 1).await.map_err(|e| format!("cannot open {}: {e}", database.describe()))?;
    store.create_site(&site).await.map_err(|e| format!("cannot create the site: {e}"))?;
    store.close().await;
    let out = serde_json::json!({
        "siteId": site.id,
        "writeKey": site.write_key,
        "secretKey": site.secret_key,
        "name": site.name,
        "origins": site.origins,
    });
    println!("{out:#}");
    Ok(())
}

/// Prints a command's output; a closed stdout (`| head`) is not an error worth a panic.
fn print_out(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}
