//! Lambda entry point of the transform function: EventBridge invokes it after
//! ingest on the schedule; `{"full": true}` rebuilds every table.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("transform");
    let settings = settings::Settings::from_env_with_secrets().await?;
    let transform = transform::Transform::from_settings(&settings).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        transform::handle(&transform, event)
    }))
    .await
}
