//! Lambda entry point of the feed function: EventBridge invokes it every
//! minute (FEED_SCHEDULE); `cargo lambda invoke feed` locally.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("feed")?;
    let env = secrets::environment().await?;
    let feed = feed::Feed::from_config(&feed::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| feed::handle(&feed, event))).await
}
