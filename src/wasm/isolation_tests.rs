//! Tests of what one guest can do to another or to the host through the
//! memory and the pool slots they share (checklist 3 and 12), on real
//! wasmtime with plughost's engine settings.

use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use super::instances::Instances;
use super::instances::tests::{CallsTheHost, loaded};
use crate::kinds::{ComponentError, Metadata};

/// Checklist 12: tenant A fills its whole linear memory (where a guest also
/// keeps its shadow stack) and a mutable global with a secret; its instance
/// is dropped; tenant B, instantiated into the same pool slot (the pool holds
/// one instance), reads every byte of the same amount of memory and the
/// global, and sees zeros only. (The native stack is not readable from WASM
/// at all: locals start at zero; fiber stacks are zeroed too, by
/// `async_stack_zeroing`.)
#[tokio::test]
async fn a_recycled_pool_slot_shows_the_next_tenant_zeros_only() {
    const TENANT: &str = r#"
        (component
          (core module $m
            (memory 1)
            (global $g (mut i64) (i64.const 0))
            (func (export "write")
              (drop (memory.grow (i32.const 63)))
              (memory.fill (i32.const 0) (i32.const 0x5a) (i32.const 4194304))
              (global.set $g (i64.const 0x5a5a5a5a5a5a5a5a)))
            (func (export "read") (result i32)
              (local $at i32) (local $seen i32)
              (drop (memory.grow (i32.const 63)))
              (block $done
                (loop $next
                  (br_if $done (i32.ge_u (local.get $at) (i32.const 4194304)))
                  (if (i64.ne (i64.load (local.get $at)) (i64.const 0))
                    (then (local.set $seen (i32.add (local.get $seen) (i32.const 1)))))
                  (local.set $at (i32.add (local.get $at) (i32.const 8)))
                  (br $next)))
              (if (i64.ne (global.get $g) (i64.const 0))
                (then (local.set $seen (i32.add (local.get $seen) (i32.const 1)))))
              (local.get $seen)))
          (core instance $i (instantiate $m))
          (func (export "write") (canon lift (core func $i "write")))
          (func (export "read") (result u32) (canon lift (core func $i "read"))))
    "#;
    let engine = super::engine::one_slot_engine();
    let component = Component::new(&engine, TENANT).unwrap();
    let linker = Linker::<()>::new(&engine);
    let tenant = || async {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX);
        let instance = linker.instantiate_async(&mut store, &component).await.unwrap();
        (store, instance)
    };
    for round in 0..3 {
        let (mut store, a) = tenant().await;
        let write = a.get_typed_func::<(), ()>(&mut store, "write").unwrap();
        write.call_async(&mut store, ()).await.unwrap();
        let read = a.get_typed_func::<(), (u32,)>(&mut store, "read").unwrap();
        // The reader sees the secret in its own instance (the check works).
        assert!(read.call_async(&mut store, ()).await.unwrap().0 > 0);
        drop(store);

        let (mut store, b) = tenant().await;
        let read = b.get_typed_func::<(), (u32,)>(&mut store, "read").unwrap();
        let (seen,) = read.call_async(&mut store, ()).await.unwrap();
        assert_eq!(seen, 0, "round {round}: tenant B read {seen} non-zero words left by tenant A");
        // The pool really has one slot: a second live instance does not fit,
        // so B was in A's slot.
        let mut other = Store::new(&engine, ());
        assert!(linker.instantiate_async(&mut other, &component).await.is_err());
    }
}

/// A guest that grows its memory to `pages` (64 KiB each) and then runs
/// one huge `memory.fill` and one `memory.copy` over all of it, once
/// (`once`) or forever.
fn bulk_memory_guest(pages: u32, once: bool) -> String {
    let repeat = if once { "" } else { "(br $again)" };
    format!(
        r#"
        (component
          (import "boom" (func $boom))
          (core func $boom_lowered (canon lower (func $boom)))
          (core module $m
            (import "host" "boom" (func $b))
            (memory 1)
            (func (export "run")
              (local $bytes i32)
              (if (i32.eq (memory.grow (i32.const {grow})) (i32.const -1)) (then unreachable))
              (local.set $bytes (i32.mul (memory.size) (i32.const 65536)))
              (loop $again
                (memory.fill (i32.const 0) (i32.const 0xa5) (local.get $bytes))
                (memory.copy (i32.const 0) (i32.const 1) (i32.sub (local.get $bytes) (i32.const 1)))
                {repeat})))
          (core instance $i (instantiate $m (with "host" (instance (export "boom" (func $boom_lowered))))))
          (func (export "run") (canon lift (core func $i "run"))))
        "#,
        grow = pages - 1
    )
}

/// The component of [`bulk_memory_guest`], initialised with `metadata`.
async fn bulk_memory(pages: u32, once: bool, metadata: &[(&str, &str)]) -> Instances<CallsTheHost> {
    let instances = Instances::<CallsTheHost>::new(loaded(&bulk_memory_guest(pages, once), || {}), "bulk-memory");
    let metadata: Metadata = metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    instances.init(metadata).await.unwrap();
    instances
}

/// Checklist 3: a single `memory.fill` / `memory.copy` is not interrupted
/// by the epoch (it checks it only between instructions), so its length is
/// what bounds the time slice, and the memory cap bounds the length: one
/// page more than the cap traps at once, naming the cap; at the cap, a guest
/// repeating a full fill and copy fails with its deadline, within a generous
/// bound of it. Prints the slice (one fill + copy of the whole memory)
/// measured here, for the checklist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_memory_fill_is_bounded_by_the_cap_and_stops_at_the_deadline() {
    const CAP_PAGES: u32 = 256 << 20 >> 16;
    let over = bulk_memory(CAP_PAGES + 1, true, &[("wasm.maxMemory", "256Mi")]).await;
    let err = over.ping().await.unwrap_err().to_string();
    assert!(err.contains("bulk-memory") && err.contains("memory limit of 256 MiB exceeded"), "{err}");

    let once = bulk_memory(CAP_PAGES, true, &[("wasm.maxMemory", "256Mi"), ("wasm.callTimeout", "30s")]).await;
    let started = Instant::now();
    once.ping().await.expect("one fill and copy of 256 MiB completes");
    let slice = started.elapsed();

    let deadline = Duration::from_millis(200);
    let forever = bulk_memory(CAP_PAGES, false, &[("wasm.maxMemory", "256Mi"), ("wasm.callTimeout", "200ms")]).await;
    let started = Instant::now();
    let err = forever.ping().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, ComponentError::DeadlineExceeded { component, .. } if component == "bulk-memory"),
        "{err:?}"
    );
    // Generous: the deadline, plus a few whole slices, plus a busy machine.
    assert!(took < deadline * 2 + slice * 4 + Duration::from_secs(2), "a 200 ms deadline fired after {took:?}");
    eprintln!(
        "checklist 3: one memory.fill + memory.copy over 256 MiB took {slice:?}; a 200 ms deadline fired after {took:?}"
    );
}
