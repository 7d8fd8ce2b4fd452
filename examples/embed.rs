//! A Rust app using a state store and pub/sub through plughost, embedded.
//! Run with `cargo run --example embed`.

use plughost::Host;
use plughost::kinds::pubsub::PublishRequest;
use plughost::kinds::state::{GetRequest, SetRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    // `statestore` (state.sqlite) and `pubsub` (pubsub.in-memory); a
    // `.components_dir("...")` of Dapr YAML files works the same way.
    let host = Host::builder().data_dir(data.path()).embedded_defaults().build().await?;

    let store = host.state("statestore")?;
    store.set(SetRequest::new("order-1", r#"{"item":"tea"}"#)).await?;
    let order = store.get(GetRequest::new("order-1")).await?.expect("just written");
    println!("order-1 = {} (etag {:?})", String::from_utf8_lossy(&order.data), order.etag);

    let pubsub = host.pubsub("pubsub")?;
    let mut orders = pubsub.subscribe("orders", Default::default()).await?;
    pubsub.publish(PublishRequest::new("orders", "order-1 placed")).await?;
    let delivery = orders.next().await.expect("subscribed before publishing");
    println!("received: {}", String::from_utf8_lossy(&delivery.item.data));
    delivery.ack();

    host.shutdown().await;
    Ok(())
}
