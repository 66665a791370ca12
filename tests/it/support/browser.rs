//! A real browser for the tests: headless Chromium driven over WebDriver (`chromedriver`), with
//! an API that reads like what a person does: open a page, fill a field, click a button, read
//! what the page says.
//!
//! `chromedriver` runs in a process group of its own and starts Chromium inside it, with a fresh
//! profile in a temp dir; dropping the [`Browser`] (also while a test panics) ends the session
//! and kills the whole group. Every wait is bounded. Chromium and `chromium-driver` are Debian
//! packages that `scripts/test.sh` installs; without them a test that opens a browser fails and
//! says so. Use it from plain (not async) tests: it runs its own small runtime.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

/// How long one browser step (a page load, a click, a lookup) may take: a page of ours loads in
/// well under a second, but a first, cold start while the whole suite runs on two cores can
/// take several.
const STEP: Duration = Duration::from_secs(10);
/// How long the driver and the browser may take to start.
const START: Duration = Duration::from_secs(15);

/// The flags that make Chromium work here: as root, with no display, no GPU and no network
/// beyond loopback, and quiet (no first-run pages, no background fetches).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    // A headless window counts as hidden: keep its page running at full speed.
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
];

const MISSING: &str = "the browser tests need headless Chromium and its WebDriver: run \
                       scripts/test.sh, which installs them, or `apt-get install chromium \
                       chromium-driver`";

/// One headless Chromium window.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    driver_log: Arc<Mutex<String>>,
    _profile: TempDir,
}

impl Browser {
    /// A desktop-sized window (1280 x 900).
    pub fn start() -> Browser {
        Browser::launch(json!({}), "--window-size=1280,900")
    }

    /// A desktop-sized window whose browser asks for `languages` (`Accept-Language`, e.g.
    /// `es-MX,es`), as a reader's browser set to them does.
    pub fn speaking(languages: &str) -> Browser {
        Browser::launch(
            json!({ "prefs": { "intl.accept_languages": languages } }),
            "--window-size=1280,900",
        )
    }

    /// A phone: a viewport `width` CSS pixels wide (844 high), touch, and the page's
    /// `<meta name="viewport">` honoured as a phone does; screenshots are `width` pixels wide.
    pub fn phone(width: u32) -> Browser {
        let emulation = json!({
            "deviceMetrics": { "width": width, "height": 844, "pixelRatio": 1.0, "mobile": true, "touch": true }
        });
        Browser::launch(
            json!({ "mobileEmulation": emulation }),
            &format!("--window-size={width},844"),
        )
    }

