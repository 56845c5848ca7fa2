//! User-agent classification: browser, OS and device from `woothee`, known bots from `isbot`,
//! and the automation tool family from a short list of tokens those tools put in their UA.
//! The detection engine treats the family as a signal; here we only label.

use std::sync::Arc;

use moka::sync::Cache;

/// Browser/OS/device of a user agent, and what kind of automated client it is, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAgentInfo {
    pub browser: String,
    pub browser_version: Option<String>,
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub device: &'static str,
    /// Automation library, HTTP client or crawler family, e.g. `headless-chrome`, `curl`, `Googlebot`.
    pub bot_family: Option<String>,
}

impl UserAgentInfo {
    pub fn is_automated(&self) -> bool {
        self.bot_family.is_some()
    }
}

/// Tokens of automation frameworks and HTTP libraries, matched case-insensitively, in order
/// (the first match wins, so specific tokens precede generic ones).
const AUTOMATION_TOKENS: &[(&str, &str)] = &[
    ("headlesschrome", "headless-chrome"),
    ("phantomjs", "phantomjs"),
    ("selenium", "selenium"),
    ("webdriver", "webdriver"),
    ("puppeteer", "puppeteer"),
    ("playwright", "playwright"),
    ("electron", "electron"),
    ("python-requests", "python-requests"),
    ("python-urllib", "python-urllib"),
    ("aiohttp", "aiohttp"),
    ("httpx", "httpx"),
    ("scrapy", "scrapy"),
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("go-http-client", "go-http-client"),
    ("node-fetch", "node-fetch"),
    ("undici", "undici"),
    ("axios", "axios"),
    ("okhttp", "okhttp"),
    ("java/", "java"),
    ("apache-httpclient", "apache-httpclient"),
    ("libwww-perl", "libwww-perl"),
    ("guzzlehttp", "guzzle"),
];

/// Parses user agents, remembering recent answers (a site's traffic repeats a few hundred UAs).
pub struct UaParser {
    woothee: woothee::parser::Parser,
    bots: isbot::Bots,
    cache: Cache<String, Arc<UserAgentInfo>>,
}

impl Default for UaParser {
    fn default() -> Self {
        Self::new()
    }
}

impl UaParser {
    pub fn new() -> Self {
        UaParser {
            woothee: woothee::parser::Parser::new(),
            bots: isbot::Bots::default(),
            cache: Cache::builder().max_capacity(20_000).build(),
        }
    }

    pub fn parse(&self, user_agent: &str) -> Arc<UserAgentInfo> {
        if let Some(hit) = self.cache.get(user_agent) {
            return hit;
        }
        let info = Arc::new(self.parse_uncached(user_agent));
        self.cache.insert(user_agent.to_owned(), info.clone());
        info
    }

    fn parse_uncached(&self, user_agent: &str) -> UserAgentInfo {
        let trimmed = user_agent.trim();
        if trimmed.is_empty() {
            // Real browsers always send a UA; its absence is itself a signal, not an error.
            return UserAgentInfo {
                browser: "unknown".into(),
                browser_version: None,
                os: "unknown".into(),
                device: "unknown",
                bot_family: Some("no-user-agent".into()),
            };
        }
        let lower = trimmed.to_ascii_lowercase();
        let automation =
            AUTOMATION_TOKENS.iter().find(|(token, _)| lower.contains(token)).map(|(_, family)| (*family).to_owned());
        let parsed = self.woothee.parse(trimmed);
        let (browser, version, os, category) = match &parsed {
            Some(r) => (r.name, r.version, r.os, r.category),
            None => ("unknown", "", "unknown", "unknown"),
        };
        let crawler = (category == "crawler").then(|| browser.to_owned());
        let bot_family = automation.or(crawler).or_else(|| self.bots.is_bot(trimmed).then(|| "bot".to_owned()));
        let device = if bot_family.is_some() && category == "crawler" { "bot" } else { device_of(category, &lower) };
        UserAgentInfo {
            browser: non_unknown(browser).unwrap_or("unknown").to_owned(),
            browser_version: non_unknown(version).map(|v| v.chars().take(32).collect()),
            os: non_unknown(os).unwrap_or("unknown").to_owned(),
            device,
            bot_family,
        }
    }
}

fn device_of(category: &str, lower_ua: &str) -> &'static str {
    match category {
        "pc" => "desktop",
        "smartphone" | "mobilephone" => {
            if lower_ua.contains("ipad") || (lower_ua.contains("android") && !lower_ua.contains("mobile")) {
                "tablet"
            } else {
                "mobile"
            }
        }
        "crawler" => "bot",
        _ => "unknown",
    }
}

fn non_unknown(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "UNKNOWN").then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const HEADLESS: &str =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    #[test]
    fn a_desktop_browser_is_not_a_bot() {
        let info = UaParser::new().parse(CHROME_WIN);
        assert_eq!(info.browser, "Chrome");
        assert_eq!(info.os, "Windows 10");
        assert_eq!(info.device, "desktop");
        assert_eq!(info.bot_family, None);
    }

    #[test]
    fn phones_and_tablets_are_told_apart() {
        let parser = UaParser::new();
        assert_eq!(parser.parse(IPHONE).device, "mobile");
        assert_eq!(parser.parse(IPAD).device, "tablet");
    }

    #[test]
    fn automation_libraries_are_labelled_by_family() {
        let parser = UaParser::new();
        assert_eq!(parser.parse(HEADLESS).bot_family.as_deref(), Some("headless-chrome"));
        assert_eq!(parser.parse("curl/8.5.0").bot_family.as_deref(), Some("curl"));
        assert_eq!(parser.parse("python-requests/2.32.3").bot_family.as_deref(), Some("python-requests"));
        assert_eq!(parser.parse("Scrapy/2.11 (+https://scrapy.org)").bot_family.as_deref(), Some("scrapy"));
    }

    #[test]
    fn crawlers_are_labelled_with_their_name() {
        let info = UaParser::new().parse(GOOGLEBOT);
        assert_eq!(info.bot_family.as_deref(), Some("Googlebot"));
        assert_eq!(info.device, "bot");
    }

    #[test]
    fn a_missing_user_agent_is_accepted_and_labelled() {
        let info = UaParser::new().parse("");
        assert_eq!(info.bot_family.as_deref(), Some("no-user-agent"));
        assert_eq!(info.browser, "unknown");
    }
}
