//! Which IP addresses a production sender must never connect to (SSRF protection).
//!
//! IPv4 is a deny-list taken from the IANA special-purpose registry: the IPv4
//! space is full, so everything not listed is someone's public server.
//! IPv6 is an allow-list: only global unicast `2000::/3` is reachable, minus a
//! few special blocks inside it. Everything outside that prefix (loopback,
//! unspecified, ULA, link-local, site-local, multicast, discard, local-use
//! NAT64, SIIT, the deprecated IPv4-compatible `::a.b.c.d`, and any block IANA
//! assigns in the future) is refused without having to be named, so a range
//! we forgot cannot become a hole.
//!
//! IPv6 forms that carry an IPv4 address the network will actually deliver to
//! (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the
//! embedded IPv4 address: a DNS64 resolver legitimately hands out
//! `64:ff9b::8.8.8.8`, and `64:ff9b::127.0.0.1` must not be a way round the
//! IPv4 rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks that are not globally reachable, as `(base, prefix length)`.
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    // "This network"; connecting to 0.0.0.0 reaches the local host on Linux.
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8), // RFC 1918
    // Shared address space (CGNAT, RFC 6598): the provider's internal network.
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    // Link-local, which includes the cloud metadata service 169.254.169.254.
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12), // RFC 1918
    // IETF protocol assignments; .9 and .10 are nominally global anycast but
    // are never a webhook receiver, so the whole block goes.
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24), // TEST-NET-1 documentation
    // Deprecated 6to4 relay anycast (RFC 7526): whoever answers is arbitrary.
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // RFC 1918
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2 documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // TEST-NET-3 documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    // Reserved "future use", which also covers the 255.255.255.255 broadcast.
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// The only IPv6 space that routes to the public internet.
const GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Blocks inside `2000::/3` that are still not a public server.
const FORBIDDEN_GLOBAL_V6: &[(Ipv6Addr, u8)] = &[
    // IETF protocol assignments: Teredo (which hides an IPv4 address behind
    // XOR), benchmarking, ORCHID, AMT. The few globally reachable anycast
    // entries are never webhook receivers, so the whole /23 goes.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),      // documentation (RFC 9637)
];

const IPV4_MAPPED: (Ipv6Addr, u8) = (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);
const NAT64_WELL_KNOWN: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const SIX_TO_FOUR: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

/// True when connecting to `ip` is never allowed in production: every non-global address,
/// including IPv4-mapped/compatible/NAT64/6to4 IPv6 forms of a forbidden IPv4.
///
/// IPv4-compatible addresses (`::a.b.c.d`, deprecated since RFC 4291) are
/// refused whatever they embed: nothing routes them, so there is no global
/// one to allow.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4
        .iter()
        .any(|&(base, len)| in_prefix_v4(bits, u32::from(base), len))
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = delivered_ipv4(ip) {
        return is_forbidden_v4(v4);
    }
    !in_prefix_v6(ip, GLOBAL_UNICAST) || FORBIDDEN_GLOBAL_V6.iter().any(|&block| in_prefix_v6(ip, block))
}

