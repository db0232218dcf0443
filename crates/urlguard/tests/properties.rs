//! Property tests of the callback URL rules (PRODUCT.md §4.5), through the public API only.
//!
//! The forbidden ranges are written out again here from the spec and the IANA special-purpose
//! registries (partly through the standard library's own classifiers), so the crate's tables
//! are checked against an independent statement of the same rules, not against themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::select;
use urlguard::{is_forbidden_ip, may_connect, CallbackUrl, UrlError, UrlPolicy};

const PROD: UrlPolicy = UrlPolicy { allow_private: false };
const DEV: UrlPolicy = UrlPolicy { allow_private: true };
const MAX_LEN: usize = 2048;

// ---------------------------------------------------------------------------------------------
// The rules, restated

/// IPv4 blocks that are not a public server: PRODUCT.md §4.5 plus the IANA registry.
const FORBIDDEN_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// Non-global IPv6 blocks named by the spec or the IANA registry.
const FORBIDDEN_V6: &[(u128, u8)] = &[
    (0, 128),                                         // unspecified
    (1, 128),                                         // loopback
    (0x0100_0000_0000_0000 << 64, 64),                // discard-only
    (0xfc00 << 112, 7),                               // unique local
    (0xfe80 << 112, 10),                              // link-local
    (0xfec0 << 112, 10),                              // site-local (deprecated)
    (0xff00 << 112, 8),                               // multicast
    (0x2001 << 112, 23),                              // IETF protocol assignments, Teredo
    ((0x2001 << 112) | (0x0db8 << 96), 32),           // documentation
    (0x3fff << 112, 20),                              // documentation (RFC 9637)
    ((0x64 << 112) | (0xff9b << 96) | (1 << 80), 48), // local-use NAT64
];

fn mask(len: u8, width: u32) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(len))) >> (128 - width)
    }
}

fn in_v4_block(ip: Ipv4Addr, (base, len): ([u8; 4], u8)) -> bool {
    let m = mask(len, 32) as u32;
    u32::from(ip) & m == u32::from(Ipv4Addr::from(base)) & m
}

fn in_v6_block(ip: Ipv6Addr, (base, len): (u128, u8)) -> bool {
    let m = mask(len, 128);
    u128::from(ip) & m == base & m
}

/// The IPv4 rule, partly through std's classifiers so a typo in one table is not in both.
fn oracle_v4(ip: Ipv4Addr) -> bool {
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || FORBIDDEN_V4.iter().any(|&block| in_v4_block(ip, block))
}

/// The IPv6 rule: the translated forms carry the IPv4 verdict; otherwise only global unicast
/// `2000::/3` outside the special blocks is allowed (so `::a.b.c.d` is always refused).
fn oracle_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let low = Ipv4Addr::from(u128::from(ip) as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return oracle_v4(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return oracle_v4(low);
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return oracle_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || s[0] & 0xe000 != 0x2000
        || FORBIDDEN_V6.iter().any(|&block| in_v6_block(ip, block))
}

fn oracle(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => oracle_v4(v4),
        IpAddr::V6(v6) => oracle_v6(v6),
    }
}

fn mapped(v4: Ipv4Addr) -> Ipv6Addr {
    v4.to_ipv6_mapped()
}

fn compatible(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(u32::from(v4)))
}

fn nat64(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(u32::from(v4)))
}

fn six_to_four(v4: Ipv4Addr, rest: u128) -> Ipv6Addr {
    let rest = rest & ((1u128 << 80) - 1);
    Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(u32::from(v4)) << 80) | rest)
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn any_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

/// An address anywhere inside one of the forbidden IPv4 blocks.
fn forbidden_v4() -> impl Strategy<Value = Ipv4Addr> {
    (select(FORBIDDEN_V4), any::<u32>()).prop_map(|((base, len), host)| {
        let m = mask(len, 32) as u32;
        Ipv4Addr::from((u32::from(Ipv4Addr::from(base)) & m) | (host & !m))
    })
}

fn allowed_v4() -> impl Strategy<Value = Ipv4Addr> {
    any_v4().prop_filter("a global address", |ip| !oracle_v4(*ip))
}

