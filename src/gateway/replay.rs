//! Strict replay: the recorded answers in order, each handed out only to a request
//! whose normalized conversation is the recorded one (see [`super::normalize`]).

use serde_json::Value;

use super::fixture::{Exchange, Fixture};
use super::normalize;
use super::route::Route;
use super::stats::{Divergence, ReplayStats};

/// What the gateway answers one request with.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A recorded exchange (its `response` or `events`).
    Recorded(Exchange),
    /// An error the agent sees: HTTP status, error kind, message. Replay errors are
    /// 400: clients and SDKs do not retry it as they retry 409, 429 and 5xx.
    Error(u16, &'static str, String),
}

pub struct Replayer {
    fixture: Fixture,
    next: usize,
    pub stats: ReplayStats,
}

impl Replayer {
    pub fn new(fixture: Fixture, origin: &str, lenient: bool) -> Replayer {
        let stats = ReplayStats {
            fixture: origin.to_string(),
            turns_recorded: fixture.exchanges.len(),
            lenient,
            recorded_score: fixture.header.score,
            ..Default::default()
        };
        Replayer {
            fixture,
            next: 0,
            stats,
        }
    }

    pub fn model(&self) -> &str {
        &self.fixture.header.model
    }

    /// Answers one request. Strict: a divergent request gets an error and the turn is
    /// not used up, so every later request is compared with the same turn (a retry of
    /// the same request diverges again and is not counted twice). Lenient: the turn is
    /// served anyway and the divergence counted.
    pub fn answer(&mut self, route: Route, body: &Value) -> Answer {
        let turn = self.next + 1;
        let Some(recorded) = self.fixture.exchanges.get(self.next) else {
            self.stats.exhausted += 1;
            return Answer::Error(
                400,
                "replay_exhausted",
                format!(
                    "kiln replay: exhausted: the fixture has {} recorded turns and this is request {turn}; \
                     the agent asked for more than was recorded",
                    self.fixture.exchanges.len()
                ),
            );
        };
        let reason = match Route::parse(&recorded.route) {
            Some(r) if r != route => Some(format!(
                "route: recorded {}, got {}",
                recorded.route,
                route.as_str()
            )),
            _ => {
                let expected = normalize::conversation(route, &recorded.request);
                let mut got = normalize::conversation(route, body);
                // No API accepts a request without messages: an empty list is a turn
                // whose content was not captured (a failed call imported from a trace),
                // matched by route and model only.
                if expected.messages.is_empty() {
                    got.messages.clear();
                }
                normalize::difference(&expected, &got)
            }
        };
        if let Some(reason) = reason {
            if !self.stats.diverged.iter().any(|d| d.turn == turn) {
                self.stats.diverged.push(Divergence {
                    turn,
                    reason: reason.clone(),
                });
            }
            if !self.stats.lenient {
                return Answer::Error(
                    400,
                    "replay_diverged",
                    format!("kiln replay: diverged at turn {turn}: {reason}"),
                );
            }
        }
        self.next += 1;
        self.stats.turns_served += 1;
        Answer::Recorded(recorded.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::fixture::Header;
    use serde_json::json;

    fn request(texts: &[&str]) -> Value {
        let messages: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": t}))
            .collect();
        json!({"model": "m", "messages": messages})
    }

    fn fixture() -> Fixture {
        let ex = |texts: &[&str], answer: &str| Exchange {
            route: Route::OpenAiChat.as_str().into(),
            request: request(texts),
            status: 200,
            response: Some(
                json!({"choices": [{"message": {"role": "assistant", "content": answer}}]}),
            ),
            events: None,
        };
        Fixture {
            header: Header::new(),
            exchanges: vec![ex(&["task"], "ls"), ex(&["task", "ls", "a b"], "done")],
        }
    }

    #[test]
    fn serves_in_order_then_exhausts() {
        let mut r = Replayer::new(fixture(), "f", false);
        assert!(
            matches!(r.answer(Route::OpenAiChat, &request(&["task"])), Answer::Recorded(e) if e.response.as_ref().unwrap()["choices"][0]["message"]["content"] == "ls")
        );
        assert!(matches!(
            r.answer(Route::OpenAiChat, &request(&["task", "ls", "a b"])),
            Answer::Recorded(_)
        ));
        let third = r.answer(
            Route::OpenAiChat,
            &request(&["task", "ls", "a b", "done", "x"]),
        );
        assert!(
            matches!(third, Answer::Error(400, "replay_exhausted", ref m) if m.contains("2 recorded turns")),
            "{third:?}"
        );
        assert_eq!(r.stats.turns_served, 2);
        assert_eq!(r.stats.exhausted, 1);
        assert!(r.stats.diverged.is_empty());
    }

    #[test]
    fn strict_divergence_is_an_error_and_holds_the_turn() {
        let mut r = Replayer::new(fixture(), "f", false);
        r.answer(Route::OpenAiChat, &request(&["task"]));
        for _ in 0..2 {
            let a = r.answer(Route::OpenAiChat, &request(&["task", "ls", "a c"]));
            assert!(
                matches!(a, Answer::Error(400, "replay_diverged", ref m) if m.contains("diverged at turn 2: message 3 (user)")),
                "{a:?}"
            );
        }
        assert_eq!(r.stats.diverged.len(), 1);
        assert_eq!(r.stats.turns_served, 1);
        // The right request still gets the turn.
        assert!(matches!(
            r.answer(Route::OpenAiChat, &request(&["task", "ls", "a b"])),
            Answer::Recorded(_)
        ));
    }

    #[test]
    fn lenient_serves_and_counts() {
        let mut r = Replayer::new(fixture(), "f", true);
        assert!(matches!(
            r.answer(Route::OpenAiChat, &request(&["other"])),
            Answer::Recorded(_)
        ));
        assert_eq!(r.stats.diverged[0].turn, 1);
        assert_eq!(r.stats.turns_served, 1);
        let a = r.answer(Route::AnthropicMessages, &request(&["task", "ls", "a b"]));
        assert!(matches!(a, Answer::Recorded(_)));
        assert!(r.stats.diverged[1].reason.starts_with("route:"));
    }
}
