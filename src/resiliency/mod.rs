//! Dapr resiliency policies (`kind: Resiliency` documents in the components
//! folder) applied to the outbound calls of every component, whatever its
//! mode: the host wraps each instance in a decorator ([`wrap`]) before it
//! goes into the registry, so the sidecar API and embedders alike get it.
//!
//! ```yaml
//! apiVersion: dapr.io/v1alpha1
//! kind: Resiliency
//! metadata: { name: myresiliency }
//! spec:
//!   policies:
//!     timeouts: { fast: 2s }
//!     retries: { three: { policy: constant, duration: 200ms, maxRetries: 3 } }
//!     circuitBreakers: { cb: { maxRequests: 1, timeout: 30s, trip: consecutiveFailures > 5 } }
//!   targets:
//!     components:
//!       statestore: { outbound: { timeout: fast, retry: three, circuitBreaker: cb } }
//! ```
//!
//! * **Which calls**: state `get`/`set`/`delete`/bulk/`transact`, pub/sub
//!   `publish`/`bulk_publish`, output binding `invoke`, secret `get`/
//!   `bulk_get`. Not `init` (it has `initTimeout`), `ping`, `features`,
//!   `close`, nor the streams (`subscribe`, input binding `read`): a stream is
//!   not one call to repeat, and gRPC streams already reconnect themselves.
//! * **Order** (as in Dapr): retry outermost, then the breaker, then the
//!   timeout of each attempt.
//! * **What is retried**: transient errors only
//!   ([`ComponentError::is_transient`](crate::kinds::ComponentError::is_transient)),
//!   further narrowed by `matching`; never an ETag conflict, a bulk partial
//!   failure or an open breaker.
//! * **Which policy**: a component named under `targets.components` uses
//!   that entry only; any other component takes, separately for timeout,
//!   retry and breaker, the first policy defined among
//!   `Default<Type>ComponentOutbound<Kind>Policy`,
//!   `DefaultComponentOutbound<Kind>Policy`, `DefaultComponent<Kind>Policy`,
//!   `Default<Kind>Policy` (`<Type>`: `Statestore`, `Pubsub`, `Binding`,
//!   `Secretstore`; `<Kind>`: `Timeout`, `Retry`, `CircuitBreaker`).
//!   Without any of those a component has no policy: Dapr's built-in retries
//!   (`DaprBuiltInServiceRetries`, ...) cover service invocation and actors,
//!   never component calls.

mod breaker;
mod parse;
mod policy;
mod wrap;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::{Breaker, BreakerPolicy, Comparison, Counter, Trip};
pub(crate) use parse::parse_document;
pub use policy::{Backoff, Policy, RetryPolicy};

use crate::component::Instance;
use crate::config::{ConfigError, ConfigErrors, Document, Origin};
use crate::kinds::ComponentKind;

/// Every policy and component target read from the configuration. Several
/// documents merge: a later policy or target of the same name replaces the
/// earlier one.
#[derive(Debug, Clone, Default)]
pub struct Resiliency {
    timeouts: BTreeMap<String, Duration>,
    retries: BTreeMap<String, RetryPolicy>,
    breakers: BTreeMap<String, BreakerPolicy>,
    components: BTreeMap<String, Target>,
}

/// A policy name as a target references it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub name: String,
    pub origin: Origin,
}

/// The policies one direction of a target names.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyNames {
    pub timeout: Option<Named>,
    pub retry: Option<Named>,
    pub circuit_breaker: Option<Named>,
}

/// `targets.components.<name>`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub outbound: PolicyNames,
    /// Component → app deliveries: parsed and checked, not applied yet.
    pub inbound: PolicyNames,
    pub origin: Origin,
}

impl Resiliency {
    /// Whether no document defined anything.
    pub fn is_empty(&self) -> bool {
        self.timeouts.is_empty() && self.retries.is_empty() && self.breakers.is_empty() && self.components.is_empty()
    }

    /// Reads the `kind: Resiliency` documents of a YAML text (other kinds are
    /// skipped); `path` names it in errors.
    pub fn from_yaml(path: &std::path::Path, text: &str) -> Result<Self, ConfigErrors> {
        let mut resiliency = Resiliency::default();
        for document in crate::config::parse_documents(path, text).map_err(ConfigErrors)? {
            if let Document::Resiliency(found) = document {
                resiliency.merge(found);
            }
        }
        let errors = resiliency.check_references();
        if errors.is_empty() { Ok(resiliency) } else { Err(ConfigErrors(errors)) }
    }

    /// Adds `other`'s policies and targets, replacing same-named ones.
    pub fn merge(&mut self, other: Resiliency) {
        self.timeouts.extend(other.timeouts);
        self.retries.extend(other.retries);
        self.breakers.extend(other.breakers);
        self.components.extend(other.components);
    }

    /// Every target reference to a policy that no document defines, as an
    /// error at the reference (Dapr silently applies nothing instead).
    pub fn check_references(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (component, target) in &self.components {
            for (direction, names) in [("outbound", &target.outbound), ("inbound", &target.inbound)] {
                let checks = [
                    ("timeout", &names.timeout, self.timeouts.contains_key(name_of(&names.timeout))),
                    ("retry", &names.retry, self.retries.contains_key(name_of(&names.retry))),
                    (
                        "circuit breaker",
                        &names.circuit_breaker,
                        self.breakers.contains_key(name_of(&names.circuit_breaker)),
                    ),
                ];
                for (what, named, defined) in checks {
                    let Some(Named { name, origin }) = named else { continue };
                    if !defined {
                        let (path, line) = match origin {
                            Origin::File { path, line } => (path.clone(), Some(*line)),
                            _ => (Default::default(), None),
                        };
                        errors.push(ConfigError {
                            path,
                            line,
                            reason: format!(
                                "resiliency target `{component}` ({direction}) uses {what} policy `{name}`, which no \
                                 Resiliency document defines"
                            ),
                        });
                    }
                }
            }
        }
        errors
    }