/// The IPv4 address that traffic to `ip` ends up at, for the IPv6 forms that
/// the OS or the network translate to IPv4.
fn delivered_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if in_prefix_v6(ip, IPV4_MAPPED) || in_prefix_v6(ip, NAT64_WELL_KNOWN) {
        // Truncation is the point: the IPv4 address is the low 32 bits.
        return Some(Ipv4Addr::from(bits as u32));
    }
    if in_prefix_v6(ip, SIX_TO_FOUR) {
        // 2002:AABB:CCDD::/48 — the IPv4 address follows the 16-bit prefix.
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

fn in_prefix_v4(addr: u32, base: u32, len: u8) -> bool {
    // checked_shl because a /0 would shift by the full width.
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    addr & mask == base & mask
}

fn in_prefix_v6(addr: Ipv6Addr, (base, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(addr) & mask == u128::from(base) & mask
}

/// Whether a host name's last label is a number, which per the WHATWG URL
/// standard makes the whole name an IPv4 address (or an invalid one) rather
/// than a DNS name. A trailing empty label (`1.2.3.4.`) is skipped.
pub(crate) fn ends_in_number(host: &str) -> bool {
    let mut labels = host.rsplit('.');
    let last = match labels.next() {
        Some("") => labels.next().unwrap_or(""),
        Some(label) => label,
        None => "",
    };
    !last.is_empty() && (last.bytes().all(|b| b.is_ascii_digit()) || parse_number(last).is_some())
}

/// Reads a host the way `inet_aton` and the WHATWG IPv4 parser do: one to
/// four dot-separated parts, each decimal, octal (leading `0`) or hex (`0x`),
/// the last part filling the remaining bytes (`127.1`, `2130706433`).
///
/// The `url` crate already does this for hosts of http(s) URLs; this copy
/// exists so that a name which reaches us as a domain but that a resolver
/// would still read as an address cannot slip through.
pub(crate) fn parse_legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_number(part)?);
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 255) {
        return None;
    }
    // The last part must fit in the bytes the leading parts did not take.
    let last_bits = 8 * (4 - leading.len() as u32);
    if last_bits < 32 && *last >> last_bits != 0 {
        return None;
    }
    let mut value = *last;
    for (i, &n) in leading.iter().enumerate() {
        value |= n << (8 * (3 - i as u32));
    }
    Some(Ipv4Addr::from(value))
}

/// One IPv4 part: `0x`-prefixed hex, `0`-prefixed octal, or decimal.
fn parse_number(part: &str) -> Option<u32> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if part.is_empty() {
        return None;
    }
    // "0x" on its own is zero in both inet_aton and WHATWG.
    if digits.is_empty() {
        return Some(0);
    }
    // from_str_radix would accept a leading '+', which no resolver does.
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// First and last address of every blocked IPv4 range, plus the metadata
/// address. Shared with the URL-level property test in `lib.rs`.
#[cfg(test)]
pub(crate) const FORBIDDEN_V4_SAMPLES: &[&str] = &[
    "0.0.0.0",
    "0.255.255.255",
    "10.0.0.0",
    "10.255.255.255",
    "100.64.0.0",
    "100.127.255.255",
    "127.0.0.0",
    "127.0.0.1",
    "127.255.255.255",
    "169.254.0.0",
    "169.254.169.254",
    "169.254.255.255",
    "172.16.0.0",
    "172.31.255.255",
    "192.0.0.0",
    "192.0.0.255",
    "192.0.2.0",
    "192.0.2.255",
    "192.88.99.0",
    "192.88.99.255",
    "192.168.0.0",
    "192.168.255.255",
    "198.18.0.0",
    "198.19.255.255",
    "198.51.100.0",
    "198.51.100.255",
    "203.0.113.0",
    "203.0.113.255",
    "224.0.0.0",
    "239.255.255.255",
    "240.0.0.0",
    "255.255.255.255",
];

