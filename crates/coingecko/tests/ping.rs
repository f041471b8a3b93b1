//! `Client::ping`: one attempt, no retries, a clear answer either way; the
//! first-run history job chooses between a backfill and the offline path on it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: &str) -> coingecko::Client {
    coingecko::Client::new(&coingecko::Config {
        base_url: base.parse().unwrap(),
        api_key: None,
        ca_bundle: None,
        timeout: Duration::from_secs(5),
        max_retries: 5,
        retry_base: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn the_documented_answer_is_up() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"gecko_says":"(V3) To the Moon!"}"#))
        .expect(1)
        .mount(&server)
        .await;
    client(&server.uri()).ping().await.unwrap();
}

#[tokio::test]
async fn a_server_error_is_down_after_one_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri()).ping().await.unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
}

#[tokio::test]
async fn something_else_answering_is_not_coingecko() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>captive portal</html>"))
        .mount(&server)
        .await;
    let err = client(&server.uri()).ping().await.unwrap_err();
    assert!(err.to_string().contains("does not parse"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_down_at_once() {
    // A port that was just free: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let err = client(&format!("http://127.0.0.1:{port}")).ping().await.unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "no retries: {:?}", started.elapsed());
}
