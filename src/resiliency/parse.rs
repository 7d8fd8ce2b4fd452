//! Reading one `kind: Resiliency` document. Every problem is an error naming
//! the line; unknown fields are refused (a typo such as `maxRetry` would
//! otherwise silently mean "retry forever").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::breaker::{BreakerPolicy, Trip};
use super::policy::{Backoff, RetryPolicy};
use super::{Named, PolicyNames, Resiliency, Target};
use crate::config::Origin;

type DocResult<T> = Result<T, (usize, String)>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDocument {
    api_version: Option<String>,
    #[allow(dead_code)]
    kind: String,
    #[allow(dead_code)]
    metadata: Option<Value>,
    /// Accepted and ignored, as for components: plughost serves one app.
    #[allow(dead_code)]
    scopes: Option<Value>,
    spec: Option<RawSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    policies: RawPolicies,
    #[serde(default)]
    targets: RawTargets,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicies {
    #[serde(default)]
    timeouts: BTreeMap<String, Value>,
    #[serde(default)]
    retries: BTreeMap<String, RawRetry>,
    #[serde(default)]
    circuit_breakers: BTreeMap<String, RawBreaker>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRetry {
    policy: Option<String>,
    duration: Option<Value>,
    max_interval: Option<Value>,
    max_retries: Option<Value>,
    matching: Option<RawMatching>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatching {
    #[serde(rename = "httpStatusCodes")]
    http: Option<String>,
    #[serde(rename = "gRPCStatusCodes")]
    grpc: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBreaker {
    max_requests: Option<Value>,
    interval: Option<Value>,
    timeout: Option<Value>,
    trip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    apps: Option<Value>,
    actors: Option<Value>,
    #[serde(default)]
    components: BTreeMap<String, RawComponentTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponentTarget {
    inbound: Option<RawNames>,
    outbound: Option<RawNames>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawNames {
    timeout: Option<String>,
    retry: Option<String>,
    circuit_breaker: Option<String>,
}

/// Parses the document `doc`, which starts at line `first_line` of `path`.
pub(crate) fn parse_document(path: &Path, doc: &str, first_line: usize) -> DocResult<Resiliency> {
    let raw: RawDocument = serde_yaml::from_str(doc).map_err(|e| {
        let line = e.location().map_or(first_line, |l| first_line + l.line() - 1);
        (line, format!("resiliency: {e}"))
    })?;
    let at = |keys: &[&str]| line_of_path(doc, first_line, keys);
    match raw.api_version.as_deref() {
        Some("dapr.io/v1alpha1") => {}
        Some(other) => {
            return Err((at(&["apiVersion"]), format!("apiVersion `{other}` is not supported; use dapr.io/v1alpha1")));
        }
        None => return Err((first_line, "missing `apiVersion: dapr.io/v1alpha1`".into())),
    }
    let spec = raw.spec.ok_or((first_line, "resiliency document has no `spec`".to_owned()))?;
    let mut resiliency = Resiliency::default();

    for (name, value) in spec.policies.timeouts {
        let line = at(&["timeouts", name.as_str()]);
        let timeout = duration(&value).map_err(|e| (line, format!("timeout policy `{name}`: {e}")))?;
        resiliency.timeouts.insert(name, timeout);
    }
    for (name, raw) in spec.policies.retries {
        let policy = retry(&raw)
            .map_err(|(key, e)| (at(&["retries", name.as_str(), key]), format!("retry policy `{name}`: {e}")))?;
        resiliency.retries.insert(name, policy);
    }
    for (name, raw) in spec.policies.circuit_breakers {
        let policy = breaker(&raw).map_err(|(key, e)| {
            (at(&["circuitBreakers", name.as_str(), key]), format!("circuit breaker `{name}`: {e}"))
        })?;
        resiliency.breakers.insert(name, policy);
    }

    for (what, given) in [("apps", spec.targets.apps.is_some()), ("actors", spec.targets.actors.is_some())] {
        if given {
            tracing::warn!(
                "{}:{}: resiliency targets.{what} ignored: plughost applies policies to components only",
                path.display(),
                at(&["targets", what])
            );
        }
    }
    for (component, raw) in spec.targets.components {
        let origin = |keys: &[&str]| {
            let mut full = vec!["targets", "components", component.as_str()];
            full.extend_from_slice(keys);
            Origin::File { path: path.to_owned(), line: at(&full) }
        };
        let names = |direction: &str, raw: Option<RawNames>| {
            let named = |key: &str, name: Option<String>| {
                name.filter(|n| !n.is_empty()).map(|name| Named { origin: origin(&[direction, key]), name })
            };
            raw.map(|r| PolicyNames {
                timeout: named("timeout", r.timeout),
                retry: named("retry", r.retry),
                circuit_breaker: named("circuitBreaker", r.circuit_breaker),
            })
            .unwrap_or_default()
        };
        let target = Target {
            outbound: names("outbound", raw.outbound),
            inbound: names("inbound", raw.inbound),
            origin: origin(&[]),
        };
        resiliency.components.insert(component, target);
    }
    Ok(resiliency)
}

fn retry(raw: &RawRetry) -> Result<RetryPolicy, (&'static str, String)> {
    let optional = |key: &'static str, value: &Option<Value>, default: Duration| match value {
        None => Ok(default),
        Some(v) => duration(v).map_err(|e| (key, format!("{key}: {e}"))),
    };
    let backoff = match raw.policy.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "constant") => Backoff::Constant(optional("duration", &raw.duration, Duration::from_secs(5))?),
        Some("exponential") => {
            Backoff::Exponential { max_interval: optional("maxInterval", &raw.max_interval, Duration::from_secs(60))? }
        }
        Some(_) => {
            let given = raw.policy.as_deref().unwrap_or_default();
            return Err(("policy", format!("policy `{given}` is neither `constant` nor `exponential`")));
        }
    };
    let max_retries = match raw.max_retries.as_ref().map(integer) {
        None => None,
        Some(Some(-1)) => None,
        Some(Some(n)) if n >= 0 => Some(n as u64),
        Some(_) => return Err(("maxRetries", "maxRetries must be -1 (forever), 0 or a positive number".into())),
    };
    let codes = |list: Option<&String>, key: &'static str, low: u16, high: u16| {
        code_ranges(list.map_or("", String::as_str), low, high).map_err(|e| (key, e))
    };
    let matching = raw.matching.as_ref();
    Ok(RetryPolicy {
        backoff,
        max_retries,
        grpc_codes: codes(matching.and_then(|m| m.grpc.as_ref()), "gRPCStatusCodes", 0, 16)?,
        http_codes: codes(matching.and_then(|m| m.http.as_ref()), "httpStatusCodes", 100, 599)?,
    })
}

fn breaker(raw: &RawBreaker) -> Result<BreakerPolicy, (&'static str, String)> {
    let defaults = BreakerPolicy::default();
    let optional = |key: &'static str, value: &Option<Value>, default: Duration| match value {
        None => Ok(default),
        Some(v) => duration(v).map_err(|e| (key, format!("{key}: {e}"))),
    };
    let max_requests = match raw.max_requests.as_ref().map(integer) {
        None | Some(Some(0)) => defaults.max_requests,
        Some(Some(n)) if n > 0 => n as u64,
        Some(_) => return Err(("maxRequests", "maxRequests must be a positive number".into())),
    };
    let timeout = optional("timeout", &raw.timeout, defaults.timeout)?;
    Ok(BreakerPolicy {
        max_requests,
        interval: optional("interval", &raw.interval, defaults.interval)?,
        // gobreaker: a zero timeout means its default.
        timeout: if timeout.is_zero() { defaults.timeout } else { timeout },
        trip: match raw.trip.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => defaults.trip,
            Some(text) => Trip::parse(text).map_err(|e| ("trip", e))?,
        },
    })
}