/// Every IPv6 spelling that the network delivers to, or that embeds, `ip`.
#[cfg(test)]
pub(crate) fn ipv6_forms(ip: Ipv4Addr) -> [(&'static str, Ipv6Addr); 4] {
    let [a, b, c, d] = ip.octets();
    let hi = u16::from_be_bytes([a, b]);
    let lo = u16::from_be_bytes([c, d]);
    [
        ("mapped", ip.to_ipv6_mapped()),
        ("compatible", Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo)),
        ("nat64", Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo)),
        ("6to4", Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().expect("test address")
    }

    /// The address on each side of every blocked IPv4 range.
    const ALLOWED_NEIGHBOURS: &[&str] = &[
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
    ];

    #[test]
    fn global_addresses_are_not_forbidden() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450::1"] {
            let ip: IpAddr = ip.parse().expect("test address");
            assert!(!is_forbidden_ip(ip), "{ip} is global");
        }
    }

    #[test]
    fn translated_ipv6_forms_of_a_global_ipv4_are_allowed() {
        for (form, ip) in ipv6_forms(v4("8.8.8.8")) {
            if form == "compatible" {
                continue; // deprecated and unroutable, refused on its own account
            }
            assert!(!is_forbidden_ip(ip.into()), "{form} {ip} reaches 8.8.8.8");
        }
    }

    #[test]
    fn ipv4_compatible_form_is_refused_even_for_a_global_ipv4() {
        assert!(is_forbidden_ip(v6("::8.8.8.8").into()));
    }

    #[test]
    fn first_and_last_address_of_every_blocked_ipv4_range_is_forbidden() {
        for ip in FORBIDDEN_V4_SAMPLES {
            assert!(is_forbidden_ip(v4(ip).into()), "{ip} must be forbidden");
        }
    }

    #[test]
    fn addresses_just_outside_each_blocked_ipv4_range_are_allowed() {
        for ip in ALLOWED_NEIGHBOURS {
            assert!(!is_forbidden_ip(v4(ip).into()), "{ip} is global");
        }
    }

    #[test]
    fn every_ipv6_spelling_of_a_forbidden_ipv4_is_forbidden() {
        for ip in FORBIDDEN_V4_SAMPLES {
            for (form, v6) in ipv6_forms(v4(ip)) {
                assert!(is_forbidden_ip(v6.into()), "{form} {v6} embeds {ip}");
            }
        }
    }

    #[test]
    fn non_global_ipv6_ranges_are_forbidden() {
        for ip in [
            "::",
            "::1",
            "fc00::",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::",
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "ff0e::1",
            "100::",
            "100::ffff:ffff:ffff:ffff",
            "2001::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff::",
            "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b:1::1",
            "::ffff:0:808:808",
            "5f00::1",
            "4000::1",
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(is_forbidden_ip(v6(ip).into()), "{ip} must be forbidden");
        }
    }

    #[test]
    fn global_ipv6_right_next_to_special_blocks_is_allowed() {
        for ip in [
            "2000::",
            "2001:200::",
            "2001:db7:ffff::1",
            "2001:db9::",
            "3fff:1000::",
        ] {
            assert!(!is_forbidden_ip(v6(ip).into()), "{ip} is global");
        }
    }

    #[test]
    fn cloud_metadata_address_is_forbidden_in_every_form() {
        let metadata = v4("169.254.169.254");
        assert!(is_forbidden_ip(metadata.into()));
        for (form, ip) in ipv6_forms(metadata) {
            assert!(is_forbidden_ip(ip.into()), "{form} {ip}");
        }
    }

    #[test]
    fn legacy_parser_reads_decimal_octal_hex_and_short_forms() {
        let loopback = Some(v4("127.0.0.1"));
        for host in [
            "127.0.0.1",
            "127.0.0.1.",
            "2130706433",
            "0177.0.0.1",
            "0x7f.0.0.1",
            "0X7F.0x0.0.1",
            "0x7f000001",
            "017700000001",
            "127.1",
            "127.0.1",
        ] {
            assert_eq!(parse_legacy_ipv4(host), loopback, "{host}");
        }
        assert_eq!(parse_legacy_ipv4("0x"), Some(v4("0.0.0.0")));
        assert_eq!(parse_legacy_ipv4("4294967295"), Some(v4("255.255.255.255")));
    }

    #[test]
    fn legacy_parser_refuses_overflow_and_non_numbers() {
        for host in [
            "",
            ".",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.3.256",
            "1.2.65536",
            "1.16777216",
            "4294967296",
            "08.0.0.1",
            "0x7g.0.0.1",
            "+1.2.3.4",
            "1..2.3",
            "example.com",
        ] {
            assert_eq!(parse_legacy_ipv4(host), None, "{host:?}");
        }
    }

    #[test]
    fn names_ending_in_a_number_are_recognised() {
        for host in ["1.2.3.4", "1.2.3.4.", "foo.0x1", "example.123", "99999999999"] {
            assert!(ends_in_number(host), "{host}");
        }
        for host in ["example.com", "example.com.", "1.2.3.x", "0xg", "", "."] {
            assert!(!ends_in_number(host), "{host}");
        }
    }
}
