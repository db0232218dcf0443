//! Callback URL rules for Hookline (PRODUCT.md §4.5).
//!
//! Two pure decisions live here:
//! - on write, whether a customer's callback URL is acceptable
//!   ([`CallbackUrl::parse`]);
//! - at send time, whether an address the resolver returned may be connected
//!   to ([`may_connect`], [`is_forbidden_ip`]).
//!
//! This crate is not a resolver and not an HTTP client: it does no I/O, no DNS
//! and reads no clock. A host name that passes [`CallbackUrl::parse`] can
//! still resolve to a private address (DNS rebinding, `127.0.0.1.nip.io`), so
//! the write-time check only catches literals early with a clear message; the
//! real SSRF protection is the sender running [`may_connect`] on the very
//! address it is about to connect to.

mod ip;

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

pub use ip::is_forbidden_ip;

/// Longest accepted URL, in bytes of the input as written.
const MAX_LEN: usize = 2048;

/// What the caller allows beyond the production rules (`--dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// True in dev mode: http, localhost, loopback and private addresses allowed.
    pub allow_private: bool,
}

/// A callback URL that passed the rules. Private fields: only `parse` builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    /// The input exactly as written: signatures are computed over it.
    original: String,
    /// Host as the `url` crate normalised it (lower-case, punycode, IPv6 without brackets).
    host: String,
    port: u16,
    https: bool,
}

/// Why a callback URL was refused. The messages complete "callback URL …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 2048 bytes")]
    TooLong,
    #[error("is not an absolute URL: {0}")]
    Malformed(String),
    /// Scheme `http` without dev mode.
    #[error("must use https")]
    NotHttps,
    /// Any scheme other than `http`/`https`.
    #[error("scheme {0} is not allowed; use https")]
    Scheme(String),
    #[error("must not contain user info")]
    UserInfo,
    #[error("must have a host")]
    NoHost,
    #[error("must not point to localhost")]
    Localhost,
    #[error("must not point to a private or reserved address ({0})")]
    ForbiddenAddress(IpAddr),
}