/// A duration as Dapr reads one: a Go duration (`1m30s`) or a bare integer
/// of milliseconds (`1500`, quoted or not).
fn duration(value: &Value) -> Result<Duration, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err("expected a duration such as 500ms, 5s or 1m30s".into()),
    };
    crate::units::parse_duration_or_millis(&text).map_err(|e| e.to_string())
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `"429,500-599"` → `[(429, 429), (500, 599)]`, each within `low..=high`.
fn code_ranges(list: &str, low: u16, high: u16) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (low..=high).contains(c));
        match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a <= b => ranges.push((a, b)),
            _ => return Err(format!("`{part}` in `{list}` is not a code or range of codes within {low}-{high}")),
        }
    }
    Ok(ranges)
}

/// The 1-based file line where the nested `keys` are set (searching each key
/// after the previous one, block or flow style); the deepest one found.
fn line_of_path(doc: &str, first_line: usize, keys: &[&str]) -> usize {
    let lines: Vec<&str> = doc.lines().collect();
    let mut from = 0;
    let mut found = 0;
    for key in keys {
        match (from..lines.len()).find(|&i| sets_key(lines[i], key)) {
            Some(i) => {
                found = i;
                from = i;
            }
            None => break,
        }
    }
    first_line + found
}

fn sets_key(line: &str, key: &str) -> bool {
    [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|pattern| {
        line.match_indices(pattern.as_str()).any(|(i, _)| {
            let before = line[..i].trim_end();
            before.is_empty() || before.ends_with('{') || before.ends_with(',') || before.ends_with('-')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DocResult<Resiliency> {
        parse_document(Path::new("r.yaml"), text, 10)
    }

    const HEAD: &str = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n";

    #[test]
    fn reads_dapr_defaults_and_syntax() {
        let text = format!(
            "{HEAD}  policies:\n    timeouts:\n      fast: 2s\n      legacy: \"1500\"\n      bare: 250\n    retries:\n      \
             five: {{ policy: constant, duration: 1s, maxRetries: 5, matching: {{ gRPCStatusCodes: \"4,13-14\" }} }}\n      \
             grow:\n        policy: Exponential\n        maxInterval: 15s\n      plain: {{}}\n    circuitBreakers:\n      \
             cb: {{ maxRequests: 2, interval: 10s, timeout: 30s, trip: consecutiveFailures >= 3 }}\n      dflt: {{}}\n  \
             targets:\n    components:\n      statestore:\n        outbound:\n          timeout: fast\n          retry: five\n"
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.timeouts["fast"], Duration::from_secs(2));
        assert_eq!(r.timeouts["legacy"], Duration::from_millis(1500));
        assert_eq!(r.timeouts["bare"], Duration::from_millis(250));
        assert_eq!(r.retries["five"].max_retries, Some(5));
        assert_eq!(r.retries["five"].grpc_codes, vec![(4, 4), (13, 14)]);
        assert_eq!(r.retries["grow"].backoff, Backoff::Exponential { max_interval: Duration::from_secs(15) });
        assert_eq!(r.retries["grow"].max_retries, None, "Dapr's default: forever");
        assert_eq!(r.retries["plain"].backoff, Backoff::Constant(Duration::from_secs(5)));
        assert_eq!(r.breakers["cb"].max_requests, 2);
        assert_eq!(r.breakers["dflt"], BreakerPolicy::default());
        let target = &r.components["statestore"];
        assert_eq!(target.outbound.retry.as_ref().unwrap().name, "five");
        assert_eq!(target.outbound.retry.as_ref().unwrap().origin, Origin::File { path: "r.yaml".into(), line: 34 });
        assert!(target.outbound.circuit_breaker.is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("  policies:\n    timeouts:\n      a: 1s\n      fast: soon\n", 18, "`soon` is not a duration"),
            ("  policies:\n    retries:\n      r:\n        maxRetries: -2\n", 18, "maxRetries"),
            ("  policies:\n    retries:\n      r:\n        policy: linear\n", 18, "linear"),
            ("  policies:\n    retries:\n      r:\n        maxRetry: 3\n", 18, "unknown field `maxRetry`"),
            ("  policies:\n    circuitBreakers:\n      cb:\n        trip: failures > 3\n", 18, "not supported"),
            ("  policies:\n    retries:\n      r: { matching: { httpStatusCodes: \"700\" } }\n", 17, "700"),
        ];
        for (body, line, reason) in cases {
            let (at, message) = parse(&format!("{HEAD}{body}")).expect_err(body);
            assert_eq!(at, line, "{body}: {message}");
            assert!(message.contains(reason), "{message}");
        }
    }
}