/// A mix: uniform, inside a forbidden block, or just outside one (the off-by-one region).
fn interesting_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any_v4(),
        forbidden_v4(),
        (select(FORBIDDEN_V4), -3i64..=3, any::<bool>()).prop_map(|((base, len), delta, end)| {
            let m = mask(len, 32) as u32;
            let start = u32::from(Ipv4Addr::from(base)) & m;
            let edge = if end { start | !m } else { start };
            Ipv4Addr::from((i64::from(edge) + delta).clamp(0, i64::from(u32::MAX)) as u32)
        }),
    ]
}

fn forbidden_v6() -> impl Strategy<Value = Ipv6Addr> {
    (select(FORBIDDEN_V6), any::<u128>()).prop_map(|((base, len), host)| {
        let m = mask(len, 128);
        Ipv6Addr::from((base & m) | (host & !m))
    })
}

/// IPv6 addresses of every interesting shape: uniform, in named blocks, at block edges, the
/// translated forms of interesting IPv4 addresses, global unicast.
fn interesting_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        forbidden_v6(),
        (select(FORBIDDEN_V6), -2i128..=2, any::<bool>()).prop_map(|((base, len), delta, end)| {
            let m = mask(len, 128);
            let edge = if end { (base & m) | !m } else { base & m };
            Ipv6Addr::from(edge.wrapping_add_signed(delta))
        }),
        interesting_v4().prop_map(mapped),
        interesting_v4().prop_map(compatible),
        interesting_v4().prop_map(nat64),
        (interesting_v4(), any::<u128>()).prop_map(|(v4, rest)| six_to_four(v4, rest)),
        any::<u128>().prop_map(|bits| Ipv6Addr::from((bits >> 3) | (1u128 << 125))),
    ]
}

/// One part of an IPv4 host in decimal, octal or hex, as `inet_aton` and WHATWG read them.
fn number_spelling(n: u32) -> impl Strategy<Value = String> {
    (0..3u8, 0..3usize, any::<bool>(), any::<bool>()).prop_map(move |(radix, zeros, upper_x, upper)| {
        let pad = "0".repeat(zeros);
        match radix {
            0 => n.to_string(),
            1 => format!("0{pad}{n:o}"),
            _ => {
                let x = if upper_x { "0X" } else { "0x" };
                if upper {
                    format!("{x}{pad}{n:X}")
                } else {
                    format!("{x}{pad}{n:x}")
                }
            }
        }
    })
}

/// A spelling of `ip` as an IPv4 host: 1 to 4 parts, the last filling the remaining bytes,
/// each part in its own radix, optionally with a trailing dot.
fn v4_host_spelling(ip: Ipv4Addr) -> impl Strategy<Value = String> {
    (1..=4usize, any::<bool>()).prop_flat_map(move |(parts, trailing_dot)| {
        let octets = ip.octets();
        let n = u32::from(ip);
        let mut numbers: Vec<u32> = octets[..parts - 1].iter().map(|&o| u32::from(o)).collect();
        let rest_bits = 8 * (5 - parts as u32);
        numbers.push(if rest_bits >= 32 {
            n
        } else {
            n & ((1 << rest_bits) - 1)
        });
        let spelled: Vec<_> = numbers.into_iter().map(number_spelling).collect();
        spelled.prop_map(move |parts| {
            let mut host = parts.join(".");
            if trailing_dot {
                host.push('.');
            }
            host
        })
    })
}

/// Rewrites a host the way an attacker might to get past a naive check but which the WHATWG
/// parser reads back to the same host: percent-encoding, full-width digits and letters,
/// ideographic full stops.
fn disguise(host: String) -> impl Strategy<Value = String> {
    let n = host.chars().count();
    proptest::collection::vec(0..5u8, n).prop_map(move |choices| {
        host.chars()
            .zip(choices)
            .map(|(c, choice)| match (choice, c) {
                (1, _) if c.is_ascii() => format!("%{:02X}", c as u32),
                (2, '0'..='9' | 'a'..='z' | 'A'..='Z') => char::from_u32(c as u32 - 0x21 + 0xff01)
                    .expect("full-width form")
                    .to_string(),
                (3, '.') => "\u{3002}".to_owned(),
                (4, '.') => "\u{ff0e}".to_owned(),
                _ => c.to_string(),
            })
            .collect()
    })
}

