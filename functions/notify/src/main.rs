//! Lambda entry point of the notify function: the transform's success
//! destination invokes it; `cargo lambda invoke notify` locally.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("notify")?;
    let env = secrets::environment().await?;
    let notify = notify::Notify::from_config(&notify::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| notify::handle(&notify, event)))
        .await
}
