//! The session cookie: its name, the `Set-Cookie` values that issue and clear it, and reading
//! it back from a `Cookie` header.

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "gt_session";

/// `Set-Cookie` for a new session: not readable by scripts (`HttpOnly`), never sent by a
/// cross-site request (`SameSite=Strict`), only over HTTPS (`Secure`; browsers treat
/// `localhost` as secure), for the whole app, until the session's absolute expiry.
pub fn issue(value: &str, max_age_secs: i64) -> String {
    format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age={max_age_secs}")
}

/// `Set-Cookie` that deletes the session cookie (logout).
pub fn clear() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=0")
}

/// The session cookie's value from the request's `Cookie` header values, if any.
pub fn from_headers<'a>(cookie_headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(&["gt_session=abc"], Some("abc"))]
    #[case(&["theme=dark; gt_session=abc; lang=en"], Some("abc"))]
    #[case(&["theme=dark", "gt_session=abc"], Some("abc"))]
    #[case(&["gt_session_old=x; xgt_session=y"], None)]
    #[case(&["gt_session="], None)]
    #[case(&[], None)]
    fn the_session_cookie_is_found_among_others(#[case] headers: &[&str], #[case] expected: Option<&str>) {
        assert_eq!(from_headers(headers.iter().copied()), expected);
    }

    #[test]
    fn issued_cookies_carry_every_protective_attribute() {
        let c = issue("v", 60);
        for attr in ["gt_session=v;", "HttpOnly", "SameSite=Strict", "Secure", "Path=/", "Max-Age=60"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(clear().contains("Max-Age=0"));
    }
}
