//! A gateway signing people in through one or more real OpenID providers
//! (`OidcSetup::start`): one `oidc-provider` process per provider, each with the gateway as
//! its client "portcullis", and one `[[sign_in.providers]]` entry per provider.

use serde_json::{json, Value};

use super::{complete_provider_forms, AuthSetup, CurlBrowser, Gateway, OidcProvider, Upstream};

/// The client secret every provider shares with the gateway.
pub const OIDC_SECRET: &str = "a client secret long enough for the provider";

/// One provider of an [`OidcSetup`]: its id, button text, and what differs from the default.
pub struct ProviderSpec {
    pub id: String,
    pub title: String,
    /// Lines added to its `[[sign_in.providers]]` entry.
    pub toml: String,
    /// Fields merged into its client at the provider (e.g. `token_endpoint_auth_method`).
    pub client: Value,
    /// Whether its entry names the shared client secret.
    pub secret: bool,
}

impl ProviderSpec {
    pub fn new(id: &str, title: &str) -> ProviderSpec {
        ProviderSpec {
            id: id.to_string(),
            title: title.to_string(),
            toml: String::new(),
            client: json!({}),
            secret: true,
        }
    }
    /// No client secret in its entry (a `client_key_file` instead).
    pub fn without_secret(mut self) -> Self {
        self.secret = false;
        self
    }
    pub fn toml(mut self, lines: &str) -> Self {
        self.toml.push_str(lines);
        self.toml.push('\n');
        self
    }
    pub fn client(mut self, fields: Value) -> Self {
        self.client = fields;
        self
    }
}

/// Providers and a gateway with each of them as a sign-in provider.
pub struct OidcSetup {
    pub providers: Vec<OidcProvider>,
    pub ids: Vec<String>,
    pub gw: Gateway,
    /// The gateway's configuration beyond the standard one, for another instance.
    toml: String,
    echo: Upstream,
}

impl OidcSetup {
    /// The provider "corp" ("Corporate login") with the default client.
    pub async fn corp() -> OidcSetup {
        OidcSetup::start(vec![ProviderSpec::new("corp", "Corporate login")], "").await
    }

    /// One provider process per spec, then the gateway (`gateway_toml` appended to its
    /// configuration), then each provider told its client's callback URLs.
    pub async fn start(specs: Vec<ProviderSpec>, gateway_toml: &str) -> OidcSetup {
        OidcSetup::start_with_routes(specs, gateway_toml, "").await
    }

    /// [`OidcSetup::start`] with `routes` added to the gateway's routes.toml.
    pub async fn start_with_routes(
        specs: Vec<ProviderSpec>,
        gateway_toml: &str,
        routes: &str,
    ) -> OidcSetup {
        let echo = Upstream::echo().await;
        let mut providers = Vec::new();
        let mut toml =
            format!("[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n\n{gateway_toml}\n");
        for spec in &specs {
            let provider = OidcProvider::start().await;
            toml.push_str(&format!(
                "[[sign_in.providers]]\nid = \"{}\"\ntitle = \"{}\"\nissuer = \"{}\"\nclient_id = \"portcullis\"\n{}scopes = [\"openid\", \"email\", \"profile\", \"roles\"]\nroles_claim = \"roles\"\n{}\n",
                spec.id,
                spec.title,
                provider.issuer(),
                match spec.secret {
                    true => "client_secret_env = \"OIDC_CLIENT_SECRET\"\n",
                    false => "",
                },
                spec.toml
            ));
            providers.push(provider);
        }
        let gw = AuthSetup::new(&echo.url())
            .env("OIDC_CLIENT_SECRET", OIDC_SECRET)
            .extra(&toml)
            .routes(routes)
            .start()
            .await;
        let base = format!("https://127.0.0.1:{}/auth", gw.https.port());
        for (provider, spec) in providers.iter_mut().zip(&specs) {
            let mut client = json!({
                "client_id": "portcullis",
                "client_secret": OIDC_SECRET,
                "redirect_uris": [format!("{base}/callback/{}", spec.id)],
                "post_logout_redirect_uris": [format!("{base}/sign-out")],
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "backchannel_logout_uri": format!("{base}/backchannel-logout/{}", spec.id),
            });
            if let (Some(client), Some(extra)) = (client.as_object_mut(), spec.client.as_object()) {
                client.extend(extra.clone());
            }
            provider
                .configure(&json!({
                    "clients": [client],
                    "accounts": {
                        "alice": { "email": "alice@example.com", "email_verified": true, "roles": ["staff"] },
                        "bob": { "email": "bob@example.com", "email_verified": true, "roles": ["guest"] },
                    },
                }))
                .await;
        }
        OidcSetup {
            providers,
            ids: specs.into_iter().map(|s| s.id).collect(),
            gw,
            toml,
            echo,
        }
    }