    fn launch(mut chrome_options: serde_json::Value, size: &str) -> Browser {
        let chromedriver = find("chromedriver", &["/usr/bin/chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver is missing: {MISSING}"));
        // The program itself, not Debian's launcher script (which adds flags of its own).
        let chromium = find(
            "chromium",
            &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        )
        .unwrap_or_else(|| panic!("chromium is missing: {MISSING}"));
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");

        // Port 0: the driver picks a free loopback port and prints it; it accepts only local
        // connections.
        let spawn = |log: &Arc<Mutex<String>>| {
            let mut driver = Command::new(&chromedriver)
                .args(["--port=0", "--log-level=WARNING"])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{} does not start ({e}): {MISSING}", chromedriver.display())
                });
            drain(driver.stdout.take().unwrap(), log.clone());
            drain(driver.stderr.take().unwrap(), log.clone());
            driver
        };
        let driver_log = Arc::new(Mutex::new(String::new()));
        let driver = spawn(&driver_log);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the browser");
        // From here on, `Drop` kills the driver (and the browser it starts) if anything fails.
        let mut b = Browser {
            rt,
            client: None,
            driver,
            driver_log,
            _profile: profile,
        };

        let started = Instant::now();
        let mut retries = 2;
        let port: u16 = loop {
            let log = b.driver_log();
            if let Some(rest) = log.split("started successfully on port ").nth(1) {
                break rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("chromedriver's port ({e}):\n{log}"));
            }
            if let Some(status) = b.driver.try_wait().unwrap() {
                // With port 0, two drivers starting at once on a busy machine can race for the
                // same port: the loser exits, and a new one picks another.
                if log.contains("Address already in use") && retries > 0 {
                    retries -= 1;
                    let fresh = Arc::new(Mutex::new(String::new()));
                    b.driver = spawn(&fresh);
                    b.driver_log = fresh;
                    continue;
                }
                panic!("chromedriver exited ({status}) before listening:\n{log}");
            }
            assert!(
                started.elapsed() < START,
                "chromedriver did not start within {START:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };

        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(size.to_string());
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let o = chrome_options.as_object_mut().unwrap();
        o.insert("binary".into(), json!(chromium));
        o.insert("args".into(), json!(args));
        let caps = json!({ "browserName": "chrome", "goog:chromeOptions": chrome_options });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(caps);
        let connect = builder.connect(&url);
        let client = match b.within(START, connect) {
            Some(Ok(c)) => c,
            Some(Err(e)) => panic!("Chromium does not start ({e}):\n{}", b.driver_log()),
            None => panic!(
                "Chromium did not start within {START:?}:\n{}",
                b.driver_log()
            ),
        };
        b.client = Some(client);
        let timeouts = TimeoutConfiguration::new(Some(STEP), Some(STEP), Some(Duration::ZERO));
        b.step("set timeouts", |c| async move {
            c.update_timeouts(timeouts).await
        });
        b
    }

    /// Opens `url` and waits for the page to load.
    pub fn open(&self, url: &str) {
        self.step(&format!("open {url}"), |c| async move { c.goto(url).await });
    }

    /// Types `value` into the field labelled `label` (its `<label>`'s text), or named `label`,
    /// replacing what was there.
    pub fn fill(&self, label: &str, value: &str) {
        let xpath = field_xpath(label);
        self.step(&format!("fill in {label:?}"), |c| async move {
            let field = c.find(Locator::XPath(&xpath)).await?;
            field.clear().await?;
            field.send_keys(value).await
        });
    }

    /// Chooses the file at `path` in the file field labelled (or named) `label`, as a person
    /// picking it in the file dialog (WebDriver types the path into the `<input type=file>`).
    pub fn attach(&self, label: &str, path: &Path) {
        let xpath = field_xpath(label);
        let path = path.to_str().expect("a UTF-8 path").to_string();
        self.step(&format!("attach a file to {label:?}"), |c| async move {
            c.find(Locator::XPath(&xpath)).await?.send_keys(&path).await
        });
    }

    /// What the field labelled (or named) `label` holds now.
    pub fn value(&self, label: &str) -> String {
        let xpath = field_xpath(label);
        self.step(&format!("read the field {label:?}"), |c| async move {
            let v = c.find(Locator::XPath(&xpath)).await?.prop("value").await?;
            Ok(v.unwrap_or_default())
        })
    }

    /// Clicks the button (or link) whose visible text is `text`. The page it leads to may still
    /// be loading when this returns: [`Browser::wait_for_text`] waits for it.
    pub fn click(&self, text: &str) {
        let t = xpath_literal(text);
        let xpath = format!(
            "//button[normalize-space(.) = {t}] \
             | //input[(@type = 'submit' or @type = 'button') and @value = {t}] \
             | //a[normalize-space(.) = {t}]"
        );
        self.step(&format!("click {text:?}"), |c| async move {
            c.find(Locator::XPath(&xpath)).await?.click().await
        });
    }

    /// The page's visible text, as a person reads it (hidden elements left out). A click may
    /// have started loading the next page: this reads the page once it is there.
    pub fn text(&self) -> String {
        self.step("read the page", |c| async move {
            let started = Instant::now();
            loop {
                let read = async { c.find(Locator::Css("body")).await?.text().await };
                match read.await {
                    // The page was replaced between finding the body and reading it (Chromium
                    // may say so as an inspector error rather than a stale element).
                    Err(e)
                        if (e.is_stale_element_reference()
                            || e.is_no_such_element()
                            || e.to_string().contains("does not belong to the document"))
                            && started.elapsed() < STEP =>
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    done => return done,
                }
            }
        })
    }

    /// Waits (at most a few seconds) until the page's visible text contains `needle`, and
    /// returns that text.
    pub fn wait_for_text(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                started.elapsed() < STEP,
                "the page at {} never said {needle:?}; it says:\n{text}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address in the location bar.
    pub fn url(&self) -> String {
        self.step("read the URL", |c| async move { c.current_url().await })
            .to_string()
    }

    /// The value of the JavaScript function body `script` (which `return`s it) on this page.
    pub fn execute(&self, script: &str) -> serde_json::Value {
        self.step(&format!("run {script:?}"), |c| async move {
            c.execute(script, Vec::new()).await
        })
    }

    /// Whether the page is wider than the window, so that a reader would scroll sideways.
    pub fn scrolls_sideways(&self) -> bool {
        let v = self.execute(
            "return document.documentElement.scrollWidth > window.innerWidth \
             || document.body.scrollWidth > window.innerWidth;",
        );
        v.as_bool().expect("a boolean")
    }

    /// The violations axe-core finds on this page of the rules tagged `wcag2a` and `wcag2aa`
    /// whose impact is serious or critical, one line each (the rule, its impact, the first
    /// nodes), after injecting axe-core (installed by `scripts/test.sh`).
    pub fn axe(&self) -> Vec<String> {
        let source = axe_source();
        self.step("inject axe-core", |c| async move {
            c.execute(&format!("{source}\nreturn true;"), Vec::new())
                .await
        });
        let found = self.step("run axe-core", |c| async move {
            c.execute_async(AXE_RUN, Vec::new()).await
        });
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Shows the page as a screen `width` CSS pixels wide (900 high; a phone below 600, whose
    /// `<meta name="viewport">` is honoured) in `scheme`, through the DevTools protocol, without
    /// reloading it; it stays so across navigations until the next call.
    pub fn view(&self, width: u32, scheme: Scheme) {
        let mobile = width < 600;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile }),
        );
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme.name() }] }),
        );
        let dark = self.execute("return matchMedia('(prefers-color-scheme: dark)').matches;");
        assert_eq!(
            dark,
            json!(scheme == Scheme::Dark),
            "the page does not see the {} scheme",
            scheme.name()
        );
    }

    /// Runs a DevTools protocol command in the page's target (chromedriver's `goog/cdp`).
    fn cdp(&self, cmd: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.step(&format!("run {cmd}"), |c| async move {
            c.issue_cmd(Cdp { cmd, params }).await
        })
    }

    /// What the window shows, as PNG bytes (for looking at while debugging; not compared).
    pub fn screenshot(&self) -> Vec<u8> {
        self.step("take a screenshot", |c| async move { c.screenshot().await })
    }

    /// Runs one WebDriver step, bounded; panics with what was being done and the driver's log.
    fn step<'a, T, F, Fut>(&'a self, what: &str, f: F) -> T
    where
        F: FnOnce(&'a Client) -> Fut,
        Fut: Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let client = self.client.as_ref().expect("a browser session");
        // The step's own timeouts are STEP; this one only keeps a stuck driver from hanging.
        match self.within(STEP * 2, f(client)) {
            Some(Ok(v)) => v,
            Some(Err(e)) => panic!("browser: cannot {what}: {e}\n{}", self.driver_log()),
            None => panic!("browser: could not {what} within {:?}", STEP * 2),
        }
    }

    /// Runs `fut` on the browser's runtime for at most `limit`; `None` when it took longer.
    fn within<T>(&self, limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
        self.rt
            .block_on(async { tokio::time::timeout(limit, fut).await.ok() })
    }

    fn driver_log(&self) -> String {
        self.driver_log.lock().unwrap().clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            // Closing the session quits Chromium; bounded, since a test may be panicking
            // because the browser hung.
            let _ = self.within(Duration::from_secs(3), c.close());
        }
        // The driver leads its own process group, and Chromium's processes are in it too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A colour scheme a page can be shown in (`prefers-color-scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Light,
    Dark,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Light => "light",
            Scheme::Dark => "dark",
        }
    }
}

