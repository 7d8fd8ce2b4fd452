//! `input-binding-component`: a ticker. Every reader gets one event per
//! `intervalMs` (init metadata, default 100) on the monotonic clock, counted
//! from `open`; `poll` hands out the ones that are due.

wit_bindgen::generate!({ world: "input-binding-component", path: "../../wit" });

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use exports::plughost::components::input_binding::{self, Event};
use exports::plughost::components::lifecycle;
use plughost::components::types::{Error, Metadata};

/// Init metadata: milliseconds between events.
const INTERVAL_MS: &str = "intervalMs";
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

struct Reader {
    opened: Instant,
    /// Events handed out so far.
    emitted: u64,
    /// Ids handed out and not answered yet.
    unanswered: HashSet<String>,
    answered: u64,
    failed: u64,
}

struct Ticker {
    interval: Duration,
    readers: HashMap<u64, Reader>,
    next_reader: u64,
    next_event: u64,
}

thread_local! {
    static TICKER: RefCell<Ticker> = RefCell::new(Ticker {
        interval: DEFAULT_INTERVAL,
        readers: HashMap::new(),
        next_reader: 0,
        next_event: 0,
    });
}

fn with_ticker<R>(f: impl FnOnce(&mut Ticker) -> R) -> R {
    TICKER.with(|ticker| f(&mut ticker.borrow_mut()))
}

/// Logs through the host; the `log` import exists only in the component
/// (unit tests run natively).
fn log(level: plughost::components::log::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    plughost::components::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

fn parse_interval(metadata: &Metadata) -> Result<Duration, Error> {
    let Some((_, raw)) = metadata.iter().find(|(k, _)| k == INTERVAL_MS) else {
        return Ok(DEFAULT_INTERVAL);
    };
    match raw.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => {
            Err(Error::InvalidArgument(format!("{INTERVAL_MS} must be a positive number of milliseconds, got `{raw}`")))
        }
    }
}

fn unknown(reader: u64) -> Error {
    Error::NotFound(format!("reader {reader}"))
}

struct Component;

impl lifecycle::Guest for Component {
    fn init(metadata: Metadata) -> Result<(), Error> {
        let interval = parse_interval(&metadata)?;
        with_ticker(|ticker| ticker.interval = interval);
        Ok(())
    }

    fn features() -> Vec<String> {
        Vec::new()
    }

    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

impl input_binding::Guest for Component {
    fn open() -> Result<u64, Error> {
        Ok(with_ticker(|ticker| {
            ticker.next_reader += 1;
            let reader =
                Reader { opened: Instant::now(), emitted: 0, unanswered: HashSet::new(), answered: 0, failed: 0 };
            ticker.readers.insert(ticker.next_reader, reader);
            ticker.next_reader
        }))
    }

    fn poll(reader: u64, max: u32) -> Result<Vec<Event>, Error> {
        with_ticker(|ticker| {
            let interval = ticker.interval.as_nanos();
            let state = ticker.readers.get_mut(&reader).ok_or_else(|| unknown(reader))?;
            let due = u64::try_from(state.opened.elapsed().as_nanos() / interval).unwrap_or(u64::MAX);
            // Events beyond `max` stay due for the next poll.
            let count = due.saturating_sub(state.emitted).min(u64::from(max));
            let mut events = Vec::new();
            for _ in 0..count {
                state.emitted += 1;
                ticker.next_event += 1;
                let id = ticker.next_event.to_string();
                state.unanswered.insert(id.clone());
                events.push(Event {
                    id,
                    data: format!("tick {}", state.emitted).into_bytes(),
                    metadata: Vec::new(),
                    content_type: Some("text/plain".to_owned()),
                });
            }
            Ok(events)
        })
    }

    fn answer(reader: u64, event_id: String, reply: Result<Vec<u8>, String>) -> Result<(), Error> {
        with_ticker(|ticker| {
            // A reader closed while its events were out: their answers come
            // late and change nothing.
            let Some(state) = ticker.readers.get_mut(&reader) else { return Ok(()) };
            if !state.unanswered.remove(&event_id) {
                return Err(Error::NotFound(format!(
                    "event `{event_id}` is not awaiting an answer on reader {reader}"
                )));
            }
            state.answered += 1;
            if let Err(reason) = reply {
                state.failed += 1;
                log(
                    plughost::components::log::Level::Warn,
                    &format!("event {event_id} failed ({} of {} answers): {reason}", state.failed, state.answered),
                );
            }
            Ok(())
        })
    }

    fn close(reader: u64) {
        with_ticker(|ticker| ticker.readers.remove(&reader));
    }
}

export!(Component);

#[cfg(test)]
mod tests {
    use super::*;
    use input_binding::Guest as _;
    use lifecycle::Guest as _;

    #[test]
    fn ticks_are_due_on_schedule() {
        Component::init(vec![(INTERVAL_MS.into(), "10".into())]).unwrap();
        let reader = Component::open().unwrap();
        assert!(Component::poll(reader, 10).unwrap().is_empty(), "nothing due at once");
        std::thread::sleep(Duration::from_millis(35));
        let first = Component::poll(reader, 2).unwrap();
        assert_eq!(first.len(), 2, "capped at max");
        assert_eq!(first[0].data, b"tick 1");
        let rest = Component::poll(reader, 10).unwrap();
        assert!(!rest.is_empty(), "the third is still due");
        assert_ne!(first[0].id, first[1].id);
        Component::answer(reader, first[0].id.clone(), Ok(b"handled".to_vec())).unwrap();
        Component::answer(reader, first[1].id.clone(), Err("handler failed".into())).unwrap();
        assert!(Component::answer(reader, first[1].id.clone(), Ok(Vec::new())).is_err(), "answered twice");
        Component::close(reader);
        Component::answer(reader, rest[0].id.clone(), Ok(Vec::new())).unwrap();
        assert!(matches!(Component::poll(reader, 1), Err(Error::NotFound(_))));
    }

    #[test]
    fn bad_interval() {
        assert!(matches!(Component::init(vec![(INTERVAL_MS.into(), "0".into())]), Err(Error::InvalidArgument(_))));
        assert!(Component::init(vec![(INTERVAL_MS.into(), "soon".into())]).is_err());
    }
}
