//! routerd's HTTP listener on real processes. First, byte for byte: the same requests sent to a
//! real nginx (`include uwsgi_params; uwsgi_pass`, as operators configure it) and to routerd's
//! HTTP listener reach one capturing uwsgi node, and the two var lists must be equal but for a
//! short list of differences, each explained. Then the whole stack over HTTP keep-alive: nginx
//! `proxy_pass` to an `upstream` with `keepalive`, routerd's HTTP listener (TCP and UNIX), three
//! uWSGI nodes running Django. Needs nginx, uWSGI and Django: `bash tests/run.sh` installs them.

#[path = "http_front_real/capture.rs"]
mod capture;
#[path = "real_stack/content.rs"]
mod content;
#[path = "http_front_real/fronts.rs"]
mod fronts;
#[allow(dead_code)]
#[path = "real_stack/http.rs"]
mod http;
#[path = "http_front_real/http_stack.rs"]
mod http_stack;
#[path = "real_stack/nginx.rs"]
mod nginx;
#[path = "http_front_real/routerd_http.rs"]
mod routerd_http;
mod support;
#[allow(dead_code)]
#[path = "real_stack/uwsgi.rs"]
mod uwsgi;
#[path = "http_front_real/var_list.rs"]
mod var_list;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use capture::Var;
use content::PatternCheck;
use fronts::{exchange, Fronts};
use http::Response;
use http_stack::HttpStack;
use routerd_http::RouterdHttp;

/// The site's host name, as a browser would send it.
const HOST: &str = "shop.example.test";

/// The requests both fronts get: name and raw bytes.
fn requests() -> Vec<(&'static str, Vec<u8>)> {
    let form = "name=vars&value=compare%21&empty=";
    vec![
        (
            "a GET with a query string, repeated headers and cookies",
            b"GET /echo/search?q=caf%C3%A9&page=2&empty=&flag HTTP/1.1\r\n\
              Host: Shop.Example.Test:8080\r\n\
              User-Agent: vars-compare/1.0\r\n\
              Accept: text/html\r\n\
              Accept-Language: en-GB, en;q=0.8\r\n\
              X-Trace: first\r\n\
              Accept: application/json\r\n\
              Cookie: session=abc123\r\n\
              Cookie: theme=dark\r\n\
              X-Forwarded-For: 203.0.113.7\r\n\
              X_Underscored: dropped\r\n\
              Connection: close\r\n\r\n"
                .to_vec(),
        ),
        (
            "a POST with a Content-Length body",
            format!(
                "POST /echo/form?next=%2Fdone HTTP/1.1\r\n\
                 Host: shop.example.test\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\
                 Connection: close\r\n\r\n{form}",
                form.len()
            )
            .into_bytes(),
        ),
        (
            "a path with %-escapes, /./, // and /../",
            b"GET /echo/a%20b/./c//d/%7Euser/caf%C3%A9/../e//?x=%2F..%2F HTTP/1.1\r\n\
              Host: shop.example.test\r\n\
              Connection: close\r\n\r\n"
                .to_vec(),
        ),
        (
            "an absolute-form target with another Host",
            b"GET http://absolute.example.test/echo/abs?x=1 HTTP/1.1\r\n\
              Host: other.example.test\r\n\
              Connection: close\r\n\r\n"
                .to_vec(),
        ),
        (
            "an HTTP/1.0 GET without Host",
            b"GET /echo/old HTTP/1.0\r\n\r\n".to_vec(),
        ),
    ]
}