impl CallbackUrl {
    /// Checks `input` against the rules of `policy` and keeps it verbatim.
    ///
    /// Beyond the product rules this is deliberately strict about spellings
    /// where the WHATWG parser and other URL parsers (or a human reading the
    /// configuration) could disagree on the host: whitespace, control
    /// characters and backslashes anywhere are `Malformed`, the scheme must be
    /// followed by exactly `//`, an `@` anywhere in the authority counts as
    /// user info even when empty, and port 0 is `Malformed`.
    pub fn parse(input: &str, policy: UrlPolicy) -> Result<CallbackUrl, UrlError> {
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        // Before parsing, so the parser never sees an unbounded input.
        if input.len() > MAX_LEN {
            return Err(UrlError::TooLong);
        }
        check_characters(input)?;

        let url = Url::parse(input).map_err(|e| match e {
            url::ParseError::EmptyHost => UrlError::NoHost,
            other => UrlError::Malformed(other.to_string()),
        })?;

        let https = match url.scheme() {
            "https" => true,
            "http" if policy.allow_private => false,
            "http" => return Err(UrlError::NotHttps),
            other => return Err(UrlError::Scheme(other.to_owned())),
        };

        let authority = raw_authority(input, url.scheme())?;
        // The parser drops an empty user info (`https://@host/`); the raw
        // authority still shows it.
        if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::UserInfo);
        }
        // `https:///example.com` parses with host `example.com`, but only
        // because the parser skips surplus slashes; as written it has no host.
        if authority.is_empty() {
            return Err(UrlError::NoHost);
        }

        let host = match url.host().ok_or(UrlError::NoHost)? {
            Host::Domain(name) => {
                check_domain(name, policy)?;
                name.to_owned()
            }
            Host::Ipv4(v4) => {
                check_ip(v4.into(), policy)?;
                v4.to_string()
            }
            Host::Ipv6(v6) => {
                check_ip(v6.into(), policy)?;
                v6.to_string()
            }
        };

        let port = url
            .port_or_known_default()
            .ok_or_else(|| UrlError::Malformed("no port".to_owned()))?;
        if port == 0 {
            return Err(UrlError::Malformed("port 0 cannot be connected to".to_owned()));
        }

        Ok(CallbackUrl {
            original: input.to_owned(),
            host,
            port,
            https,
        })
    }

    /// Exactly the input string as written (not re-serialised), since
    /// signatures are computed over the configured URL.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn into_string(self) -> String {
        self.original
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Host as the `url` crate normalised it: lower-case, IDNs in punycode,
    /// IPv4 in dotted decimal, IPv6 without brackets. A trailing dot is kept.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port_or_default(&self) -> u16 {
        self.port
    }

    /// `scheme://host:port`, the key of per-host limits and the circuit breaker.
    ///
    /// The port is always present and IPv6 hosts are bracketed, so the key is
    /// unambiguous. Trailing dots are dropped from the host: `example.com.`
    /// and `example.com` are the same receiver and must share one limit.
    pub fn origin_key(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = self.host.trim_end_matches('.');
        if host.contains(':') {
            format!("{scheme}://[{host}]:{}", self.port)
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// The send-time check: may the sender connect to this resolved address under `policy`?
/// In dev mode loopback and private are allowed (everything is), in production `!is_forbidden_ip`.
pub fn may_connect(ip: IpAddr, policy: UrlPolicy) -> bool {
    policy.allow_private || !is_forbidden_ip(ip)
}

/// Refuses characters the WHATWG parser would silently strip or rewrite, so
/// that what is stored (and signed) is what gets requested.
fn check_characters(input: &str) -> Result<(), UrlError> {
    let trimmed = input.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    if trimmed.len() != input.len() {
        return Err(UrlError::Malformed("leading or trailing whitespace".to_owned()));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Malformed(
            "contains whitespace or control characters".to_owned(),
        ));
    }
    // The WHATWG parser reads `\` as `/` in http(s) URLs; other parsers read
    // it as part of user info or host. Refusing it removes the disagreement.
    if input.contains('\\') {
        return Err(UrlError::Malformed("contains a backslash".to_owned()));
    }
    Ok(())
}

/// The authority exactly as written: what follows `scheme://` up to the path,
/// query or fragment.
fn raw_authority<'a>(input: &'a str, scheme: &str) -> Result<&'a str, UrlError> {
    let rest = input
        .get(scheme.len()..)
        .and_then(|rest| rest.strip_prefix("://"))
        .ok_or_else(|| UrlError::Malformed(format!("expected \"{scheme}://\"")))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Ok(&rest[..end])
}

fn check_domain(name: &str, policy: UrlPolicy) -> Result<(), UrlError> {
    let name = name.to_ascii_lowercase();
    // A single trailing dot only marks the name as fully qualified; a
    // resolver treats `localhost.` and `localhost` alike, and so must we.
    let name = name.strip_suffix('.').unwrap_or(&name);
    if name.is_empty() {
        return Err(UrlError::NoHost);
    }
    // The url crate lets `example.com..` or `127.0.0.1..` through as domains;
    // no resolver agrees on what they mean, so they are not worth storing.
    if name.split('.').any(str::is_empty) {
        return Err(UrlError::Malformed("host has an empty label".to_owned()));
    }
    // The url crate already turns numeric-looking hosts into addresses or
    // errors. Should one still arrive as a "domain", getaddrinfo would read it
    // as an address without asking DNS, so it is judged as one here.
    if ip::ends_in_number(name) {
        return match ip::parse_legacy_ipv4(name) {
            Some(v4) => check_ip(v4.into(), policy),
            None => Err(UrlError::Malformed(
                "host looks like an IPv4 address but is not a valid one".to_owned(),
            )),
        };
    }
    if !policy.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
        return Err(UrlError::Localhost);
    }
    Ok(())
}

