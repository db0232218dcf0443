//! Builds the HTTP request of one attempt (PRODUCT.md §4.1, §4.4): the form fields as a POST
//! body or GET query, the Hookline headers, and fresh signatures over the exact bytes sent.
//! Randomness (nonces) and time come in as arguments, so the output is reproducible in tests.

use domain::{HttpMethod, Level, TargetKind};
use sender::OutboundRequest;
use signing::standard::SigningSecret;
use store::SigningKeys;

/// What identifies the attempt on the wire.
#[derive(Debug, Clone)]
pub struct AttemptHeaders<'a> {
    pub event_id: &'a str,
    /// 1-based, across primary, fallback and redeliveries.
    pub attempt: u32,
    pub level: Option<Level>,
    pub sequence: u32,
    pub target: TargetKind,
}

/// Per-attempt randomness and time.
#[derive(Debug, Clone)]
pub struct Freshness {
    pub nonces: signing::vobiz::Nonces,
    pub unix_time: i64,
}

/// The request for one attempt to `url` with `method`.
pub fn build(
    method: HttpMethod,
    url: &str,
    fields: &[(String, String)],
    keys: &SigningKeys,
    headers: &AttemptHeaders<'_>,
    fresh: &Freshness,
) -> OutboundRequest {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    let (full_url, body) = match method {
        HttpMethod::Post => (url.to_owned(), encoded.into_bytes()),
        HttpMethod::Get => (with_query(url, &encoded), Vec::new()),
    };
    let mut out = Vec::with_capacity(16);
    if method == HttpMethod::Post {
        out.push((
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ));
    }
    out.extend([
        ("X-Hookline-Event-Id".to_owned(), headers.event_id.to_owned()),
        ("X-Hookline-Attempt".to_owned(), headers.attempt.to_string()),
        (
            "X-Hookline-Callback-Level".to_owned(),
            headers.level.map_or("none", Level::as_str).to_owned(),
        ),
        ("X-Hookline-Sequence".to_owned(), headers.sequence.to_string()),
        ("X-Hookline-Target".to_owned(), headers.target.as_str().to_owned()),
    ]);
    // Receivers rebuild the URL from the request they got, which is the normalised form the
    // HTTP client sends (`https://host/` for `https://host`, default port dropped, …).
    let sent = url::Url::parse(url)
        .map(String::from)
        .unwrap_or_else(|_| url.to_owned());
    for (name, value) in signing::vobiz::headers(&sent, &keys.auth_token, &keys.parent_token, &fresh.nonces) {
        out.push((name.to_owned(), value));
    }
    let secrets: Vec<SigningSecret> = keys
        .secrets
        .iter()
        .filter_map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .map(SigningSecret::from_bytes)
        })
        .collect();
    out.push((signing::standard::ID.to_owned(), headers.event_id.to_owned()));
    out.push((
        signing::standard::TIMESTAMP.to_owned(),
        fresh.unix_time.to_string(),
    ));
    out.push((
        signing::standard::SIGNATURE.to_owned(),
        signing::standard::signature_header(&secrets, headers.event_id, fresh.unix_time, &body),
    ));
    OutboundRequest {
        method,
        url: full_url,
        headers: out,
        body,
    }
}

