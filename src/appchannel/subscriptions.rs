//! Subscriptions pushed to the app: where they come from (programmatic,
//! protocol spec C2; declarative `kind: Subscription` documents, C4), how a
//! message finds its route (CEL `match` rules, then the default), and the
//! loop that delivers a subscription's messages with daprd's response
//! semantics (C3).
//!
//! One loop per subscription, each with its own bound on messages in flight
//! ([`IN_FLIGHT`]), so a slow route never holds up another subscription.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{App, Verdict};
use crate::api::cloudevents;
use crate::api::sidecar::{Subscription, SubscriptionType};
use crate::kinds::pubsub::Message;
use crate::kinds::{Delivery, Metadata};
use crate::metrics::PubSubCounters;
use crate::proto::runtime as rt;

/// Messages one subscription may have at the app at once.
const IN_FLIGHT: usize = 32;
/// How long a message the app failed stays held before it is nacked (the
/// broker redelivers it at once), so a failing app is not called in a tight
/// loop.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Pause before subscribing again after the broker refused or ended a
/// subscription.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(1);

/// One routing rule: a CEL expression (none: always matches) and a path.
#[derive(Clone)]
pub struct Rule {
    /// The expression as written (empty for the default route).
    pub text: String,
    program: Option<Arc<cel::Program>>,
    /// The app's route.
    pub path: String,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("match", &self.text).field("path", &self.path).finish()
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        (&self.text, &self.path) == (&other.text, &other.path)
    }
}

/// A subscription the sidecar delivers to the app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSubscription {
    /// The pub/sub component.
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// Subscribe metadata (`rawPayload`, `consumerID`, ...).
    pub metadata: Metadata,
    /// The rules in order, the default route last (as a rule without match).
    pub rules: Vec<Rule>,
    /// Where dropped and failed messages go, if set.
    pub dead_letter_topic: String,
    /// Programmatic or declarative.
    pub kind: SubscriptionType,
}

/// A subscription as the app or a document describes it: the JSON of
/// `GET /dapr/subscribe`, the `spec` of a `kind: Subscription` document, or
/// a gRPC `TopicSubscription`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Programmatic {
    #[serde(default)]
    pubsubname: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    routes: Routes,
    #[serde(default)]
    dead_letter_topic: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    bulk_subscribe: Option<BulkSubscribe>,
    /// gRPC leaves `routes` out for "one rule, empty path" (the path only
    /// travels in the request there).
    #[serde(skip)]
    empty_route_ok: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Routes {
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    default: String,
}

#[derive(Debug, Default, Deserialize)]
struct RuleSpec {
    #[serde(default, rename = "match")]
    expression: String,
    #[serde(default)]
    path: String,
}

#[derive(Debug, Default, Deserialize)]
struct BulkSubscribe {
    #[serde(default)]
    enabled: bool,
}