#[test]
fn routerd_sends_the_vars_nginx_uwsgi_pass_sends() {
    let fronts = Fronts::start();
    let ports = Ports {
        nginx: fronts.nginx.ports[0].port(),
        routerd: fronts.routerd.tcp.port(),
    };
    let mut failures = Vec::new();
    for (name, raw) in requests() {
        let by_nginx = fronts.vars_via("nginx", fronts.nginx.ports[0], name, &raw);
        let by_routerd = fronts.vars_via("routerd", fronts.routerd.tcp, name, &raw);
        let body = raw
            .split_at(raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4)
            .1;
        assert_eq!(by_nginx.body, body, "{name}: the body nginx passed");
        assert_eq!(by_routerd.body, body, "{name}: the body routerd passed");
        let sent = format!(
            "{name}\nnginx sent:\n{}routerd sent:\n{}",
            var_list::listing(&by_nginx.vars),
            var_list::listing(&by_routerd.vars)
        );
        let (nginx, routerd) = explained(by_nginx.vars, by_routerd.vars, ports, &sent);
        if nginx != routerd {
            failures.push(format!(
                "{name}: after the allowed differences:\n{}\n{sent}",
                var_list::diff(
                    &nginx,
                    &routerd,
                    "nginx uwsgi_pass",
                    "routerd HTTP listener"
                )
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The ports each front listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    nginx: u16,
    routerd: u16,
}

/// Both lists with every allowed difference taken out, each checked as it is: what is left
/// must be equal, var for var and byte for byte. `sent` (both lists as sent) names a failure.
fn explained(
    mut nginx: Vec<Var>,
    mut routerd: Vec<Var>,
    ports: Ports,
    sent: &str,
) -> (Vec<Var>, Vec<Var>) {
    // 1. DOCUMENT_ROOT: nginx's `root` (here its default, <prefix>/html). routerd serves no
    //    files, so it has no document root to give.
    let root = var_list::take(&mut nginx, "DOCUMENT_ROOT");
    assert!(root.is_some(), "nginx sends DOCUMENT_ROOT: {sent}");
    assert_eq!(var_list::get(&routerd, "DOCUMENT_ROOT"), None, "{sent}");

    // 2. The request id: routerd appends HTTP_X_REQUEST_ID as the last var ([request_id] is on
    //    by default); the client sent no X-Request-Id.
    let (key, id) = routerd.pop().expect("routerd sent vars");
    assert_eq!(key, b"HTTP_X_REQUEST_ID", "routerd's last var: {sent}");
    assert!(!id.is_empty(), "an empty request id: {sent}");

    // 3. REMOTE_PORT is the client's port of each connection (one per front); SERVER_PORT the
    //    port of the listener each front has.
    for vars in [&mut nginx, &mut routerd] {
        let port = var_list::get(vars, "REMOTE_PORT").unwrap_or_default();
        assert!(port.parse::<u16>().is_ok(), "REMOTE_PORT {port:?}: {sent}");
        var_list::set(vars, "REMOTE_PORT", "<client port>");
    }
    assert_eq!(
        var_list::get(&nginx, "SERVER_PORT"),
        Some(ports.nginx.to_string())
    );
    assert_eq!(
        var_list::get(&routerd, "SERVER_PORT"),
        Some(ports.routerd.to_string())
    );
    var_list::set(&mut nginx, "SERVER_PORT", "<listener port>");
    var_list::set(&mut routerd, "SERVER_PORT", "<listener port>");

    // 4. SERVER_NAME: nginx's is its `server_name`, none in this server block, so empty; routerd
    //    has none and names the requested host, lowercased and without port (what nginx's $host
    //    and so Debian's HTTP_HOST give), or, with no host at all, the address it was reached on.
    let nginx_host = var_list::get(&nginx, "HTTP_HOST").filter(|h| !h.is_empty());
    let routerd_name = nginx_host.unwrap_or_else(|| "127.0.0.1".to_owned());
    assert_eq!(
        var_list::get(&nginx, "SERVER_NAME"),
        Some(String::new()),
        "{sent}"
    );
    assert_eq!(
        var_list::get(&routerd, "SERVER_NAME"),
        Some(routerd_name),
        "{sent}"
    );
    var_list::set(&mut nginx, "SERVER_NAME", "<server name>");
    var_list::set(&mut routerd, "SERVER_NAME", "<server name>");

    // 5. HTTP_HOST: Debian's uwsgi_params sends `HTTP_HOST $host`, lowercased and without the
    //    port (a workaround they say breaks apps that need the port); routerd passes the Host
    //    header as sent, port kept, as nginx did before that line and as nginx 1.30's
    //    `$host$is_request_port$request_port` does. The same host either way. With no host at
    //    all, nginx's $host falls back to its empty server_name, and routerd sends no HTTP_HOST.
    match var_list::get(&routerd, "HTTP_HOST") {
        Some(as_sent) => {
            let host = as_sent.rsplit_once(':').map_or(&*as_sent, |(h, _)| h);
            let host = host.to_ascii_lowercase();
            assert_eq!(
                var_list::get(&nginx, "HTTP_HOST"),
                Some(host.clone()),
                "{sent}"
            );
            var_list::set(&mut routerd, "HTTP_HOST", &host);
        }
        None => assert_eq!(
            var_list::take(&mut nginx, "HTTP_HOST"),
            Some(Vec::new()),
            "{sent}"
        ),
    }

    // 6. Hop-by-hop headers describe the client's connection to the front, not the request:
    //    nginx passes the client's `Connection: close`, routerd does not (RFC 9110 7.6.1).
    var_list::take(&mut nginx, "HTTP_CONNECTION");
    assert_eq!(var_list::get(&routerd, "HTTP_CONNECTION"), None, "{sent}");

    // 7. A header sent on several lines: nginx sends one var per line, and uWSGI keeps only the
    //    last (a second Cookie line hides the first from the app); routerd joins them in the
    //    first line's place, `; ` for Cookie (RFC 6265 5.4), `, ` for the rest (RFC 9110 5.3).
    let nginx = var_list::joined(nginx);
    (nginx, routerd)
}

#[test]
fn nginx_keeps_http_connections_to_routerd_over_tcp_and_unix() {
    let stack = HttpStack::start(3);
    for (via, addr) in stack.entrances() {
        echo_reports_the_request_and_the_clients_headers(via, addr);
        post_of_10_mb_reaches_django_whole(via, addr);
        chunked_post_reaches_django_whole(via, addr);
        stream_of_100_mb_arrives_whole(via, addr);
        django_404_passes_through(via, addr);
        nginx_reuses_its_connections_to_routerd(&stack, via, addr);
    }
}

fn echo_reports_the_request_and_the_clients_headers(via: &str, addr: SocketAddr) {
    let raw = format!(
        "GET /echo/hello?x=1&y=%20 HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: http-front-real/1.0\r\n\
         X-Client-Header: hello\r\nAccept: text/plain\r\nCookie: a=1\r\nAccept: text/html\r\n\
         Cookie: b=2\r\nConnection: close\r\n\r\n"
    );
    let reply = exchange(addr, raw.as_bytes());
    assert_eq!(reply.head.status, 200, "via {via}: {}", reply.text());
    let expected = [
        ("method", "GET"),
        ("path", "/echo/hello"),
        ("query", "x=1&y=%20"),
        ("host", HOST),
        ("body_length", "0"),
        ("HTTP_USER_AGENT", "http-front-real/1.0"),
        ("HTTP_X_CLIENT_HEADER", "hello"),
        // nginx passes each line; routerd joins them, so Django sees both.
        ("HTTP_ACCEPT", "text/plain, text/html"),
        ("HTTP_COOKIE", "a=1; b=2"),
        // nginx's, passed as plain headers: 127.0.0.1 is no trusted proxy here.
        ("HTTP_X_FORWARDED_FOR", "127.0.0.1"),
        ("HTTP_X_FORWARDED_PROTO", "http"),
        // The peer of routerd is nginx: over TCP from loopback, over the UNIX socket "unix:".
        (
            "remote_addr",
            if via == "tcp" { "127.0.0.1" } else { "unix:" },
        ),
    ];
    for (key, value) in expected {
        assert_eq!(
            field(&reply, key).as_deref(),
            Some(value),
            "{key} via {via}: {}",
            reply.text()
        );
    }
    let id = field(&reply, "HTTP_X_REQUEST_ID").unwrap_or_default();
    assert!(
        !id.is_empty(),
        "routerd's request id via {via}: {}",
        reply.text()
    );
    // Hop-by-hop: nginx's `Connection` to routerd is not the request's.
    assert_eq!(field(&reply, "HTTP_CONNECTION"), None, "via {via}");
}

fn post_of_10_mb_reaches_django_whole(via: &str, addr: SocketAddr) {
    let body = content::pattern(10 * 1024 * 1024);
    let reply = http::request(addr, "POST", "/echo/upload", HOST, &body)
        .unwrap_or_else(|e| panic!("POST 10 MB via {via}: {e}"));
    assert_eq!(
        reply.head.status,
        200,
        "POST 10 MB via {via}: {}",
        reply.text()
    );
    assert_eq!(
        field(&reply, "body_length").as_deref(),
        Some("10485760"),
        "via {via}"
    );
    let crc = format!("{:08x}", content::crc32(&body));
    assert_eq!(
        field(&reply, "body_crc32"),
        Some(crc),
        "POST body altered on the way, via {via}"
    );
}

fn chunked_post_reaches_django_whole(via: &str, addr: SocketAddr) {
    // Under routerd's http.max_body_buffer (1 MiB), in chunks of every size.
    let body = content::pattern(300_000);
    let mut raw = format!(
        "POST /echo/chunked HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let sizes = [1, 4096, 65536, 777, 13];
    let mut rest = &body[..];
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, more) = rest.split_at((*size).min(rest.len()));
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
        rest = more;
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(addr, &raw);
    assert_eq!(
        reply.head.status,
        200,
        "chunked POST via {via}: {}",
        reply.text()
    );
    assert_eq!(
        field(&reply, "body_length").as_deref(),
        Some("300000"),
        "via {via}"
    );
    let crc = format!("{:08x}", content::crc32(&body));
    assert_eq!(
        field(&reply, "body_crc32"),
        Some(crc),
        "chunked body altered via {via}"
    );
    // nginx passed it on chunked (with request buffering it would have sent a Content-Length,
    // which would reach Django as HTTP_CONTENT_LENGTH); routerd gave uWSGI its length.
    assert_eq!(field(&reply, "HTTP_CONTENT_LENGTH"), None, "via {via}");
    assert_eq!(field(&reply, "HTTP_TRANSFER_ENCODING"), None, "via {via}");
}

fn stream_of_100_mb_arrives_whole(via: &str, addr: SocketAddr) {
    const SIZE: u64 = 100 * 1024 * 1024;
    let mut check = PatternCheck::new();
    let path = format!("/stream/{SIZE}");
    let head = http::request_streamed(addr, "GET", &path, HOST, &[], |piece| check.feed(piece))
        .unwrap_or_else(|e| panic!("GET {path} via {via} after {} bytes: {e}", check.seen));
    assert_eq!(head.status, 200, "GET {path} via {via}");
    assert_eq!(check.seen, SIZE, "streamed body length via {via}");
    assert_eq!(
        check.first_mismatch, None,
        "streamed body corrupted via {via}"
    );
}

fn django_404_passes_through(via: &str, addr: SocketAddr) {
    let reply = get(addr, "/no/such/page");
    assert_eq!(reply.head.status, 404, "via {via}: {}", reply.text());
    let text = reply.text();
    assert!(
        text.contains("<h1>Not Found</h1>")
            && text.contains("The requested resource was not found on this server."),
        "not Django's 404 page via {via}: {text}"
    );
}

/// Many requests through nginx ride few connections to routerd. Over TCP the echo view's
/// REMOTE_PORT is the port of nginx's connection to routerd, so the ports seen count the
/// connections used; over either socket routerd's gauge of open HTTP connections stays small
/// (the idle ones nginx keeps to each upstream).
fn nginx_reuses_its_connections_to_routerd(stack: &HttpStack, via: &str, addr: SocketAddr) {
    const REQUESTS: usize = 40;
    const LIMIT: Duration = Duration::from_secs(60);
    let requests_before = http_requests(&stack.routerd);
    let started = Instant::now();
    let mut ports = BTreeSet::new();
    let mut open_seen = BTreeSet::new();
    for i in 0..REQUESTS {
        assert!(
            started.elapsed() < LIMIT,
            "{i} requests via {via} took over {LIMIT:?}"
        );
        let reply = get(addr, &format!("/echo/reuse/{i}"));
        assert_eq!(
            reply.head.status,
            200,
            "request {i} via {via}: {}",
            reply.text()
        );
        ports.insert(field(&reply, "remote_port").unwrap_or_default());
        let open = stack
            .routerd
            .scrape()
            .get("uwsgi_router_client_connections", &[("listener", "http")])
            .unwrap_or(0.0);
        open_seen.insert(open as u64);
    }
    assert_eq!(
        http_requests(&stack.routerd) - requests_before,
        REQUESTS as f64,
        "requests routerd's HTTP listener got via {via}"
    );
    if via == "tcp" {
        assert!(
            ports.len() <= 2,
            "{REQUESTS} requests via {via} came over {} connections: ports {ports:?}",
            ports.len()
        );
    } else {
        assert_eq!(
            ports,
            BTreeSet::from([String::new()]),
            "no port over a UNIX socket"
        );
    }
    // One kept per upstream used so far, and none opened per request.
    assert!(
        open_seen.iter().all(|n| (1..=4).contains(n)),
        "open HTTP connections to routerd via {via}, seen after each request: {open_seen:?}"
    );
}

fn http_requests(routerd: &RouterdHttp) -> f64 {
    routerd
        .scrape()
        .get("uwsgi_router_http_requests_total", &[])
        .unwrap_or(0.0)
}

fn get(addr: SocketAddr, path: &str) -> Response {
    http::request(addr, "GET", path, HOST, &[])
        .unwrap_or_else(|e| panic!("GET {path} via {addr}: {e}"))
}

/// A `key=value` line of the echo view's answer.
fn field(reply: &Response, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    reply
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}