    /// A second gateway with the same configuration (with a Redis `[store]`, the same
    /// revocations and session book); the providers know only the first one's URLs.
    pub async fn another_instance(&self) -> Gateway {
        AuthSetup::new(&self.echo.url())
            .env("OIDC_CLIENT_SECRET", OIDC_SECRET)
            .extra(&self.toml)
            .start()
            .await
    }

    /// The first provider.
    pub fn provider(&self) -> &OidcProvider {
        &self.providers[0]
    }

    /// The provider with gateway id `id`.
    pub fn provider_of(&self, id: &str) -> &OidcProvider {
        let at = self
            .ids
            .iter()
            .position(|i| i == id)
            .expect("a provider of the setup");
        &self.providers[at]
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.gw.https.port())
    }

    /// Clicks the first provider's button with `rd` and signs in there as `login`; the
    /// redirect back to the gateway, not yet followed.
    pub fn to_callback(&self, browser: &CurlBrowser, rd: &str, login: &str) -> String {
        self.to_callback_at(&self.ids[0].clone(), browser, rd, login)
    }

    /// [`OidcSetup::to_callback`] at provider `id`.
    pub fn to_callback_at(&self, id: &str, browser: &CurlBrowser, rd: &str, login: &str) -> String {
        let rd = form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>();
        let page = browser.get(&self.url(&format!("/auth/sign-in/{id}?rd={rd}")));
        let provider = self.provider_of(id);
        assert_eq!(
            page.status,
            200,
            "the provider's login page: {page:?}\n{}",
            provider.log()
        );
        let back = complete_provider_forms(browser, page, login);
        assert!(
            back.location
                .starts_with(&self.url(&format!("/auth/callback/{id}?"))),
            "the provider sends the browser back to the callback: {back:?}\n{}",
            provider.log()
        );
        back.location
    }

    /// Signs in at provider `id` through to the continue page; asserts it is reached.
    pub fn sign_in_at(&self, id: &str, browser: &CurlBrowser, login: &str) {
        let callback = self.to_callback_at(id, browser, "/", login);
        let landed = browser.get_once(&callback);
        assert_eq!(landed.status, 200, "{landed:?}\n{}", self.gw.log());
    }

    /// The identity the upstream sees for this browser at `path` (x-auth-user), or the status.
    pub fn who(&self, browser: &CurlBrowser, path: &str) -> Result<String, u16> {
        let page = browser.get_once(&self.url(path));
        if page.status != 200 {
            return Err(page.status);
        }
        let echoed: Value = serde_json::from_str(&page.body).expect("echo json");
        Ok(echoed["headers"]["x-auth-user"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}

/// A field of the pending sign-in cookie of provider `id` in `browser`'s jar (`s` the state,
/// `n` the nonce, `v` the PKCE verifier).
pub fn pending_field(browser: &CurlBrowser, id: &str, field: &str) -> Option<String> {
    use base64::Engine as _;
    let jar = browser.jar();
    let name = format!("__Host-portcullis-oidc-{id}");
    let line = jar.lines().find(|l| l.contains(&name))?;
    let value = line.rsplit('\t').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.into_owned())
}
