//! `{{name}}`: an input binding, polled by the host. Replace the ticker with
//! your event source; the SDK does the rest in both modes (see README.md).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use plughost_component::bindings::Event;
use plughost_component::{Component, Error, InputBinding, Metadata, metadata_value};

struct Reader {
    next_due: Instant,
    /// Unanswered events by id.
    waiting: BTreeMap<String, Event>,
    /// Events whose answer failed, to deliver again.
    retry: Vec<Event>,
}

/// The component: one event per `intervalMs` (metadata, default 1000) on
/// every open reader; a failed answer delivers the event again.
pub struct {{camel_name}} {
    interval: Duration,
    readers: HashMap<u64, Reader>,
    next_id: u64,
}

impl Component for {{camel_name}} {
    fn init(metadata: Metadata) -> Result<Self, Error> {
        let interval = match metadata_value(&metadata, "intervalMs") {
            None => 1000,
            Some(ms) => ms.parse().map_err(|_| Error::InvalidArgument(format!("intervalMs: `{ms}` is not a number")))?,
        };
        Ok(Self { interval: Duration::from_millis(interval), readers: HashMap::new(), next_id: 0 })
    }
}

impl InputBinding for {{camel_name}} {
    fn open(&mut self) -> Result<u64, Error> {
        self.next_id += 1;
        self.readers.insert(self.next_id, Reader { next_due: Instant::now(), waiting: BTreeMap::new(), retry: Vec::new() });
        Ok(self.next_id)
    }

    fn poll(&mut self, reader: u64, max: u32) -> Result<Vec<Event>, Error> {
        let interval = self.interval;
        self.next_id += 1;
        let id = format!("e{}", self.next_id);
        let reader = self.readers.get_mut(&reader).ok_or_else(|| Error::NotFound(format!("reader {reader}")))?;
        if max > 0 && !reader.retry.is_empty() {
            let count = reader.retry.len().min(max as usize);
            let again: Vec<Event> = reader.retry.drain(..count).collect();
            for event in &again {
                reader.waiting.insert(event.id.clone(), event.clone());
            }
            return Ok(again);
        }
        if max == 0 || Instant::now() < reader.next_due {
            return Ok(Vec::new());
        }
        reader.next_due = Instant::now() + interval;
        let event = Event { id: id.clone(), data: b"tick".to_vec(), metadata: Vec::new(), content_type: None };
        reader.waiting.insert(id, event.clone());
        Ok(vec![event])
    }

    fn answer(&mut self, reader: u64, event_id: String, reply: Result<Vec<u8>, String>) -> Result<(), Error> {
        let reader = self.readers.get_mut(&reader).ok_or_else(|| Error::NotFound(format!("reader {reader}")))?;
        let event = reader.waiting.remove(&event_id).ok_or_else(|| Error::NotFound(format!("event `{event_id}`")))?;
        if reply.is_err() {
            reader.retry.push(event);
        }
        Ok(())
    }

    fn close(&mut self, reader: u64) {
        self.readers.remove(&reader);
    }
}

// The WASM component (a wasm32 build exports the plughost world; elsewhere a no-op).
plughost_component::export_input_binding!({{camel_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut binding = {{camel_name}}::init(vec![("intervalMs".to_owned(), "0".to_owned())]).unwrap();
        let reader = binding.open().unwrap();
        let events = binding.poll(reader, 10).unwrap();
        assert_eq!(events.len(), 1);
        binding.answer(reader, events[0].id.clone(), Err("handler failed".to_owned())).unwrap();
        let again = binding.poll(reader, 10).unwrap();
        assert_eq!(again[0].id, events[0].id, "a failed event comes back");
        binding.answer(reader, again[0].id.clone(), Ok(Vec::new())).unwrap();
        assert!(binding.answer(reader, again[0].id.clone(), Ok(Vec::new())).is_err(), "answered once");
    }
}