    /// Components named by targets that are not in `configured`, with where
    /// they are named (worth a warning: probably a typo).
    pub fn unknown_targets<'a>(&'a self, configured: &[&str]) -> Vec<(&'a str, &'a Origin)> {
        self.components
            .iter()
            .filter(|(name, _)| !configured.contains(&name.as_str()))
            .map(|(name, target)| (name.as_str(), &target.origin))
            .collect()
    }

    /// The outbound policy of component `name`, whose kind is `kind` (the
    /// first kind, for a binding that is both input and output).
    pub fn outbound(&self, name: &str, kind: ComponentKind) -> Policy {
        let (timeout, retry, breaker) = match self.components.get(name) {
            Some(target) => {
                // Every name was checked at load time (check_references).
                let names = &target.outbound;
                (
                    self.timeouts.get(name_of(&names.timeout)).copied(),
                    self.retries.get(name_of(&names.retry)).cloned(),
                    self.breakers.get_key_value(name_of(&names.circuit_breaker)),
                )
            }
            None => {
                let kind_name = match kind {
                    ComponentKind::State => "Statestore",
                    ComponentKind::PubSub => "Pubsub",
                    ComponentKind::InputBinding | ComponentKind::OutputBinding => "Binding",
                    ComponentKind::SecretStore => "Secretstore",
                };
                let defaults = |policy: &str| {
                    [
                        format!("Default{kind_name}ComponentOutbound{policy}Policy"),
                        format!("DefaultComponentOutbound{policy}Policy"),
                        format!("DefaultComponent{policy}Policy"),
                        format!("Default{policy}Policy"),
                    ]
                };
                let timeout = defaults("Timeout").into_iter().find_map(|n| self.timeouts.get(&n).copied());
                let retry = defaults("Retry").into_iter().find_map(|n| self.retries.get(&n).cloned());
                let breaker = defaults("CircuitBreaker").into_iter().find_map(|n| self.breakers.get_key_value(&n));
                (timeout, retry, breaker)
            }
        };
        Policy {
            component: name.to_owned(),
            timeout,
            retry,
            breaker: breaker.map(|(policy_name, b)| Arc::new(Breaker::new(policy_name, name, b.clone()))),
        }
    }

    /// `instance` (component `name`) wrapped in its outbound policy, or
    /// unchanged if it has none.
    pub fn wrap(&self, name: &str, instance: Instance) -> Instance {
        let Some(kind) = instance.kinds().first().copied() else { return instance };
        let policy = self.outbound(name, kind);
        if policy.is_empty() {
            return instance;
        }
        tracing::info!(
            component = name,
            timeout = ?policy.timeout,
            retry = ?policy.retry.as_ref().map(|r| r.backoff),
            circuit_breaker = policy.breaker.is_some(),
            "resiliency policy applied to outbound calls"
        );
        wrap::wrap(Arc::new(policy), instance)
    }
}

/// The policy name referenced, or `""` (which names no policy).
fn name_of(named: &Option<Named>) -> &str {
    named.as_ref().map_or("", |n| n.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resiliency(body: &str) -> Resiliency {
        let text = format!("apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {{name: r}}\nspec:\n{body}");
        Resiliency::from_yaml(std::path::Path::new("r.yaml"), &text).unwrap()
    }

    #[test]
    fn defaults_apply_to_components_without_a_target_most_specific_first() {
        let r = resiliency(
            "  policies:\n    timeouts: { DefaultTimeoutPolicy: 9s, DefaultComponentOutboundTimeoutPolicy: 3s }\n    \
             retries:\n      DefaultStatestoreComponentOutboundRetryPolicy: { duration: 1s }\n      \
             DefaultRetryPolicy: { duration: 2s }\n  targets:\n    components:\n      pinned: { outbound: { timeout: DefaultTimeoutPolicy } }\n",
        );
        let state = r.outbound("orders", ComponentKind::State);
        assert_eq!(state.timeout, Some(Duration::from_secs(3)));
        assert_eq!(state.retry.unwrap().backoff, Backoff::Constant(Duration::from_secs(1)));
        let pubsub = r.outbound("events", ComponentKind::PubSub);
        assert_eq!(pubsub.retry.unwrap().backoff, Backoff::Constant(Duration::from_secs(2)));
        assert!(pubsub.breaker.is_none());
        // A named target uses only its own entry: no default retry.
        let pinned = r.outbound("pinned", ComponentKind::State);
        assert_eq!(pinned.timeout, Some(Duration::from_secs(9)));
        assert!(pinned.retry.is_none());
        assert!(Resiliency::default().outbound("x", ComponentKind::State).is_empty());
    }

    #[test]
    fn later_documents_replace_same_named_policies_and_references_may_cross_documents() {
        let text = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: a}\nspec:\n  policies:\n    \
                    timeouts: { t: 1s }\n  targets:\n    components:\n      c: { outbound: { timeout: t, retry: r } }\n\
                    ---\napiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: b}\nspec:\n  policies:\n    \
                    timeouts: { t: 2s }\n    retries: { r: {} }\n";
        let r = Resiliency::from_yaml(std::path::Path::new("r.yaml"), text).unwrap();
        assert_eq!(r.outbound("c", ComponentKind::State).timeout, Some(Duration::from_secs(2)));
        let missing = Resiliency::from_yaml(std::path::Path::new("r.yaml"), &text[..text.find("---").unwrap()]);
        let errors = missing.unwrap_err().0;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(9));
        assert!(errors[0].reason.contains("retry policy `r`"), "{}", errors[0]);
    }
}