impl From<rt::TopicSubscription> for Programmatic {
    fn from(s: rt::TopicSubscription) -> Self {
        let routes = s.routes.unwrap_or_default();
        Self {
            pubsubname: s.pubsub_name,
            topic: s.topic,
            route: String::new(),
            routes: Routes {
                rules: routes.rules.into_iter().map(|r| RuleSpec { expression: r.r#match, path: r.path }).collect(),
                default: routes.default,
            },
            dead_letter_topic: s.dead_letter_topic,
            metadata: s.metadata.into_iter().collect(),
            bulk_subscribe: s.bulk_subscribe.map(|b| BulkSubscribe { enabled: b.enabled }),
            empty_route_ok: true,
        }
    }
}

/// `expression` compiled, or why not.
fn compile(expression: &str) -> Result<Option<Arc<cel::Program>>, String> {
    if expression.trim().is_empty() {
        return Ok(None);
    }
    cel::Program::compile(expression).map(|p| Some(Arc::new(p))).map_err(|e| format!("match `{expression}`: {e}"))
}

impl Programmatic {
    /// The subscription, or `None` (logged, naming `origin`) if it is
    /// unusable: no pub/sub or topic, no route, a rule that does not compile.
    pub(crate) fn into_subscription(self, origin: &str) -> Option<AppSubscription> {
        self.into_kind(SubscriptionType::Programmatic).map_err(|e| tracing::warn!("{origin}: {e}; ignored")).ok()
    }

    fn into_kind(self, kind: SubscriptionType) -> Result<AppSubscription, String> {
        if self.pubsubname.is_empty() || self.topic.is_empty() {
            return Err(format!("subscription without pubsubname or topic ({:?} / {:?})", self.pubsubname, self.topic));
        }
        let name = format!("subscription to {}/{}", self.pubsubname, self.topic);
        if self.bulk_subscribe.is_some_and(|b| b.enabled) {
            tracing::warn!("{name}: bulkSubscribe is not supported by plughost; messages are delivered one by one");
        }
        let mut rules = Vec::new();
        for rule in self.routes.rules {
            rules.push(Rule {
                program: compile(&rule.expression).map_err(|e| format!("{name}: {e}"))?,
                text: rule.expression,
                path: rule.path,
            });
        }
        // `routes.default` if set, else the v1 `route`.
        let default = if self.routes.default.is_empty() { self.route } else { self.routes.default };
        if !default.is_empty() || (rules.is_empty() && self.empty_route_ok) {
            rules.push(Rule { text: String::new(), program: None, path: default });
        }
        if rules.is_empty() {
            return Err(format!("{name} has no route"));
        }
        Ok(AppSubscription {
            pubsub: self.pubsubname,
            topic: self.topic,
            metadata: self.metadata,
            rules,
            dead_letter_topic: self.dead_letter_topic,
            kind,
        })
    }
}

/// A `kind: Subscription` document (`dapr.io/v1alpha1` or `v2alpha1`).
#[derive(Deserialize)]
struct Document {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Option<DocumentName>,
    #[serde(default)]
    spec: Option<serde_yaml::Value>,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct DocumentName {
    #[serde(default)]
    name: String,
}

/// The declarative subscriptions in the `*.yaml` / `*.yml` files of `dir`
/// (file order, then document order) that apply to `app_id` (no `scopes`,
/// or `scopes` naming it). Every unusable document is one error naming its
/// file and subscription.
pub fn load_dir(dir: &Path, app_id: &str) -> Result<Vec<AppSubscription>, Vec<String>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => return Err(vec![format!("{}: {e}", dir.display())]),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for document in serde_yaml::Deserializer::from_str(&text) {
            // Syntax errors are the component loader's to report.
            let Ok(document) = Document::deserialize(document) else { continue };
            if document.kind != "Subscription" {
                continue;
            }
            let name = document.metadata.map(|m| m.name).unwrap_or_default();
            let at = format!("{}: subscription `{name}`", file.display());
            if !matches!(document.api_version.as_str(), "dapr.io/v1alpha1" | "dapr.io/v2alpha1") {
                errors.push(format!(
                    "{at}: apiVersion `{}` (expected dapr.io/v1alpha1 or dapr.io/v2alpha1)",
                    document.api_version
                ));
                continue;
            }
            if !document.scopes.is_empty() && !document.scopes.iter().any(|s| s == app_id) {
                tracing::debug!("{at} is scoped to {:?}, not to {app_id}", document.scopes);
                continue;
            }
            let spec = document.spec.unwrap_or(serde_yaml::Value::Null);
            let parsed = serde_yaml::from_value::<Programmatic>(spec).map_err(|e| e.to_string());
            match parsed.and_then(|p| p.into_kind(SubscriptionType::Declarative)) {
                Ok(subscription) => found.push(subscription),
                Err(e) => errors.push(format!("{at}: {e}")),
            }
        }
    }
    if errors.is_empty() { Ok(found) } else { Err(errors) }
}

/// One subscription per pub/sub and topic: the app's own replace declared
/// ones (as daprd); otherwise the first one wins.
pub(super) fn merge(declared: Vec<AppSubscription>, programmatic: Vec<AppSubscription>) -> Vec<AppSubscription> {
    let mut seen = BTreeSet::new();
    let mut merged = Vec::new();
    for subscription in programmatic.into_iter().chain(declared) {
        if seen.insert((subscription.pubsub.clone(), subscription.topic.clone())) {
            merged.push(subscription);
        } else {
            tracing::debug!(pubsub = %subscription.pubsub, topic = %subscription.topic, "a second subscription to the same topic is ignored");
        }
    }
    merged
}

/// The path of the first rule `event` matches; `None` if none does.
fn route<'a>(rules: &'a [Rule], event: &Value) -> Result<Option<&'a str>, String> {
    let mut context: Option<cel::Context> = None;
    for rule in rules {
        let Some(program) = &rule.program else { return Ok(Some(&rule.path)) };
        if context.is_none() {
            let mut fresh = cel::Context::default();
            let event = cel::to_value(event).map_err(|e| format!("the event as CEL: {e}"))?;
            fresh.add_variable_from_value("event", event);
            context = Some(fresh);
        }
        match program.execute(context.as_ref().expect("set above")) {
            Ok(cel::Value::Bool(true)) => return Ok(Some(&rule.path)),
            Ok(cel::Value::Bool(false)) => {}
            Ok(other) => return Err(format!("match `{}` gave {other:?}, not a boolean", rule.text)),
            Err(e) => return Err(format!("match `{}`: {e}", rule.text)),
        }
    }
    Ok(None)
}

