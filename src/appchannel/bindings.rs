//! Input binding events to the app (protocol spec C5): for every input
//! binding the app says it handles (HTTP `OPTIONS /<name>` answering 2xx or
//! 405; gRPC `ListInputBindings` naming it), each event goes to
//! `POST /<name>` or `OnBindingEvent`, one at a time per binding. A success
//! acks the event with the app's reply bytes; a failure nacks it with the
//! reason, and the binding applies its own retry rules.
//!
//! Left out: the gRPC `BindingEventResponse` fields `to`, `data` and
//! `concurrency` (daprd then invokes the listed output bindings); plughost
//! only passes `data` back to the input binding as the reply. The component
//! metadata `route` and `direction` are not read either: the route is the
//! binding's name and the app is always asked.

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::component::Status;
use crate::kinds::ComponentKind;

/// Pause before reading again after the binding refused or ended a read.
const REREAD_PAUSE: Duration = Duration::from_secs(1);

/// Asks the app about every ready input binding and starts a loop for each
/// one it handles.
pub(super) async fn start(app: &Arc<App>) {
    let names: Vec<String> = app
        .sidecar
        .registry()
        .components()
        .iter()
        .filter(|c| c.kinds.contains(&ComponentKind::InputBinding) && c.status == Status::Ready)
        .map(|c| c.name.clone())
        .collect();
    for name in names {
        match app.handles_binding(&name).await {
            Ok(true) => {
                tokio::spawn(run(app.clone(), name));
            }
            Ok(false) => tracing::info!("the app has not subscribed to the input binding {name}"),
            Err(e) => tracing::error!("cannot ask the app about the input binding {name}: {e}"),
        }
    }
}

/// Reads `name` and hands every event to the app until the sidecar stops.
async fn run(app: Arc<App>, name: String) {
    let sidecar = app.sidecar.clone();
    let binding = match sidecar.registry().input_binding(&name) {
        Ok(binding) => binding,
        Err(e) => return tracing::error!("input binding {name}: {e}"),
    };
    loop {
        match binding.read().await {
            Ok(mut events) => {
                tracing::info!("delivering the input binding {name} to the app");
                loop {
                    tokio::select! {
                        () = app.healthy() => {}
                        () = sidecar.stopping() => return,
                    }
                    let event = tokio::select! {
                        biased; // a stop or an unhealthy app first: no new event then
                        () = sidecar.stopping() => return,
                        () = app.unhealthy() => continue,
                        event = events.next() => event,
                    };
                    let Some(event) = event else {
                        tracing::warn!("the input binding {name} ended its events; reading again");
                        break;
                    };
                    match app.deliver_binding(&name, &event.item).await {
                        Ok(reply) => event.ack_with(reply),
                        Err(e) => {
                            tracing::warn!("input binding {name}: the app failed the event: {e}");
                            event.nack(e);
                        }
                    }
                }
            }
            Err(e) => tracing::error!("cannot read the input binding {name}: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(REREAD_PAUSE) => {}
            () = sidecar.stopping() => return,
        }
    }
}