fn check_ip(ip: IpAddr, policy: UrlPolicy) -> Result<(), UrlError> {
    if may_connect(ip, policy) {
        Ok(())
    } else {
        Err(UrlError::ForbiddenAddress(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const PROD: UrlPolicy = UrlPolicy { allow_private: false };
    const DEV: UrlPolicy = UrlPolicy { allow_private: true };
    const BOTH: [UrlPolicy; 2] = [PROD, DEV];

    #[derive(Debug)]
    enum Expect {
        Accepted,
        Refused(UrlError),
        /// `Malformed` with whatever message the parser gave.
        Malformed,
    }
    use Expect::{Accepted, Malformed, Refused};

    fn forbidden(ip: &str) -> Expect {
        Refused(UrlError::ForbiddenAddress(ip.parse().expect("test address")))
    }

    fn check(input: &str, policy: UrlPolicy, expected: Expect) {
        let got = CallbackUrl::parse(input, policy);
        let ok = match (&got, &expected) {
            (Ok(url), Accepted) => url.as_str() == input,
            (Err(UrlError::Malformed(_)), Malformed) => true,
            (Err(err), Refused(want)) => err == want,
            _ => false,
        };
        assert!(
            ok,
            "{input:?} under {policy:?}: expected {expected:?}, got {got:?}"
        );
    }

    fn parsed(input: &str, policy: UrlPolicy) -> CallbackUrl {
        match CallbackUrl::parse(input, policy) {
            Ok(url) => url,
            Err(err) => panic!("{input:?} should be accepted, got {err:?}"),
        }
    }

    #[test]
    fn accepted_examples_pass_under_both_policies() {
        for policy in BOTH {
            for input in [
                "https://example.com/cb",
                "https://api.example.com:8443/x?y=1#frag",
                "https://8.8.8.8/",
                "https://[2606:4700::1111]/",
                "https://example.com",
                "HTTPS://Example.COM/Path",
                "https://example.com./cb",
                "https://bücher.example/cb",
                "https://localhost.example.com/",
                "https://mylocalhost.com/",
                "https://example.com/a@b?c=d@e",
                "https://127.0.0.1.nip.io/",
                "https://[::ffff:8.8.8.8]/",
                "https://[64:ff9b::808:808]/",
            ] {
                check(input, policy, Accepted);
            }
        }
    }

    #[test]
    fn empty_input_is_refused() {
        for policy in BOTH {
            check("", policy, Refused(UrlError::Empty));
        }
    }

    #[test]
    fn input_over_2048_bytes_is_refused_and_exactly_2048_is_accepted() {
        let base = "https://example.com/";
        let at_limit = format!("{base}{}", "a".repeat(MAX_LEN - base.len()));
        let over = format!("{at_limit}a");
        // Length counts bytes, and the check runs before parsing.
        let garbage_over = "\u{e9}".repeat(1025);
        for policy in BOTH {
            check(&at_limit, policy, Accepted);
            check(&over, policy, Refused(UrlError::TooLong));
            check(&garbage_over, policy, Refused(UrlError::TooLong));
        }
    }

    #[test]
    fn leading_or_trailing_whitespace_is_malformed_not_trimmed() {
        for policy in BOTH {
            for input in [
                " https://example.com/",
                "https://example.com/ ",
                "\thttps://example.com/",
                "https://example.com/\n",
                "\u{a0}https://example.com/",
                "   ",
            ] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn interior_whitespace_control_characters_and_backslashes_are_malformed() {
        for policy in BOTH {
            for input in [
                "https://exa\tmple.com/",
                "https://exa\nmple.com/",
                "https://example.com/a b",
                "https://example.com/\u{0}",
                "https://evil.com\\@good.com/",
                "https:\\\\example.com/",
            ] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn relative_or_unparseable_input_is_malformed() {
        for policy in BOTH {
            for input in [
                "example.com/cb",
                "/cb",
                "//example.com/cb",
                "https://exa mple.com/",
                "https://example.com:99999/",
                "https://example.com:port/",
                "https://[::1/",
                "https://[fe80::1%25eth0]/",
                "https://ex%00ample.com/",
            ] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn scheme_not_followed_by_two_slashes_is_malformed() {
        for policy in BOTH {
            for input in ["https:example.com/", "https:/example.com/"] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn port_zero_is_malformed() {
        for policy in BOTH {
            check("https://example.com:0/", policy, Malformed);
        }
    }

    #[test]
    fn http_is_refused_in_production_and_allowed_in_dev() {
        check("http://example.com/cb", PROD, Refused(UrlError::NotHttps));
        check("HTTP://example.com/cb", PROD, Refused(UrlError::NotHttps));
        check("http://example.com/cb", DEV, Accepted);
    }

    #[test]
    fn other_schemes_are_refused_under_both_policies() {
        for policy in BOTH {
            for (input, scheme) in [
                ("ftp://example.com/", "ftp"),
                ("ws://example.com/", "ws"),
                ("wss://example.com/", "wss"),
                ("file:///etc/passwd", "file"),
                ("gopher://example.com/", "gopher"),
                ("javascript:alert(1)", "javascript"),
                ("mailto:ops@example.com", "mailto"),
                ("data:text/plain,hi", "data"),
                ("HTTPX://example.com/", "httpx"),
            ] {
                check(input, policy, Refused(UrlError::Scheme(scheme.to_owned())));
            }
        }
    }

    #[test]
    fn user_info_is_refused_under_both_policies() {
        for policy in BOTH {
            for input in [
                "https://user@example.com/",
                "https://user:pass@example.com/",
                "https://:pass@example.com/",
                "https://@example.com/",
                "https://:@example.com/",
                "https://example.com@evil.com/",
                "https://127.0.0.1@example.com/",
            ] {
                check(input, policy, Refused(UrlError::UserInfo));
            }
        }
    }

    #[test]
    fn missing_or_empty_host_is_refused_under_both_policies() {
        for policy in BOTH {
            for input in [
                "https://",
                "https:///",
                "https://:443/",
                "https:///example.com/",
                "https:////example.com/",
                "https://./",
                "https://?q",
            ] {
                check(input, policy, Refused(UrlError::NoHost));
            }
        }
    }

    #[test]
    fn localhost_in_any_spelling_is_refused_in_production() {
        for input in [
            "https://localhost/",
            "https://localhost:8443/",
            "https://LOCALHOST/",
            "https://LocalHost/",
            "https://localhost./",
            "https://foo.localhost/",
            "https://foo.localhost./",
            "https://a.b.FOO.LOCALHOST/",
            "https://local%68ost/",
            "https://\u{24db}ocalhost/",
            "https://ｌｏｃａｌｈｏｓｔ/",
        ] {
            check(input, PROD, Refused(UrlError::Localhost));
        }
    }

    #[test]
    fn localhost_is_allowed_in_dev() {
        for input in [
            "http://localhost/",
            "http://localhost:3000/cb",
            "https://LOCALHOST./",
            "http://api.localhost/",
        ] {
            check(input, DEV, Accepted);
        }
    }

    #[test]
    fn decimal_spelling_of_loopback_is_refused() {
        check("https://2130706433/", PROD, forbidden("127.0.0.1"));
    }

    #[test]
    fn octal_spelling_of_loopback_is_refused() {
        check("https://0177.0.0.1/", PROD, forbidden("127.0.0.1"));
        check("https://017700000001/", PROD, forbidden("127.0.0.1"));
    }

    #[test]
    fn hex_spellings_of_loopback_are_refused() {
        check("https://0x7f.0.0.1/", PROD, forbidden("127.0.0.1"));
        check("https://0x7f000001/", PROD, forbidden("127.0.0.1"));
        check("https://0X7F.0x0.0x0.0x1/", PROD, forbidden("127.0.0.1"));
    }

    #[test]
    fn short_forms_of_loopback_are_refused() {
        check("https://127.1/", PROD, forbidden("127.0.0.1"));
        check("https://127.0.1/", PROD, forbidden("127.0.0.1"));
        check("https://0/", PROD, forbidden("0.0.0.0"));
    }

    #[test]
    fn ipv6_loopback_and_ipv4_mapped_spellings_are_refused() {
        check("https://[::1]/", PROD, forbidden("::1"));
        check("https://[0:0:0:0:0:0:0:1]/", PROD, forbidden("::1"));
        check("https://[::]/", PROD, forbidden("::"));
        check("https://[::ffff:127.0.0.1]/", PROD, forbidden("::ffff:7f00:1"));
        check("https://[::ffff:7f00:1]/", PROD, forbidden("::ffff:7f00:1"));
        check(
            "https://[0:0:0:0:0:ffff:a00:1]/",
            PROD,
            forbidden("::ffff:10.0.0.1"),
        );
        check("https://[::127.0.0.1]/", PROD, forbidden("::7f00:1"));
        check(
            "https://[64:ff9b::127.0.0.1]/",
            PROD,
            forbidden("64:ff9b::7f00:1"),
        );
        check("https://[2002:7f00:1::]/", PROD, forbidden("2002:7f00:1::"));
    }

    #[test]
    fn trailing_dot_after_an_address_does_not_hide_it() {
        check("https://127.0.0.1./", PROD, forbidden("127.0.0.1"));
        check("https://2130706433./", PROD, forbidden("127.0.0.1"));
        check("https://0x7f.1./", PROD, forbidden("127.0.0.1"));
    }

    #[test]
    fn host_with_an_empty_label_is_malformed() {
        for policy in BOTH {
            for input in [
                "https://127.0.0.1../",
                "https://localhost../",
                "https://example.com../",
                "https://.example.com/",
                "https://a..example.com/",
            ] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn unicode_and_percent_encoded_digits_are_read_as_the_address_they_spell() {
        for input in [
            "https://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
            "https://127\u{3002}0\u{3002}0\u{3002}1/",
            "https://%31%32%37.0.0.1/",
            "https://127%2e0%2e0%2e1/",
        ] {
            check(input, PROD, forbidden("127.0.0.1"));
        }
    }

    #[test]
    fn numeric_looking_host_that_is_not_an_address_is_malformed() {
        for policy in BOTH {
            for input in [
                "https://1.2.3.4.5/",
                "https://256.0.0.1/",
                "https://0x100000000/",
                "https://4294967296/",
                "https://example.08/",
                "https://example.123/",
            ] {
                check(input, policy, Malformed);
            }
        }
    }

    #[test]
    fn private_and_reserved_literals_are_refused_in_production_and_allowed_in_dev() {
        for (input, ip) in [
            ("https://127.0.0.1/", "127.0.0.1"),
            ("https://10.1.2.3/", "10.1.2.3"),
            ("https://172.16.0.1/", "172.16.0.1"),
            ("https://192.168.1.1:8443/", "192.168.1.1"),
            ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("https://100.64.0.1/", "100.64.0.1"),
            ("https://0.0.0.0/", "0.0.0.0"),
            ("https://224.0.0.1/", "224.0.0.1"),
            ("https://255.255.255.255/", "255.255.255.255"),
            ("https://192.0.2.1/", "192.0.2.1"),
            ("https://198.51.100.1/", "198.51.100.1"),
            ("https://203.0.113.1/", "203.0.113.1"),
            ("https://192.0.0.1/", "192.0.0.1"),
            ("https://198.18.0.1/", "198.18.0.1"),
            ("https://240.0.0.1/", "240.0.0.1"),
            ("https://[fc00::1]/", "fc00::1"),
            ("https://[fd12:3456::1]/", "fd12:3456::1"),
            ("https://[fe80::1]/", "fe80::1"),
            ("https://[fec0::1]/", "fec0::1"),
            ("https://[ff02::1]/", "ff02::1"),
            ("https://[2001:db8::1]/", "2001:db8::1"),
            ("https://[100::1]/", "100::1"),
            ("https://[2001::1]/", "2001::1"),
        ] {
            check(input, PROD, forbidden(ip));
            check(input, DEV, Accepted);
        }
    }

    #[test]
    fn every_url_spelling_of_each_forbidden_ipv4_is_refused() {
        for sample in ip::FORBIDDEN_V4_SAMPLES {
            let v4: Ipv4Addr = sample.parse().expect("test address");
            let n = u32::from(v4);
            let [a, b, c, d] = v4.octets();
            for input in [
                format!("https://{v4}/"),
                format!("https://{n}/"),
                format!("https://0{n:o}/"),
                format!("https://0{a:o}.0{b:o}.0{c:o}.0{d:o}/"),
                format!("https://0x{n:x}/"),
                format!("https://0X{n:08X}/"),
                format!("https://0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}/"),
                format!("https://{a}.{}/", n & 0x00ff_ffff),
                format!("https://{a}.{b}.{}/", n & 0xffff),
                format!("https://{v4}./"),
            ] {
                check(&input, PROD, Refused(UrlError::ForbiddenAddress(v4.into())));
                check(&input, DEV, Accepted);
            }
            for (form, v6) in ip::ipv6_forms(v4) {
                let want = || Refused(UrlError::ForbiddenAddress(v6.into()));
                check(&format!("https://[{v6}]/"), PROD, want());
                // The same address with its low 32 bits written as a dotted quad.
                let [s0, s1, s2, s3, s4, s5, _, _] = v6.segments();
                let low = Ipv4Addr::from(u128::from(v6) as u32);
                let dotted = format!("https://[{s0:x}:{s1:x}:{s2:x}:{s3:x}:{s4:x}:{s5:x}:{low}]/");
                check(&dotted, PROD, want());
                let full = v6.segments().map(|s| format!("{s:x}")).join(":");
                check(&format!("https://[{full}]/"), PROD, want());
                check(&format!("https://[{full}]/"), DEV, Accepted);
                assert!(!may_connect(v6.into(), PROD), "{form} {v6}");
            }
        }
    }

    #[test]
    fn as_str_returns_the_input_exactly_as_written() {
        for input in [
            "HTTPS://Example.COM:443/Path/../x?q=%7e#Frag",
            "https://bücher.example/cb",
            "https://0x08.8.8.8/",
        ] {
            let url = parsed(input, PROD);
            assert_eq!(url.as_str(), input);
            assert_eq!(url.to_string(), input);
            assert_eq!(url.clone().into_string(), input);
        }
    }

    #[test]
    fn host_is_normalised_lower_case_punycode_and_ipv6_without_brackets() {
        for (input, host) in [
            ("HTTPS://Example.COM/", "example.com"),
            ("https://bücher.example/", "xn--bcher-kva.example"),
            ("https://example.com./", "example.com."),
            ("https://0x08.8.8.8/", "8.8.8.8"),
            ("https://[2606:4700:0:0:0:0:0:1111]/", "2606:4700::1111"),
        ] {
            assert_eq!(parsed(input, PROD).host(), host, "{input}");
        }
    }

    #[test]
    fn port_defaults_to_the_scheme_port_when_absent() {
        assert_eq!(parsed("https://example.com/", PROD).port_or_default(), 443);
        assert_eq!(parsed("https://example.com:443/", PROD).port_or_default(), 443);
        assert_eq!(parsed("https://example.com:8443/", PROD).port_or_default(), 8443);
        assert_eq!(parsed("http://example.com/", DEV).port_or_default(), 80);
        assert_eq!(parsed("http://localhost:3000/", DEV).port_or_default(), 3000);
    }

    #[test]
    fn is_https_reflects_the_scheme() {
        assert!(parsed("HTTPS://example.com/", PROD).is_https());
        assert!(!parsed("http://example.com/", DEV).is_https());
    }

    #[test]
    fn origin_key_has_scheme_host_and_explicit_port() {
        for (input, policy, key) in [
            ("https://Example.com/cb?x=1", PROD, "https://example.com:443"),
            ("https://example.com.:443/", PROD, "https://example.com:443"),
            (
                "https://api.example.com:8443/x",
                PROD,
                "https://api.example.com:8443",
            ),
            (
                "https://[2606:4700::1111]/",
                PROD,
                "https://[2606:4700::1111]:443",
            ),
            ("http://localhost:3000/", DEV, "http://localhost:3000"),
            ("http://[::1]:8080/", DEV, "http://[::1]:8080"),
        ] {
            assert_eq!(parsed(input, policy).origin_key(), key, "{input}");
        }
    }

    #[test]
    fn may_connect_refuses_forbidden_addresses_only_in_production() {
        let loopback = IpAddr::from(Ipv4Addr::LOCALHOST);
        let metadata = IpAddr::from(Ipv4Addr::new(169, 254, 169, 254));
        let ula = IpAddr::from(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let public = IpAddr::from(Ipv4Addr::new(8, 8, 8, 8));
        for ip in [loopback, metadata, ula] {
            assert!(!may_connect(ip, PROD), "{ip}");
            assert!(may_connect(ip, DEV), "{ip}");
        }
        assert!(may_connect(public, PROD));
        assert!(may_connect(public, DEV));
    }

    #[test]
    fn default_policy_is_production() {
        assert_eq!(UrlPolicy::default(), PROD);
    }

    #[test]
    fn error_messages_complete_a_sentence_about_the_url() {
        let cases = [
            (UrlError::NotHttps, "must use https"),
            (
                UrlError::Scheme("ftp".to_owned()),
                "scheme ftp is not allowed; use https",
            ),
            (
                UrlError::ForbiddenAddress(IpAddr::from(Ipv4Addr::LOCALHOST)),
                "must not point to a private or reserved address (127.0.0.1)",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }
}