/// The CloudEvent the app receives: the broker's bytes if they are one;
/// with `rawPayload` (or bytes that are no CloudEvent), an event made up
/// around them, as daprd makes for raw subscriptions.
fn envelope(message: &Message, pubsub: &str, raw: bool) -> Vec<u8> {
    if !raw && cloudevents::parse(&message.data).is_some() {
        return message.data.clone();
    }
    let event = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "specversion": "1.0",
        "datacontenttype": "application/octet-stream",
        "source": "Dapr",
        "type": "com.dapr.event.sent",
        "topic": message.topic,
        "pubsubname": pubsub,
        "data_base64": base64::engine::general_purpose::STANDARD.encode(&message.data),
    });
    event.to_string().into_bytes()
}

/// Delivers `subscription` until the sidecar stops.
pub(super) async fn run(app: Arc<App>, subscription: AppSubscription) {
    let sidecar = app.sidecar.clone();
    // Listed in the metadata API once the broker has taken the subscription.
    let mut listed = None;
    let subscription = Arc::new(subscription);
    let name = format!("{}/{}", subscription.pubsub, subscription.topic);
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let counters = Arc::new(crate::metrics::global().pubsub_counters(&subscription.pubsub, "app"));
    loop {
        let subscribed = sidecar.subscribe(&subscription.pubsub, &subscription.topic, subscription.metadata.clone());
        let mut deliveries = match subscribed.await {
            Ok(deliveries) => deliveries,
            Err(e) => {
                tracing::error!("cannot subscribe the app to {name}: {}", e.message);
                tokio::select! {
                    () = tokio::time::sleep(RESUBSCRIBE_PAUSE) => continue,
                    () = sidecar.stopping() => return,
                }
            }
        };
        listed.get_or_insert_with(|| {
            sidecar.track(Subscription {
                pubsub: subscription.pubsub.clone(),
                topic: subscription.topic.clone(),
                metadata: subscription.metadata.clone(),
                dead_letter_topic: subscription.dead_letter_topic.clone(),
                kind: subscription.kind,
            })
        });
        tracing::info!(kind = ?subscription.kind, routes = ?subscription.rules, "app subscribed to {name}");
        loop {
            // Take a message only while the app is healthy and has room.
            tokio::select! {
                () = app.healthy() => {}
                () = sidecar.stopping() => return,
            }
            let permit = tokio::select! {
                permit = in_flight.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = sidecar.stopping() => return,
            };
            let delivery = tokio::select! {
                biased; // a stop or an unhealthy app first: no new message then
                () = sidecar.stopping() => return,
                () = app.unhealthy() => continue,
                delivery = deliveries.next() => delivery,
            };
            let Some(delivery) = delivery else {
                tracing::warn!("the pub/sub component ended the subscription to {name}; subscribing again");
                break;
            };
            let (app, subscription, counters) = (app.clone(), subscription.clone(), counters.clone());
            tokio::spawn(async move {
                deliver(&app, &subscription, delivery, &counters).await;
                drop(permit);
            });
        }
        tokio::select! {
            () = tokio::time::sleep(RESUBSCRIBE_PAUSE) => {}
            () = sidecar.stopping() => return,
        }
    }
}