/// Spellings of an IPv6 address inside brackets: compressed or not, upper or lower case,
/// leading zeros, the low 32 bits as a dotted quad.
fn v6_host_spelling(ip: Ipv6Addr) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        proptest::collection::vec(0..3usize, 8),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(move |(upper, pads, dotted, zero_run_pick)| {
            let s = ip.segments();
            let group = |i: usize| {
                let natural = format!("{:x}", s[i]).len();
                let text = format!("{:0width$x}", s[i], width = (natural + pads[i]).min(4));
                if upper {
                    text.to_uppercase()
                } else {
                    text
                }
            };
            let groups = if dotted { 6 } else { 8 };
            let mut parts: Vec<String> = (0..groups).map(group).collect();
            // Compress one run of zero groups, picked at random among them, if there is any.
            let runs: Vec<(usize, usize)> = (0..groups)
                .filter(|&i| s[i] == 0)
                .flat_map(|i| (i..groups).take_while(|&j| s[j] == 0).map(move |j| (i, j + 1)))
                .collect();
            let mut text = if runs.is_empty() || zero_run_pick % 3 == 0 {
                parts.join(":")
            } else {
                let (from, to) = runs[usize::from(zero_run_pick) % runs.len()];
                let tail = parts.split_off(to);
                parts.truncate(from);
                format!("{}::{}", parts.join(":"), tail.join(":"))
            };
            if dotted {
                let low = Ipv4Addr::from(u128::from(ip) as u32);
                if !text.ends_with("::") {
                    text.push(':');
                }
                text.push_str(&low.to_string());
            }
            format!("[{text}]")
        })
}

/// A DNS label that is not an A-label (`xn--…` would have to be valid punycode).
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,10}[a-zA-Z0-9]|[a-z]".prop_filter("not an A-label", |l: &String| {
        !l.to_ascii_lowercase().starts_with("xn--")
    })
}

fn domain() -> impl Strategy<Value = String> {
    (proptest::collection::vec(label(), 1..4), label()).prop_map(|(mut labels, tld)| {
        labels.push(tld);
        labels.join(".")
    })
}

fn any_host() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => domain(),
        1 => interesting_v4().prop_flat_map(v4_host_spelling),
        1 => interesting_v4().prop_flat_map(v4_host_spelling).prop_flat_map(disguise),
        1 => interesting_v6().prop_flat_map(v6_host_spelling),
        1 => (select(&["localhost", "LocalHost", "localhost.", "a.localhost", "x.LOCALHOST."][..]))
            .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9.:%\\[\\]_~-]{0,20}",
        1 => "\\PC{0,12}",
    ]
}

/// Things that look like URLs, most of them valid, many of them tricky.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = select(&["https", "HTTPS", "http", "Https", "ftp", "https:", "https:/"][..]);
    let userinfo = prop_oneof![
        6 => Just(String::new()),
        1 => "[a-z:]{0,6}@",
    ];
    let port = prop_oneof![
        4 => Just(String::new()),
        1 => (0u32..70000).prop_map(|p| format!(":{p}")),
        1 => Just(":".to_owned()),
    ];
    let rest = prop_oneof![
        2 => Just(String::new()),
        2 => Just("/".to_owned()),
        3 => "(/[a-zA-Z0-9._~%@!$&'()*+,;=:-]{0,12}){1,3}(\\?[a-zA-Z0-9=&%@+/.:-]{0,12})?(#[a-zA-Z0-9?@/-]{0,8})?",
        1 => "[/?#]\\PC{0,16}",
    ];
    (scheme, userinfo, any_host(), port, rest)
        .prop_map(|(scheme, user, host, port, rest)| format!("{scheme}://{user}{host}{port}{rest}"))
}

