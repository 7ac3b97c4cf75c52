//! The generated gRPC types and services of `proto/uwsgi_router/v1` (package `uwsgi_router.v1`).
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("uwsgi_router.v1");