/// One message to the app, answered to the broker per daprd's rules.
/// `counters` count it delivered (handed to the app) and how it ended.
async fn deliver(app: &App, subscription: &AppSubscription, delivery: Delivery<Message>, counters: &PubSubCounters) {
    let envelope = envelope(&delivery.item, &subscription.pubsub, cloudevents::is_raw(&subscription.metadata));
    let event: Value = serde_json::from_slice(&envelope).unwrap_or_default();
    let verdict = match route(&subscription.rules, &event) {
        Ok(Some(path)) => {
            let mut metadata = delivery.item.metadata.clone();
            metadata.insert("pubsubname".to_owned(), subscription.pubsub.clone());
            counters.delivered.inc();
            app.deliver_event(subscription, path, &envelope, &metadata).await
        }
        Ok(None) => Verdict::Drop("no routing rule matched".to_owned()),
        Err(e) => Verdict::Retry(e),
    };
    let topic = format!("{}/{}", subscription.pubsub, subscription.topic);
    let dead_letter = &subscription.dead_letter_topic;
    match verdict {
        Verdict::Success | Verdict::Ignored => {
            counters.acked.inc();
            delivery.ack();
        }
        Verdict::Drop(reason) | Verdict::Retry(reason) if !dead_letter.is_empty() => {
            tracing::warn!("{topic}: {reason}: sent to the dead-letter topic {dead_letter}");
            let message = delivery.item.clone();
            match app.sidecar.dead_letter(&subscription.pubsub, dead_letter, message).await {
                Ok(()) => {
                    counters.dropped.inc();
                    delivery.ack();
                }
                Err(e) => {
                    counters.retried.inc();
                    tracing::warn!("{topic}: dead-lettering to {dead_letter} failed: {}", e.message);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    delivery.nack("dead-lettering failed");
                }
            }
        }
        Verdict::Drop(reason) => {
            tracing::warn!("{topic}: {reason}: message dropped");
            counters.dropped.inc();
            delivery.ack();
        }
        Verdict::Retry(reason) => {
            tracing::debug!("{topic}: {reason}: delivered again");
            counters.retried.inc();
            tokio::time::sleep(RETRY_PAUSE).await;
            delivery.nack(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: Value) -> Option<AppSubscription> {
        crate::api::lenient::from_value::<Programmatic>(json).unwrap().into_subscription("test")
    }

    fn paths(s: &AppSubscription) -> Vec<(&str, &str)> {
        s.rules.iter().map(|r| (r.text.as_str(), r.path.as_str())).collect()
    }

    #[test]
    fn routes_follow_daprd_precedence() {
        let v1 = parse(json!({"pubsubname": "ps", "topic": "t", "route": "/a"})).unwrap();
        assert_eq!(paths(&v1), [("", "/a")]);
        // `routes.default` beats `route`; rules come first, in order.
        let v2 = parse(json!({"PubsubName": "ps", "topic": "t", "route": "/ignored", "deadLetterTopic": "dlq",
            "routes": {"rules": [{"match": "event.type == \"x\"", "path": "/x"}], "default": "/d"}}))
        .unwrap();
        assert_eq!(paths(&v2), [("event.type == \"x\"", "/x"), ("", "/d")]);
        assert_eq!(v2.dead_letter_topic, "dlq");
        assert!(parse(json!({"pubsubname": "ps", "topic": "t"})).is_none(), "no route");
        assert!(parse(json!({"pubsubname": "", "topic": "t", "route": "/a"})).is_none());
        assert!(
            parse(json!({"pubsubname": "ps", "topic": "t", "routes": {"rules": [{"match": "((", "path": "/x"}]}}))
                .is_none()
        );
    }

    #[test]
    fn cel_rules_pick_the_first_match() {
        let s = parse(json!({"pubsubname": "ps", "topic": "t", "routes": {"rules": [
            {"match": "event.type == \"restock\"", "path": "/restock"},
            {"match": "event.data.n > 10", "path": "/big"},
        ]}}))
        .unwrap();
        let event = |t: &str, n: i64| json!({"type": t, "data": {"n": n}});
        assert_eq!(route(&s.rules, &event("restock", 1)), Ok(Some("/restock")));
        assert_eq!(route(&s.rules, &event("sale", 11)), Ok(Some("/big")));
        assert_eq!(route(&s.rules, &event("sale", 1)), Ok(None));
        assert!(route(&s.rules, &json!({"type": "sale"})).is_err(), "a missing field is an evaluation error");
    }

    #[test]
    fn raw_subscriptions_get_a_made_up_event() {
        let message = Message { topic: "t".into(), data: b"\x00raw".to_vec(), ..Message::default() };
        let event: Value = serde_json::from_slice(&envelope(&message, "ps", true)).unwrap();
        assert_eq!((event["data_base64"].as_str(), event["source"].as_str()), (Some("AHJhdw=="), Some("Dapr")));
        let cloudevent = br#"{"specversion":"1.0","id":"1","data":"x"}"#.to_vec();
        let message = Message { data: cloudevent.clone(), ..message };
        assert_eq!(envelope(&message, "ps", false), cloudevent, "a CloudEvent goes as it is");
    }

    #[test]
    fn declarative_documents_with_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let documents = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: ps}
spec: {type: pubsub.in-memory, version: v1, metadata: []}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: stock}
spec:
  pubsubname: ps
  topic: stock
  routes: {rules: [{match: 'event.type == "restock"', path: /restock}], default: /stock}
  deadLetterTopic: stock-dlq
scopes: [warehouse]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: orders}
spec: {pubsubname: ps, topic: orders, route: /orders}
"#;
        std::fs::write(dir.path().join("all.yaml"), documents).unwrap();
        let warehouse = load_dir(dir.path(), "warehouse").unwrap();
        assert_eq!(warehouse.iter().map(|s| s.topic.as_str()).collect::<Vec<_>>(), ["stock", "orders"]);
        assert_eq!(paths(&warehouse[0]), [("event.type == \"restock\"", "/restock"), ("", "/stock")]);
        assert_eq!(warehouse[1].kind, SubscriptionType::Declarative);
        let other = load_dir(dir.path(), "shop").unwrap();
        assert_eq!(other.iter().map(|s| s.topic.as_str()).collect::<Vec<_>>(), ["orders"]);

        std::fs::write(dir.path().join("bad.yaml"), "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: broken}\nspec: {pubsubname: ps, topic: t}\n").unwrap();
        let errors = load_dir(dir.path(), "shop").unwrap_err();
        assert!(errors[0].contains("bad.yaml: subscription `broken`") && errors[0].contains("no route"), "{errors:?}");
    }

    #[test]
    fn programmatic_replaces_declared() {
        let declared = parse(json!({"pubsubname": "ps", "topic": "t", "route": "/declared"})).unwrap();
        let own = parse(json!({"pubsubname": "ps", "topic": "t", "route": "/own"})).unwrap();
        let other = parse(json!({"pubsubname": "ps", "topic": "u", "route": "/u"})).unwrap();
        let merged = merge(vec![declared, other], vec![own]);
        assert_eq!(merged.iter().map(|s| s.rules[0].path.as_str()).collect::<Vec<_>>(), ["/own", "/u"]);
    }
}
