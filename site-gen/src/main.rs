//! Lambda entry point of the site generator: invoked on the transform's success
//! (a Lambda destination on AWS, the scheduler locally) or on its own.

// The AWS SDK's nested futures are deep.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("site")?;
    let env = secrets::environment().await?;
    let site = site_gen::SiteGen::from_config(&site_gen::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| site_gen::handle(&site, event)))
        .await
}
