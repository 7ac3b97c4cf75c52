//! uwsgi request packets, built here rather than by the code under test: modifier1 0, the size
//! of the vars block (u16, little-endian), modifier2 0, then each var as a length-prefixed name
//! and value. Vars may repeat, as a hostile client's do.

/// A packet of `vars`, in order.
pub fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in vars {
        for part in [name, value] {
            let len = u16::try_from(part.len()).expect("a var fits a uwsgi packet");
            block.extend_from_slice(&len.to_le_bytes());
            block.extend_from_slice(part.as_bytes());
        }
    }
    let size = u16::try_from(block.len()).expect("the vars fit a uwsgi packet");
    let mut packet = vec![0];
    packet.extend_from_slice(&size.to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&block);
    packet
}

/// The vars nginx sends for `method path` on `host`; `content_length` is empty without a body.
pub fn request_vars<'a>(
    method: &'a str,
    host: &'a str,
    path: &'a str,
    content_length: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", path),
        ("PATH_INFO", path),
        ("QUERY_STRING", ""),
        ("CONTENT_LENGTH", content_length),
        ("SERVER_NAME", "_"),
        ("SERVER_PORT", "80"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_HOST", host),
    ]
}

/// A GET request packet as nginx would send it.
pub fn get(host: &str, path: &str) -> Vec<u8> {
    request("GET", host, path, 0)
}

/// A request packet with `body_len` announced in CONTENT_LENGTH (the body is sent separately).
pub fn request(method: &str, host: &str, path: &str, body_len: usize) -> Vec<u8> {
    let len = if body_len == 0 {
        String::new()
    } else {
        body_len.to_string()
    };
    packet(&request_vars(method, host, path, &len))
}

/// A GET of `path` for `localhost` over HTTP/1.1, as the tests send straight to a uWSGI node.
pub fn node_get(path: &str) -> Vec<u8> {
    let mut vars = request_vars("GET", "localhost", path, "");
    vars.push(("SERVER_PROTOCOL", "HTTP/1.1"));
    packet(&vars)
}
