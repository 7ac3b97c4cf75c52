//! What each operations path answers: `GET`/`HEAD` of `/metrics`, `/healthz` and `/readyz`.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use super::{Endpoints, METRICS_CONTENT_TYPE};

/// The answer to `method path`. For `HEAD` the body is built too, so `Content-Length` tells what a
/// `GET` would get; hyper sends no body for it.
pub(super) fn respond(method: &Method, path: &str, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let mut body = (endpoints.metrics)();
            crate::metrics::render_process(&mut body);
            reply(StatusCode::OK, METRICS_CONTENT_TYPE, body)
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match endpoints.ready.why_not() {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", body)
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let length = HeaderValue::from(body.len());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, length);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Readiness;
    use std::sync::Arc;

    fn endpoints(ready: Readiness) -> Endpoints {
        Endpoints {
            metrics: Arc::new(|| "m 1\n".to_owned()),
            ready,
        }
    }

    fn status(method: Method, path: &str, e: &Endpoints) -> StatusCode {
        respond(&method, path, e).status()
    }

    #[test]
    fn routes_by_method_and_path() {
        let e = endpoints(Readiness::new(true));
        for method in [Method::GET, Method::HEAD] {
            for path in ["/metrics", "/healthz", "/readyz"] {
                assert_eq!(status(method.clone(), path, &e), StatusCode::OK, "{path}");
            }
        }
        assert_eq!(status(Method::GET, "/nope", &e), StatusCode::NOT_FOUND);
        let post = respond(&Method::POST, "/metrics", &e);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn readyz_says_why_it_is_not_ready() {
        let stopping = endpoints(Readiness::new(false));
        assert_eq!(
            status(Method::GET, "/readyz", &stopping),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(Method::GET, "/healthz", &stopping), StatusCode::OK);
        let waiting = endpoints(Readiness::new(true).requiring(|| Some("pool web".into())));
        let r = respond(&Method::GET, "/readyz", &waiting);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "9");
    }

    #[test]
    fn metrics_carry_the_process_series() {
        let r = respond(&Method::GET, "/metrics", &endpoints(Readiness::new(true)));
        assert_eq!(r.headers()[header::CONTENT_TYPE], METRICS_CONTENT_TYPE);
        let length: usize = r.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > "m 1\n".len());
    }
}
