//! `bindings-component`: a loopback binding exporting both directions.
//! `invoke("create", data)` on the output side queues `data`; the input side
//! emits every queued item as an event to each open reader. Both sides live
//! in one instance's memory, so an event read back proves the host serves
//! both sides of one component from one instance.

wit_bindgen::generate!({ world: "bindings-component", path: "../../wit" });

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use exports::plughost::components::input_binding::{self, Event};
use exports::plughost::components::lifecycle;
use exports::plughost::components::output_binding::{self, InvokeRequest, InvokeResponse};
use plughost::components::types::{Error, Metadata};

#[derive(Default)]
struct Loop {
    /// Queued items not yet handed to a reader.
    queued: VecDeque<Vec<u8>>,
    /// Open readers: events handed out and not answered yet.
    readers: BTreeMap<u64, Vec<String>>,
    next_reader: u64,
    next_event: u64,
}

thread_local! {
    static LOOP: RefCell<Loop> = RefCell::new(Loop::default());
}

fn with_loop<R>(f: impl FnOnce(&mut Loop) -> R) -> R {
    LOOP.with(|l| f(&mut l.borrow_mut()))
}

struct Component;

impl lifecycle::Guest for Component {
    fn init(_metadata: Metadata) -> Result<(), Error> {
        Ok(())
    }

    fn features() -> Vec<String> {
        Vec::new()
    }

    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

impl output_binding::Guest for Component {
    fn operations() -> Vec<String> {
        vec!["create".to_owned()]
    }

    fn invoke(request: InvokeRequest) -> Result<InvokeResponse, Error> {
        if request.operation != "create" {
            return Err(Error::NotSupported(format!("operation `{}`", request.operation)));
        }
        with_loop(|l| l.queued.push_back(request.data));
        Ok(InvokeResponse { data: Vec::new(), metadata: Vec::new(), content_type: None })
    }
}

impl input_binding::Guest for Component {
    fn open() -> Result<u64, Error> {
        Ok(with_loop(|l| {
            l.next_reader += 1;
            l.readers.insert(l.next_reader, Vec::new());
            l.next_reader
        }))
    }

    fn poll(reader: u64, max: u32) -> Result<Vec<Event>, Error> {
        with_loop(|l| {
            if !l.readers.contains_key(&reader) {
                return Err(Error::NotFound(format!("reader {reader}")));
            }
            let mut events = Vec::new();
            while events.len() < max as usize {
                let Some(data) = l.queued.pop_front() else { break };
                l.next_event += 1;
                let id = l.next_event.to_string();
                l.readers.get_mut(&reader).expect("checked above").push(id.clone());
                events.push(Event { id, data, metadata: Vec::new(), content_type: None });
            }
            Ok(events)
        })
    }

    fn answer(reader: u64, event_id: String, _reply: Result<Vec<u8>, String>) -> Result<(), Error> {
        with_loop(|l| {
            let Some(open) = l.readers.get_mut(&reader) else { return Ok(()) };
            open.retain(|id| *id != event_id);
            Ok(())
        })
    }

    fn close(reader: u64) {
        with_loop(|l| l.readers.remove(&reader));
    }
}

export!(Component);