/// chromedriver's extension command that runs a DevTools protocol command.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (hyper::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// The first of `also` that is an executable file, else `name` on the PATH.
fn find(name: &str, also: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    also.iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn drain(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

/// The input, text area or select that a `<label>` with this text names (by `for`, or by
/// holding it), or whose `name` is `label`.
fn field_xpath(label: &str) -> String {
    let l = xpath_literal(label);
    let fields = "self::input or self::textarea or self::select";
    format!(
        "//*[({fields}) and @id = //label[normalize-space(.) = {l}]/@for] \
         | //label[normalize-space(.) = {l}]//*[{fields}] \
         | //*[({fields}) and @name = {l}]"
    )
}

/// `s` as an XPath 1.0 string literal (which has no escapes: a string holding both kinds of
/// quote is built with `concat`).
fn xpath_literal(s: &str) -> String {
    if !s.contains('"') {
        format!("\"{s}\"")
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        let parts: Vec<String> = s.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}

/// Runs axe-core over the page and hands back its serious and critical violations.
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];\
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } })\
      .then(r => done(r.violations\
        .filter(v => v.impact === 'serious' || v.impact === 'critical')\
        .map(v => v.id + ' (' + v.impact + '): ' + v.help + ': ' +\
          v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '))))\
      .catch(e => done(['axe-core failed: ' + e]));";

/// axe-core's script, as `scripts/test.sh` installs it under `target/npm`.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/npm/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is missing at {} ({e}): ./scripts/test.sh installs it (npm install \
                 --prefix target/npm axe-core@4.14.1)",
                path.display()
            )
        })
    })
}
