//! Lambda entry point of the transform function: EventBridge invokes it after
//! ingest on the schedule; `{"full": true}` rebuilds every table.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("transform")?;
    let env = secrets::environment().await?;
    let transform = transform::Transform::from_config(&transform::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        transform::handle(&transform, event)
    }))
    .await
}