/// Whether a host (as normalised) is one the url crate would have had to read as an IPv4
/// address: its last label is a number (WHATWG "ends in a number").
fn ends_in_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit('.').next().unwrap_or("");
    let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn host_ip(url: &CallbackUrl) -> Option<IpAddr> {
    url.host().parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary strings never panic the parser, under either policy.
    #[test]
    fn parse_never_panics_on_arbitrary_strings(input in "\\PC{0,64}|.{0,64}|[\\x00-\\x7f]{0,64}") {
        let _ = CallbackUrl::parse(&input, PROD);
        let _ = CallbackUrl::parse(&input, DEV);
    }

    /// Nor do URL-shaped strings, which reach far deeper into the parser.
    #[test]
    fn parse_never_panics_on_url_like_strings(input in url_like()) {
        let _ = CallbackUrl::parse(&input, PROD);
        let _ = CallbackUrl::parse(&input, DEV);
    }

    /// Whatever production accepts is https, kept verbatim, with a host that is neither
    /// localhost nor a forbidden literal address, nor a number some resolver would read as one.
    #[test]
    fn accepted_in_production_is_https_with_an_allowed_host(input in url_like()) {
        if let Ok(url) = CallbackUrl::parse(&input, PROD) {
            prop_assert!(url.is_https());
            prop_assert_eq!(url.as_str(), input.as_str());
            prop_assert_eq!(url.to_string(), input.clone());
            prop_assert!(!url.host().is_empty());
            prop_assert_ne!(url.port_or_default(), 0);
            let name = url.host().trim_end_matches('.');
            prop_assert!(name != "localhost" && !name.ends_with(".localhost"), "{}", url.host());
            match host_ip(&url) {
                Some(ip) => prop_assert!(!oracle(ip) && !is_forbidden_ip(ip), "{ip}"),
                None => prop_assert!(!ends_in_number(url.host()), "{}", url.host()),
            }
            let parsed = url::Url::parse(&input).expect("accepted means parseable");
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
            prop_assert!(url.origin_key().starts_with("https://"));
        }
    }

    /// Dev mode only widens the rules: what production accepts, dev accepts identically.
    #[test]
    fn dev_accepts_everything_production_does(input in url_like()) {
        if let Ok(prod) = CallbackUrl::parse(&input, PROD) {
            prop_assert_eq!(CallbackUrl::parse(&input, DEV), Ok(prod));
        }
    }

    /// Re-parsing the normalised form (what the HTTP client will request) gives the same
    /// decision and the same host, port and origin key; so does re-parsing the origin key.
    #[test]
    fn reparsing_the_normalised_form_is_idempotent(input in url_like(), dev in any::<bool>()) {
        let policy = if dev { DEV } else { PROD };
        if let Ok(url) = CallbackUrl::parse(&input, policy) {
            let normalised = url::Url::parse(&input).expect("accepted means parseable").to_string();
            // Percent-encoding can make the normalised form longer than the limit the input
            // was held to; the stored form is the input, so that case proves nothing.
            if normalised.len() <= MAX_LEN {
                let again = CallbackUrl::parse(&normalised, policy);
                prop_assert!(again.is_ok(), "{normalised:?}: {again:?}");
                let again = again.expect("checked");
                prop_assert_eq!(again.as_str(), normalised.as_str());
                prop_assert_eq!(again.host(), url.host());
                prop_assert_eq!(again.port_or_default(), url.port_or_default());
                prop_assert_eq!(again.is_https(), url.is_https());
                prop_assert_eq!(again.origin_key(), url.origin_key());
            }
            let key = url.origin_key();
            let from_key = CallbackUrl::parse(&format!("{key}/"), policy);
            prop_assert!(from_key.is_ok(), "{key:?}: {from_key:?}");
            prop_assert_eq!(from_key.expect("checked").origin_key(), key);
        }
    }

    /// Every address of the forbidden IPv4 blocks is refused at send time in production and
    /// allowed in dev.
    #[test]
    fn forbidden_ipv4_is_refused_in_production_and_allowed_in_dev(ip in forbidden_v4()) {
        prop_assert!(is_forbidden_ip(ip.into()));
        prop_assert!(!may_connect(ip.into(), PROD));
        prop_assert!(may_connect(ip.into(), DEV));
    }

    /// The same for IPv6: every named non-global block, and the translated forms (mapped,
    /// compatible, NAT64, 6to4) of every forbidden IPv4 address.
    #[test]
    fn forbidden_ipv6_is_refused_in_production_and_allowed_in_dev(
        ip in prop_oneof![
            forbidden_v6(),
            forbidden_v4().prop_map(mapped),
            forbidden_v4().prop_map(nat64),
            (forbidden_v4(), any::<u128>()).prop_map(|(v4, rest)| six_to_four(v4, rest)),
            any_v4().prop_map(compatible),
            // Anything outside 2000::/3 that is not a translated IPv4 form.
            (select(&[0u128, 2, 3, 4, 5, 6, 7][..]), any::<u128>())
                .prop_map(|(top, bits)| Ipv6Addr::from((top << 125) | (bits >> 3)))
                .prop_filter("not a translated form", |ip| {
                    ip.to_ipv4_mapped().is_none() && ip.segments()[..6] != [0x64, 0xff9b, 0, 0, 0, 0]
                }),
        ]
    ) {
        prop_assert!(is_forbidden_ip(ip.into()), "{ip}");
        prop_assert!(!may_connect(ip.into(), PROD), "{ip}");
        prop_assert!(may_connect(ip.into(), DEV), "{ip}");
    }

    /// Global IPv4, and its mapped, NAT64 and 6to4 forms, are allowed in production.
    #[test]
    fn global_ipv4_and_its_translated_forms_are_allowed(ip in allowed_v4(), rest in any::<u128>()) {
        for addr in [IpAddr::from(ip), mapped(ip).into(), nat64(ip).into(), six_to_four(ip, rest).into()] {
            prop_assert!(may_connect(addr, PROD), "{addr}");
        }
        prop_assert!(!may_connect(compatible(ip).into(), PROD), "compatible form is never routed");
    }

    /// The crate's classification agrees with the restated rules on every kind of address,
    /// both ways: nothing forbidden is let through and nothing global is refused.
    #[test]
    fn classification_matches_the_restated_rules(
        ip in prop_oneof![interesting_v4().prop_map(IpAddr::from), interesting_v6().prop_map(IpAddr::from)]
    ) {
        prop_assert_eq!(is_forbidden_ip(ip), oracle(ip), "{}", ip);
        prop_assert_eq!(may_connect(ip, PROD), !oracle(ip), "{}", ip);
        prop_assert!(may_connect(ip, DEV));
    }

    /// Every spelling of an IPv4 host (decimal, octal, hex, 1–4 parts, trailing dot,
    /// percent-encoded, full-width) gets the verdict of the address it spells: refused with that
    /// address if it is forbidden, accepted with the dotted form as host if not.
    #[test]
    fn every_spelling_of_an_ipv4_host_gets_the_same_verdict(
        (ip, host) in interesting_v4().prop_flat_map(|ip| {
            let spelled = v4_host_spelling(ip).prop_flat_map(disguise);
            (Just(ip), spelled)
        })
    ) {
        let input = format!("https://{host}/cb");
        let prod = CallbackUrl::parse(&input, PROD);
        if oracle_v4(ip) {
            prop_assert_eq!(prod, Err(UrlError::ForbiddenAddress(ip.into())), "{}", input);
        } else {
            prop_assert!(prod.is_ok(), "{input}: {prod:?}");
            prop_assert_eq!(prod.expect("checked").host().to_owned(), ip.to_string());
        }
        let dev = CallbackUrl::parse(&input, DEV);
        prop_assert!(dev.is_ok(), "{input}: {dev:?}");
        prop_assert_eq!(dev.expect("checked").host().to_owned(), ip.to_string());
    }

    /// Every spelling of an IPv6 host, and in particular of the IPv4-mapped, compatible,
    /// NAT64 and 6to4 forms of an IPv4 address, gets the verdict of the address it spells.
    #[test]
    fn every_spelling_of_an_ipv6_host_gets_the_same_verdict(
        (ip, host) in interesting_v6().prop_flat_map(|ip| (Just(ip), v6_host_spelling(ip)))
    ) {
        let input = format!("https://{host}/cb");
        let prod = CallbackUrl::parse(&input, PROD);
        if oracle_v6(ip) {
            prop_assert_eq!(prod, Err(UrlError::ForbiddenAddress(ip.into())), "{}", input);
        } else {
            prop_assert!(prod.is_ok(), "{input}: {prod:?}");
            prop_assert_eq!(prod.expect("checked").host().to_owned(), ip.to_string());
        }
        let dev = CallbackUrl::parse(&input, DEV);
        prop_assert!(dev.is_ok(), "{input}: {dev:?}");
        prop_assert_eq!(dev.expect("checked").host().to_owned(), ip.to_string());
    }

    /// If any spelling of an IPv4 address is refused as forbidden, every spelling of it is,
    /// including its IPv4-mapped IPv6 forms.
    #[test]
    fn no_spelling_of_a_forbidden_ipv4_gets_through(
        (ip, spellings, mapped_spelling) in forbidden_v4().prop_flat_map(|ip| {
            let spelled = proptest::collection::vec(v4_host_spelling(ip).prop_flat_map(disguise), 4);
            (Just(ip), spelled, v6_host_spelling(mapped(ip)))
        })
    ) {
        let plain = format!("https://{ip}/");
        prop_assert_eq!(CallbackUrl::parse(&plain, PROD), Err(UrlError::ForbiddenAddress(ip.into())));
        for host in &spellings {
            let input = format!("https://{host}/");
            prop_assert_eq!(CallbackUrl::parse(&input, PROD), Err(UrlError::ForbiddenAddress(ip.into())), "{}", input);
        }
        let input = format!("https://{mapped_spelling}/");
        prop_assert_eq!(
            CallbackUrl::parse(&input, PROD),
            Err(UrlError::ForbiddenAddress(mapped(ip).into())),
            "{}", input
        );
    }

    /// `localhost` and its subdomains, in any case and with a trailing dot, are refused in
    /// production and allowed in dev.
    #[test]
    fn localhost_in_any_case_is_refused_in_production(
        sub in proptest::collection::vec(label(), 0..3),
        case in proptest::collection::vec(any::<bool>(), 9),
        dot in any::<bool>(),
    ) {
        let name: String = "localhost"
            .chars()
            .zip(case)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let mut host = sub.iter().map(|s| format!("{s}.")).collect::<String>() + &name;
        if dot {
            host.push('.');
        }
        let input = format!("https://{host}/cb");
        prop_assert_eq!(CallbackUrl::parse(&input, PROD), Err(UrlError::Localhost), "{}", input);
        prop_assert!(CallbackUrl::parse(&input, DEV).is_ok(), "{}", input);
    }

    /// Any user info, even empty, is refused under both policies.
    #[test]
    fn user_info_is_always_refused(user in "[a-zA-Z0-9:._~-]{0,12}", host in domain(), dev in any::<bool>()) {
        let policy = if dev { DEV } else { PROD };
        let input = format!("https://{user}@{host}/cb");
        prop_assert_eq!(CallbackUrl::parse(&input, policy), Err(UrlError::UserInfo), "{}", input);
    }

    /// A public domain over https is accepted, with its lower-cased name as host.
    #[test]
    fn https_domains_are_accepted(host in domain(), port in proptest::option::of(1u16..), path in "(/[a-z0-9]{0,5}){0,3}") {
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        let input = format!("https://{host}{port_text}{path}");
        let url = CallbackUrl::parse(&input, PROD);
        prop_assert!(url.is_ok(), "{input}: {url:?}");
        let url = url.expect("checked");
        prop_assert_eq!(url.host(), host.to_ascii_lowercase());
        prop_assert_eq!(url.port_or_default(), port.unwrap_or(443));
        prop_assert_eq!(url.as_str(), input.as_str());
    }

    /// `http` is refused in production whatever the host.
    #[test]
    fn http_is_refused_in_production(host in domain()) {
        prop_assert_eq!(CallbackUrl::parse(&format!("http://{host}/"), PROD), Err(UrlError::NotHttps));
    }

    /// Whitespace or a control character anywhere in an otherwise good URL makes it malformed,
    /// under both policies (the parser would silently strip or rewrite it).
    #[test]
    fn whitespace_or_control_anywhere_is_malformed(
        host in domain(),
        at in any::<prop::sample::Index>(),
        bad in select(&[
            ' ', '\t', '\n', '\r', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}', '\u{1680}',
            '\u{2003}', '\u{2028}', '\u{2029}', '\u{3000}',
        ][..]),
        dev in any::<bool>(),
    ) {
        let good = format!("https://{host}/a?b=c#d");
        let chars: Vec<char> = good.chars().collect();
        let i = at.index(chars.len() + 1);
        let input: String = chars[..i].iter().chain([bad].iter()).chain(chars[i..].iter()).collect();
        let policy = if dev { DEV } else { PROD };
        let got = CallbackUrl::parse(&input, policy);
        prop_assert!(matches!(got, Err(UrlError::Malformed(_))), "{input:?}: {got:?}");
    }

    /// Anything over 2048 bytes is refused as too long before it is parsed.
    #[test]
    fn inputs_over_2048_bytes_are_too_long(
        prefix in select(&["https://example.com/", "", "https://127.0.0.1/", "\u{0}"][..]),
        filler in "\\PC{1,40}",
        dev in any::<bool>(),
    ) {
        let mut input = prefix.to_owned();
        while input.len() <= MAX_LEN {
            input.push_str(&filler);
        }
        let policy = if dev { DEV } else { PROD };
        prop_assert_eq!(CallbackUrl::parse(&input, policy), Err(UrlError::TooLong));
    }
}
