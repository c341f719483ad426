//! The server's web page in a real browser: Debian's chromium, headless, driven through
//! chromedriver (WebDriver). The test fills the form, submits it and reads the price from the
//! page. `.ci/run` installs chromium and chromium-driver and sets `APPRAISE_CHROMEDRIVER`;
//! where neither that variable nor /usr/bin/chromedriver exists the test says so and passes,
//! unless `APPRAISE_REQUIRE_BROWSER` is set.

mod common;
mod serve_common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serve_common::{Server, agent, json, models_folder, post};

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("APPRAISE_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    path.exists().then_some(path)
}

fn chromium() -> String {
    std::env::var("APPRAISE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver(path: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver(child, port)
}

/// A dollar amount as the page writes it ("$412,345") in whole dollars.
fn dollars_on_page(text: &str) -> f64 {
    text.trim()
        .trim_start_matches('$')
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a price: {text:?}"))
}

#[test]
fn the_page_prices_a_house_in_a_real_browser() {
    let Some(driver_path) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let models = models_folder(dir.path());
    let server = Server::start(
        &["--models", models.to_str().unwrap(), "--quiet"],
        dir.path(),
    );

    // What the API says, to compare with what the page shows.
    let agent = agent();
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/houses/predict"),
        r#"{"houses": [{"bedrooms": 3, "bathrooms": 2, "area": 1500, "zipcode": "92276"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let api_price = json(&body)["predictions"][0]["predicted_price"]
        .as_f64()
        .unwrap();
    let (status, body) = post(
        &agent,
        &server.url("/v1/models/listings/predict"),
        r#"{"houses": [{"beds": 2, "sqft": 900, "type": "condo", "city": "Gamma"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let api_listing = json(&body)["predictions"][0]["predicted_price"]
        .as_f64()
        .unwrap();

    let browser = Browser::start(&driver_path);
    browser.runtime.block_on(async {
        let client = browser.session().await;
        let wait = Duration::from_secs(20);

        client.goto(&server.url("/")).await.unwrap();
        // The form is built from the first model's fields (houses).
        let bedrooms = client
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("#field-bedrooms"))
            .await
            .expect("the form is built");
        bedrooms.send_keys("3").await.unwrap();
        let hint = text_of(&client, "label[for=field-area]").await;
        assert!(hint.contains("training range"), "{hint}");
        type_into(&client, "#field-bathrooms", "2").await;
        type_into(&client, "#field-area", "1500").await;
        choose(&client, "#field-zipcode", "92276").await;
        submit(&client).await;
        let shown = wait_for_text(&client, "#price").await;
        assert_eq!(dollars_on_page(&shown), api_price.round(), "{shown}");
        let range = text_of(&client, "#range").await;
        assert!(range.starts_with("80% range: $"), "{range}");
        // Why: a waterfall from the reference price and the comparable sales.
        let why = text_of(&client, "#why").await;
        assert!(
            why.contains("Why this price")
                && why.contains("reference $")
                && why.contains("Comparable sales (median adjusted $"),
            "{why}"
        );
        assert!(range.contains("confidence "), "{range}");
        let card = text_of(&client, "#card").await;
        assert!(card.contains("tutorial mlp network"), "{card}");
        assert!(card.contains("Test error (MAPE)"), "{card}");

        // A bad value: the page shows the server's error naming the field.
        let area = client.find(Locator::Css("#field-area")).await.unwrap();
        area.clear().await.unwrap();
        area.send_keys("-10").await.unwrap();
        submit(&client).await;
        let error = wait_for_text(&client, "#error").await;
        assert!(error.contains("houses[0].area"), "{error}");

        // The other model: a drop-down of its categories, an optional number left empty.
        choose(&client, "#model", "listings").await;
        let beds = client
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("#field-beds"))
            .await
            .unwrap();
        beds.send_keys("2").await.unwrap();
        type_into(&client, "#field-sqft", "900").await;
        choose(&client, "#field-type", "condo").await;
        choose(&client, "#field-city", "Gamma").await;
        submit(&client).await;
        let shown = wait_for_text(&client, "#price").await;
        assert_eq!(dollars_on_page(&shown), api_listing.round(), "{shown}");
        client.close().await.unwrap();
    });
}

