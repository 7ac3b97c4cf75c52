//! Request heads as nginx's `uwsgi_params` turns them into vars.

use super::*;
use crate::protocol::Vars;

fn parts(raw: &str) -> Parts {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(raw.as_bytes()).unwrap();
    let mut b = http::Request::builder()
        .method(req.method.unwrap())
        .uri(req.path.unwrap())
        .version(if req.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    for h in req.headers.iter() {
        b = b.header(h.name, h.value);
    }
    b.body(()).unwrap().into_parts().0
}

fn conn() -> ConnInfo {
    ConnInfo {
        peer: Some("127.0.0.1:54880".parse().unwrap()),
        local: Some("127.0.0.1:80".parse().unwrap()),
    }
}

fn vars_of(raw: &str, trusted: &Networks) -> Vec<(String, String)> {
    let p = packet(&parts(raw), &conn(), None, false, trusted, 65535).unwrap();
    Vars::parse(&p[HEADER_LEN..])
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_get_gives_the_vars_nginx_sends_in_its_order() {
    // The request of tests/fixtures/nginx-get.bin, which nginx turned into those vars.
    let vars = vars_of(
        "GET /hello/world?name=peers&x=1 HTTP/1.1\r\nHost: peers.local\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        &Networks::Only(Vec::new()),
    );
    let nginx = crate::protocol::parse_packet(
        include_bytes!("../../../../tests/fixtures/nginx-get.bin"),
        65535,
    )
    .unwrap()
    .1;
    let expected: Vec<(String, String)> = nginx
        .iter()
        .filter(|(k, _)| *k != b"DOCUMENT_ROOT")
        .map(|(k, v)| {
            let v = match k {
                b"SERVER_PORT" => "80".into(),
                _ => String::from_utf8_lossy(v).into_owned(),
            };
            (String::from_utf8_lossy(k).into_owned(), v)
        })
        .collect();
    assert_eq!(vars, expected);
}

#[test]
fn the_path_is_decoded_and_normalised_as_document_uri() {
    for (path, want) in [
        ("/a%20b/./c//d/../e", Some("/a b/c/e")),
        ("/x/", Some("/x/")),
        ("/x/..", Some("/")),
        ("/%2F", Some("/")),
        ("/../etc/passwd", None),
        ("/bad%zz", None),
        ("/nul%00", None),
        ("/", Some("/")),
    ] {
        let got = document_uri(path.as_bytes());
        assert_eq!(got.as_deref(), want.map(str::as_bytes), "{path}");
    }
}

#[test]
fn hop_by_hop_and_underscored_headers_are_dropped_and_repeats_joined() {
    let vars = vars_of(
        "GET / HTTP/1.1\r\nHost: Shop.Example:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
         Keep-Alive: 5\r\nX_Forwarded_For: 6.6.6.6\r\nCookie: a=1\r\nCookie: b=2\r\nAccept: x\r\nAccept: y\r\n\r\n",
        &Networks::Only(Vec::new()),
    );
    assert_eq!(get(&vars, "HTTP_COOKIE"), Some("a=1; b=2"));
    assert_eq!(get(&vars, "HTTP_ACCEPT"), Some("x, y"));
    assert_eq!(get(&vars, "HTTP_HOST"), Some("Shop.Example:8080"));
    assert_eq!(get(&vars, "SERVER_NAME"), Some("shop.example"));
    for gone in [
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_X_SECRET",
        "HTTP_X_FORWARDED_FOR",
    ] {
        assert_eq!(get(&vars, gone), None, "{gone}");
    }
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.7\r\nX-Forwarded-Proto: https\r\n\r\n";
    let untrusted = vars_of(raw, &Networks::Only(Vec::new()));
    assert_eq!(get(&untrusted, "REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(get(&untrusted, "REQUEST_SCHEME"), Some("http"));
    assert_eq!(get(&untrusted, "HTTPS"), None);
    assert_eq!(
        get(&untrusted, "HTTP_X_FORWARDED_FOR"),
        Some("203.0.113.9, 10.0.0.7"),
        "passed on as a plain header"
    );
    let trusted = Networks::allowed(&["127.0.0.0/8", "10.0.0.0/8"]).unwrap();
    let proxied = vars_of(raw, &trusted);
    assert_eq!(
        get(&proxied, "REMOTE_ADDR"),
        Some("203.0.113.9"),
        "the right-most untrusted address"
    );
    assert_eq!(
        get(&proxied, "REMOTE_PORT"),
        Some(""),
        "no port: the peer's is the proxy's (nginx's realip leaves it empty too)"
    );
    assert_eq!(get(&untrusted, "REMOTE_PORT"), Some("54880"), "the peer's");
    assert_eq!(get(&proxied, "REQUEST_SCHEME"), Some("https"));
    assert_eq!(get(&proxied, "HTTPS"), Some("on"));
}

#[test]
fn a_body_length_and_type_are_given_and_oversize_heads_refused() {
    let p = parts(
        "POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
    );
    let packet = packet(&p, &conn(), Some(5), false, &Networks::Only(vec![]), 65535).unwrap();
    let vars = Vars::parse(&packet[HEADER_LEN..]).unwrap();
    assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b"5"[..]));
    assert_eq!(vars.get(b"CONTENT_TYPE"), Some(&b"text/plain"[..]));
    assert_eq!(vars.get(b"HTTP_CONTENT_LENGTH"), Some(&b"5"[..]));
    assert_eq!(
        super::packet(&p, &conn(), Some(5), false, &Networks::Only(vec![]), 100).unwrap_err(),
        VarsError::TooLarge
    );
}

#[test]
fn an_absolute_form_target_names_the_host_over_the_host_header() {
    // As nginx's $host and RFC 9112 3.2.2: the target's authority, not the Host header, is the
    // host, so a Host naming another site picks neither the route nor what the app sees.
    let vars = vars_of(
        "GET http://absolute.test:8080/p?x=1 HTTP/1.1\r\nHost: other.test\r\nAccept: a\r\n\r\n",
        &Networks::Only(Vec::new()),
    );
    assert_eq!(get(&vars, "SERVER_NAME"), Some("absolute.test"));
    assert_eq!(get(&vars, "HTTP_HOST"), Some("absolute.test:8080"));
    assert_eq!(get(&vars, "REQUEST_URI"), Some("/p?x=1"));
    let hosts: Vec<&str> = vars
        .iter()
        .filter(|(k, _)| k == "HTTP_HOST")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        hosts,
        ["absolute.test:8080"],
        "one HTTP_HOST, in the Host header's place"
    );
    let keys: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    let at = keys.iter().position(|k| *k == "HTTP_HOST").unwrap();
    assert_eq!(keys[at + 1], "HTTP_ACCEPT");
}
