//! The native components plughost ships, registered as factories.
//!
//! | type                      | kind           | notes                                    |
//! |---------------------------|----------------|------------------------------------------|
//! | `state.in-memory`         | state          | lost on restart                          |
//! | `state.sqlite`            | state          | `<data dir>/<name>.db`, the default store|
//! | `state.redis`             | state          | Dapr's Redis layout, shared by instances |
//! | `pubsub.in-memory`        | pub/sub        | consumer groups, at-least-once           |
//! | `pubsub.redis`            | pub/sub        | Redis Streams, Dapr's message format     |
//! | `bindings.localstorage`   | output binding | files under `rootPath`                   |
//! | `bindings.cron`           | input binding  | `schedule: "@every 10s"`                 |
//! | `secretstores.local.env`  | secret store   | environment variables                    |
//! | `secretstores.local.file` | secret store   | a JSON file, nested keys flattened       |

use std::sync::Arc;

use crate::component::{Factories, Factory, FactoryContext, Instance, Mode};
use crate::kinds::input_binding::CronBinding;
use crate::kinds::output_binding::LocalStorageBinding;
use crate::kinds::pubsub::{MemoryPubSub, RedisPubSub};
use crate::kinds::secret_store::{EnvSecretStore, FileSecretStore};
use crate::kinds::state::{MemoryStateStore, RedisStateStore, SqliteStateStore};

/// Adds every built-in type to `factories`.
pub fn register(factories: &mut Factories) {
    let builtin = |make: fn(&FactoryContext) -> Instance| {
        Factory::new(Mode::Builtin, "builtin", move |ctx| {
            let instance = make(&ctx);
            async move { Ok(instance) }
        })
    };
    factories.insert("state.in-memory", builtin(|_| Instance::state(Arc::new(MemoryStateStore::new()))));
    factories.insert(
        "state.sqlite",
        builtin(|ctx| Instance::state(Arc::new(SqliteStateStore::new(ctx.data_dir.join(format!("{}.db", ctx.name)))))),
    );
    factories.insert("state.redis", builtin(|ctx| Instance::state(Arc::new(RedisStateStore::new(&ctx.name)))));
    factories.insert("pubsub.in-memory", builtin(|_| Instance::pubsub(Arc::new(MemoryPubSub::new()))));
    factories.insert("pubsub.redis", builtin(|ctx| Instance::pubsub(Arc::new(RedisPubSub::new(&ctx.name)))));
    factories.insert(
        "bindings.localstorage",
        builtin(|ctx| Instance::output_binding(Arc::new(LocalStorageBinding::new(ctx.data_dir.join(&ctx.name))))),
    );
    factories.insert("bindings.cron", builtin(|_| Instance::input_binding(Arc::new(CronBinding::new()))));
    factories.insert("secretstores.local.env", builtin(|_| Instance::secret_store(Arc::new(EnvSecretStore::new()))));
    factories.insert("secretstores.local.file", builtin(|_| Instance::secret_store(Arc::new(FileSecretStore::new()))));
}
