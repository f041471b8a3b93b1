//! Lambda entry point of the consumer function: AWS invokes it with batches
//! from the Kafka event source mapping; locally the poller (`just consume`)
//! calls the same handler in-process.
// The AWS SDK's nested futures exceed the default layout depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init("consumer")?;
    let env = secrets::environment().await?;
    let consumer = consumer::Consumer::from_config(&consumer::Config::load(&env)?).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<KafkaEvent>| consumer::handle(&consumer, event))).await
}