/// Appends form-encoded fields to a URL's query string, keeping any query it already has and
/// dropping a fragment (never sent on the wire anyway).
fn with_query(url: &str, encoded: &str) -> String {
    let without_fragment = url.split('#').next().unwrap_or(url);
    let separator = if without_fragment.contains('?') {
        if without_fragment.ends_with('?') || without_fragment.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{without_fragment}{separator}{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use signing::{verify_request, CapturedRequest, Check, Keys};

    fn keys() -> SigningKeys {
        SigningKeys {
            auth_token: b"token-of-the-account".to_vec(),
            parent_token: b"token-of-the-parent".to_vec(),
            secrets: vec![vec![1; 32], vec![2; 32]],
            version: store::KeysVersion::default(),
        }
    }

    fn fresh() -> Freshness {
        Freshness {
            nonces: signing::vobiz::Nonces {
                v2: "12345678901234567890".into(),
                v3: "09876543210987654321".into(),
            },
            unix_time: 1_700_000_000,
        }
    }

    fn headers() -> AttemptHeaders<'static> {
        AttemptHeaders {
            event_id: "6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90",
            attempt: 2,
            level: Some(Level::Application),
            sequence: 3,
            target: TargetKind::Fallback,
        }
    }

    fn fields() -> Vec<(String, String)> {
        vec![
            ("Event".into(), "Hangup".into()),
            ("From".into(), "+14155551234".into()),
        ]
    }

    fn verify(request: &OutboundRequest, url: &str) -> signing::Report {
        let secrets = [
            SigningSecret::from_bytes([1; 32]),
            SigningSecret::from_bytes([2; 32]),
        ];
        let keys = keys();
        verify_request(
            &CapturedRequest {
                url,
                headers: &request.headers,
                body: &request.body,
            },
            &Keys {
                auth_token: Some(&keys.auth_token),
                parent_token: Some(&keys.parent_token),
                secrets: &secrets,
            },
            1_700_000_000,
            300,
        )
    }

    #[test]
    fn a_post_carries_the_form_body_and_every_header_and_verifies() {
        let request = build(
            HttpMethod::Post,
            "https://example.com/cb?k=v",
            &fields(),
            &keys(),
            &headers(),
            &fresh(),
        );
        assert_eq!(request.url, "https://example.com/cb?k=v");
        assert_eq!(request.body, b"Event=Hangup&From=%2B14155551234");
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(header("x-hookline-attempt"), Some("2"));
        assert_eq!(header("x-hookline-callback-level"), Some("application"));
        assert_eq!(header("x-hookline-sequence"), Some("3"));
        assert_eq!(header("x-hookline-target"), Some("fallback"));
        assert_eq!(header("webhook-id"), header("x-hookline-event-id"));
        assert_eq!(
            header("webhook-signature").map(|s| s.split(' ').count()),
            Some(2),
            "one per secret"
        );
        let report = verify(&request, "https://example.com/cb?k=v");
        assert_eq!(
            (report.v2, report.v3, report.ma_v2, report.ma_v3, report.standard),
            (
                Check::Valid,
                Check::Valid,
                Check::Valid,
                Check::Valid,
                Check::Valid
            )
        );
    }

    #[test]
    fn a_get_puts_the_fields_in_the_query_and_signs_an_empty_body() {
        let request = build(
            HttpMethod::Get,
            "https://example.com/cb?k=v#frag",
            &fields(),
            &keys(),
            &headers(),
            &fresh(),
        );
        assert_eq!(
            request.url,
            "https://example.com/cb?k=v&Event=Hangup&From=%2B14155551234"
        );
        assert!(request.body.is_empty());
        assert!(!request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type")));
        let report = verify(&request, &request.url);
        assert!(report.all_valid_or_skipped(), "{report:?}");
        assert_eq!(with_query("https://e.com/x", "a=b"), "https://e.com/x?a=b");
    }

    #[test]
    fn vobiz_signatures_cover_the_url_as_sent() {
        // The HTTP client sends `https://example.com/` for `https://example.com`; a receiver
        // rebuilds the URL from what it got.
        let request = build(
            HttpMethod::Post,
            "https://Example.com:443",
            &fields(),
            &keys(),
            &headers(),
            &fresh(),
        );
        let report = verify(&request, "https://example.com/");
        assert_eq!((report.v2, report.v3), (Check::Valid, Check::Valid));
    }

    #[test]
    fn a_changed_body_no_longer_verifies() {
        let mut request = build(
            HttpMethod::Post,
            "https://example.com/cb",
            &fields(),
            &keys(),
            &headers(),
            &fresh(),
        );
        request.body = b"Event=Ring".to_vec();
        assert_eq!(
            verify(&request, "https://example.com/cb").standard,
            Check::Invalid
        );
    }
}
