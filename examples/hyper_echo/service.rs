//! The echo service. `benches/src/bin/http_echo_hyper.rs` (hyper on tokio) includes this
//! same file, so the two hyper servers differ only in the runtime.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// Answers a request with its own body.
pub async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // A body that fails midway (the client went away) echoes what arrived.
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    Ok(Response::new(Full::new(body)))
}