/// chromedriver, a fresh chromium profile and a runtime to drive them from.
struct Browser {
    driver: Driver,
    profile: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Browser {
    fn start(driver_path: &PathBuf) -> Self {
        Self {
            driver: start_driver(driver_path),
            profile: tempfile::tempdir().unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    async fn session(&self) -> fantoccini::Client {
        session(&self.driver, self.profile.path()).await
    }
}

/// A headless chromium session through `driver`, with its profile in `profile`.
async fn session(driver: &Driver, profile: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a chromium session")
}

/// chromedriver's path, or `None` (after saying why) when this machine has none.
fn driver_or_skip() -> Option<PathBuf> {
    let found = chromedriver();
    if found.is_none() {
        assert!(
            std::env::var_os("APPRAISE_REQUIRE_BROWSER").is_none(),
            "APPRAISE_REQUIRE_BROWSER is set but chromedriver is missing"
        );
        eprintln!(
            "skipped: no chromedriver (apt-get install chromium chromium-driver, or set APPRAISE_CHROMEDRIVER)"
        );
    }
    found
}

/// A photo model's page has a picker per room; the photos chosen there price the house as
/// `appraise predict --photos` does.
#[test]
fn the_page_prices_a_house_from_photos_picked_in_a_real_browser() {
    let Some(driver_path) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let expected = serve_common::photo_model(dir.path());
    let server = Server::start(
        &["--model", "photos-only/model.appraise", "--quiet"],
        dir.path(),
    );
    let browser = Browser::start(&driver_path);
    browser.runtime.block_on(async {
        let client = browser.session().await;
        client.goto(&server.url("/")).await.unwrap();
        for room in ["bathroom", "bedroom", "frontal", "kitchen"] {
            let picker = client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(&format!("#field-{room}_photo")))
                .await
                .expect("a photo picker per room");
            assert_eq!(picker.attr("type").await.unwrap().as_deref(), Some("file"));
            let photo = dir.path().join(format!("data/1_{room}.jpg"));
            picker.send_keys(photo.to_str().unwrap()).await.unwrap();
        }
        submit(&client).await;
        let shown = wait_for_text(&client, "#price").await;
        assert_eq!(dollars_on_page(&shown), expected.round(), "{shown}");
        // The comparables' cards show their photos, fetched from the server.
        let started = Instant::now();
        loop {
            let loaded = client
                .execute(
                    "return Array.from(document.querySelectorAll('.comp img')).filter((i) => i.complete && i.naturalWidth > 0).length;",
                    vec![],
                )
                .await
                .unwrap();
            if loaded.as_u64().unwrap_or(0) >= 4 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the comparables' photos did not load"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.close().await.unwrap();
    });
}

/// Types `text` into the field `selector`.
async fn type_into(client: &fantoccini::Client, selector: &str, text: &str) {
    let field = client.find(Locator::Css(selector)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Chooses the option `value` of the drop-down `selector`.
async fn choose(client: &fantoccini::Client, selector: &str, value: &str) {
    let list = client.find(Locator::Css(selector)).await.unwrap();
    list.select_by_value(value).await.unwrap();
}

/// Presses the form's submit button.
async fn submit(client: &fantoccini::Client) {
    let button = client.find(Locator::Css("#submit")).await.unwrap();
    button.click().await.unwrap();
}

/// The text `selector` shows now.
async fn text_of(client: &fantoccini::Client, selector: &str) -> String {
    let element = client.find(Locator::Css(selector)).await.unwrap();
    element.text().await.unwrap()
}

/// The text of `selector` once it is shown and not empty.
async fn wait_for_text(client: &fantoccini::Client, selector: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(e) = client.find(Locator::Css(selector)).await
            && let Ok(t) = e.text().await
            && !t.trim().is_empty()
        {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{selector} stayed empty"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
