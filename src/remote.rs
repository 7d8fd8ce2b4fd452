//! `plughost components list|disable|enable|reload|restart` against a
//! running plughost: its admin API (`/v1.0-plughost/...`, see
//! `plughost::ops::admin`) on its HTTP port, with its API token if it has
//! one. Every command says which instance it talked to (address, PID, app
//! id), as `dapr list` does.

use std::time::Duration;

use clap::Args;
use serde_json::Value;

/// Where the running plughost is.
#[derive(Args, Clone)]
pub struct Remote {
    /// HTTP port of the running plughost.
    #[arg(long, value_name = "PORT", env = "DAPR_HTTP_PORT", default_value_t = plughost::api::DEFAULT_HTTP_PORT)]
    pub dapr_http_port: u16,
    /// Address of the running plughost.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub address: String,
    /// Its API token, if it has one.
    #[arg(long, value_name = "TOKEN", env = "DAPR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

impl Remote {
    fn base(&self) -> String {
        format!("http://{}:{}", self.address, self.dapr_http_port)
    }

    fn client() -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let request = match self.api_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => request.header(plughost::api::auth::TOKEN_HEADER, token),
            None => request,
        };
        request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "no plughost answers at {} ({e}); start one with `plughost run`, point at it with \
                 --address/--dapr-http-port, or load the configuration here with `components list --offline`",
                self.base()
            )
        })
    }

    /// The admin listing of the running instance.
    pub async fn list(&self) -> anyhow::Result<Value> {
        let url = format!("{}{}/components", self.base(), plughost::ops::admin::PREFIX);
        let response = self.send(Self::client()?.get(url)).await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "{} answered {status}: {body}", self.base());
        Ok(serde_json::from_str(&body)?)
    }

    /// Runs `action` on component `name` of the running instance.
    pub async fn act(&self, name: &str, action: &str) -> anyhow::Result<String> {
        let listing = self.list().await?;
        let url = format!("{}{}/components/{name}/{action}", self.base(), plughost::ops::admin::PREFIX);
        let response = self.send(Self::client()?.post(url)).await?;
        let status = response.status();
        let body = response.text().await?;
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        anyhow::ensure!(status.is_success(), "{}: {message}", self.describe(&listing));
        Ok(self.describe(&listing))
    }

    /// `plughost at http://127.0.0.1:3500 (pid 42, app id orders)`.
    pub fn describe(&self, listing: &Value) -> String {
        format!(
            "plughost at {} (pid {}, app id {})",
            self.base(),
            listing["pid"],
            listing["appId"].as_str().unwrap_or("?")
        )
    }
}

/// The admin listing as a table.
pub fn table(listing: &Value) -> Vec<[String; 8]> {
    let mut rows = vec![["NAME", "KIND", "TYPE", "MODE", "STATUS", "ENABLED", "RESTARTS", "CALLS"].map(String::from)];
    for c in listing["components"].as_array().into_iter().flatten() {
        let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
        let kinds: Vec<&str> = c["kinds"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        rows.push([
            text("name"),
            kinds.join(","),
            text("type"),
            text("mode"),
            text("status"),
            c["enabled"].as_bool().unwrap_or_default().to_string(),
            c["restarts"].as_u64().unwrap_or_default().to_string(),
            c["calls"].as_u64().unwrap_or_default().to_string(),
        ]);
    }
    rows
}
