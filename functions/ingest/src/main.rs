//! Lambda entry point of the ingest function: `cargo lambda watch` serves it
//! locally, EventBridge invokes it on the schedule in AWS.
// The AWS SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("ingest")?;
    let env = secrets::environment().await?;
    let ingest = ingest::Ingest::from_config(&ingest::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| ingest::handle(&ingest, event)))
        .await
}
