use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const INTERVAL: Duration = Duration::from_millis(500);

fn settings() -> PolicySettings {
    PolicySettings {
        rise: 2,
        fall: 3,
        hold_down: Duration::from_secs(60),
        ..PolicySettings::default()
    }
}

/// One probe round of each node at `t` (A first): every action.
fn probe_both(p: &mut FailoverPolicy, a_ok: bool, b_ok: bool, t: Instant) -> Vec<Action> {
    let mut all = p.handle(
        Input::ProbeRound {
            node: NodeId::A,
            ok: a_ok,
        },
        t,
    );
    all.extend(p.handle(
        Input::ProbeRound {
            node: NodeId::B,
            ok: b_ok,
        },
        t,
    ));
    all
}

/// A policy with A active, both nodes Up, preconditions met.
fn healthy_pair(t0: Instant) -> FailoverPolicy {
    let mut p = FailoverPolicy::new(settings());
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::A),
        },
        t0,
    );
    p.handle(Input::SchemaDrift { drift: false }, t0);
    for n in [NodeId::A, NodeId::B] {
        p.handle(
            Input::ReplicationLag {
                node: n,
                lag: Some(Duration::from_millis(100)),
            },
            t0,
        );
        p.handle(
            Input::SyncComplete {
                node: n,
                complete: true,
            },
            t0,
        );
    }
    for _ in 0..2 {
        probe_both(&mut p, true, true, t0);
    }
    assert_eq!(p.health(NodeId::A), Health::Up);
    assert_eq!(p.health(NodeId::B), Health::Up);
    p
}

fn flips(actions: &[Action]) -> Vec<NodeId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::FlipDns { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn fails_over_after_fall_bad_rounds_and_fences_the_old_node() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    let mut t = t0;
    for i in 1..=3 {
        t += INTERVAL;
        let a = p.handle(
            Input::ProbeRound {
                node: NodeId::A,
                ok: false,
            },
            t,
        );
        if i < 3 {
            assert!(flips(&a).is_empty(), "no flip before fall rounds: {a:?}");
        } else {
            assert_eq!(flips(&a), [NodeId::B]);
            assert!(a.contains(&Action::Fence { node: NodeId::A }));
            let fence_pos = a
                .iter()
                .position(|x| matches!(x, Action::Fence { .. }))
                .unwrap();
            let flip_pos = a
                .iter()
                .position(|x| matches!(x, Action::FlipDns { .. }))
                .unwrap();
            assert!(fence_pos < flip_pos, "fence is asked for before the flip");
        }
    }
    assert_eq!(p.pending_flip(), Some(NodeId::B));
    // While the flip is pending nothing else is asked for.
    t += INTERVAL;
    assert!(
        flips(&p.handle(
            Input::ProbeRound {
                node: NodeId::A,
                ok: false
            },
            t
        ))
        .is_empty()
    );
    p.handle(
        Input::FlipResult {
            to: NodeId::B,
            ok: true,
        },
        t,
    );
    assert_eq!(p.active(), Some(NodeId::B));
    assert_eq!(p.pending_flip(), None);
}

#[test]
fn no_flip_when_standby_is_down_too_but_one_alert() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    let mut all = Vec::new();
    for i in 1..=10 {
        let t = t0 + INTERVAL * i;
        all.extend(probe_both(&mut p, false, false, t));
    }
    assert!(flips(&all).is_empty());
    let alerts = all
        .iter()
        .filter(|a| matches!(a, Action::Notify { message, .. } if message.contains("both nodes are down")))
        .count();
    assert_eq!(alerts, 1);
}

#[test]
fn hard_precondition_blocks_and_soft_only_warns() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    p.handle(
        Input::ReplicationLag {
            node: NodeId::B,
            lag: Some(Duration::from_secs(30)),
        },
        t0,
    );
    let mut all = Vec::new();
    for i in 1..=3 {
        all.extend(p.handle(
            Input::ProbeRound {
                node: NodeId::A,
                ok: false,
            },
            t0 + INTERVAL * i,
        ));
    }
    assert!(flips(&all).is_empty());
    assert!(all.iter().any(|a| matches!(a, Action::Notify { message, .. } if message.contains("replication lag into B is 30.0s"))));
    // Sync turns incomplete (soft), then the lag recovers: the flip happens at once, with a
    // warning.
    let t4 = t0 + INTERVAL * 4;
    assert!(
        flips(&p.handle(
            Input::SyncComplete {
                node: NodeId::B,
                complete: false
            },
            t4
        ))
        .is_empty()
    );
    let a = p.handle(
        Input::ReplicationLag {
            node: NodeId::B,
            lag: Some(Duration::from_millis(200)),
        },
        t4,
    );
    assert_eq!(flips(&a), [NodeId::B]);
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Notify {
            level: "warning",
            ..
        }
    )));
}

/// A with `sync` gating as `sync`, B's Syncthing folders reported incomplete, then A fails
/// for `rounds` rounds: every action.
fn a_fails_with_b_out_of_sync(sync: Requirement, rounds: u32) -> (FailoverPolicy, Vec<Action>) {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    p.settings.sync_requirement = sync;
    let mut all = p.handle(
        Input::SyncComplete {
            node: NodeId::B,
            complete: false,
        },
        t0,
    );
    for i in 1..=rounds {
        let t = t0 + INTERVAL * i;
        all.extend(probe_both(&mut p, false, true, t));
        all.extend(p.tick(t));
    }
    (p, all)
}

fn notes<'a>(actions: &'a [Action], level: &str) -> Vec<&'a str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify { level: l, message } if *l == level => Some(message.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn hard_sync_gate_blocks_with_one_alert_until_syncthing_is_complete() {
    let (mut p, all) = a_fails_with_b_out_of_sync(Requirement::Hard, 10);
    assert!(flips(&all).is_empty(), "{all:?}");
    let critical = notes(&all, "critical");
    assert_eq!(
        critical,
        ["node A is down but failover to B is blocked: Syncthing folders on B are not complete"],
        "one alert over 8 blocked rounds, naming the gate"
    );
    // Syncthing reports B complete: the flip happens at once, without a warning.
    let a = p.handle(
        Input::SyncComplete {
            node: NodeId::B,
            complete: true,
        },
        Instant::now() + INTERVAL * 11,
    );
    assert_eq!(flips(&a), [NodeId::B]);
    assert!(notes(&a, "warning").is_empty(), "{a:?}");
}

#[test]
fn a_block_is_alerted_once_per_incident() {
    let (mut p, all) = a_fails_with_b_out_of_sync(Requirement::Hard, 4);
    assert_eq!(notes(&all, "critical").len(), 1);
    let t = Instant::now() + INTERVAL * 5;
    let round = |p: &mut FailoverPolicy, node, ok, t| p.handle(Input::ProbeRound { node, ok }, t);
    // One slow round of B (not eligible for a moment) does not repeat the alert.
    let mut more = round(&mut p, NodeId::B, false, t);
    more.extend(round(&mut p, NodeId::A, false, t));
    more.extend(round(&mut p, NodeId::B, true, t + INTERVAL));
    more.extend(round(&mut p, NodeId::A, false, t + INTERVAL));
    assert!(notes(&more, "critical").is_empty(), "{more:?}");
    // A recovers, then fails again: a new incident, alerted again.
    let mut later = vec![];
    for i in 2..4 {
        later.extend(round(&mut p, NodeId::A, true, t + INTERVAL * i));
    }
    assert_eq!(p.health(NodeId::A), Health::Up);
    for i in 4..8 {
        later.extend(round(&mut p, NodeId::A, false, t + INTERVAL * i));
        later.extend(round(&mut p, NodeId::B, true, t + INTERVAL * i));
    }
    assert_eq!(notes(&later, "critical").len(), 1, "{later:?}");
    assert!(flips(&later).is_empty());
}

#[test]
fn soft_sync_gate_flips_and_says_so() {
    let (_, all) = a_fails_with_b_out_of_sync(Requirement::Soft, 3);
    assert_eq!(flips(&all), [NodeId::B]);
    assert!(
        notes(&all, "warning")
            .contains(&"failing over despite: Syncthing folders on B are not complete"),
        "{all:?}"
    );
    // The warning comes before the flip it is about.
    let warn = all
        .iter()
        .position(|a| matches!(a, Action::Notify { message, .. } if message.starts_with("failing over despite")))
        .unwrap();
    let flip = all
        .iter()
        .position(|a| matches!(a, Action::FlipDns { .. }))
        .unwrap();
    assert!(warn < flip);
}

#[test]
fn an_unknown_sync_state_blocks_a_hard_gate_and_off_ignores_it() {
    let t0 = Instant::now();
    let mut p = FailoverPolicy::new(PolicySettings {
        sync_requirement: Requirement::Hard,
        lag_requirement: Requirement::Off,
        schema_requirement: Requirement::Off,
        ..settings()
    });
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::A),
        },
        t0,
    );
    let mut all = vec![];
    for (i, a_ok) in [true, true, false, false, false].into_iter().enumerate() {
        let t = t0 + INTERVAL * i as u32;
        all.extend(probe_both(&mut p, a_ok, true, t));
    }
    assert!(flips(&all).is_empty());
    assert!(
        notes(&all, "critical")
            .iter()
            .any(|m| m.contains("Syncthing completion of B is unknown")),
        "{all:?}"
    );
    let (_, all) = a_fails_with_b_out_of_sync(Requirement::Off, 3);
    assert_eq!(flips(&all), [NodeId::B]);
    assert!(
        !notes(&all, "warning")
            .iter()
            .any(|m| m.contains("Syncthing")),
        "{all:?}"
    );
}

#[test]
fn no_automatic_failback_unless_configured() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::B),
        },
        t0,
    );
    let t = t0 + Duration::from_secs(3600);
    assert!(flips(&p.tick(t)).is_empty());

    let mut s = settings();
    s.auto_failback = true;
    let mut p = healthy_pair(t0);
    p.settings = s;
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::B),
        },
        t0,
    );
    assert_eq!(flips(&p.tick(t)), [NodeId::A]);
}

#[test]
fn switchover_needs_a_healthy_target_and_ignores_hold_down() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    let a = p.handle(Input::SwitchoverRequest { to: NodeId::B }, t0);
    assert_eq!(flips(&a), [NodeId::B]);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Fence { .. })),
        "planned moves do not fence"
    );
    p.handle(
        Input::FlipResult {
            to: NodeId::B,
            ok: true,
        },
        t0,
    );
    // Right back, within the hold-down: allowed for an operator.
    let a = p.handle(
        Input::SwitchoverRequest { to: NodeId::A },
        t0 + Duration::from_secs(1),
    );
    assert_eq!(flips(&a), [NodeId::A]);

    let mut p = healthy_pair(t0);
    for i in 1..=3 {
        p.handle(
            Input::ProbeRound {
                node: NodeId::B,
                ok: false,
            },
            t0 + INTERVAL * i,
        );
    }
    let a = p.handle(
        Input::SwitchoverRequest { to: NodeId::B },
        t0 + INTERVAL * 4,
    );
    assert!(flips(&a).is_empty());
}

#[test]
fn restart_with_no_evidence_does_not_flip() {
    let t0 = Instant::now();
    let mut p = FailoverPolicy::new(settings());
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::B),
        },
        t0,
    );
    // Two bad rounds of the active node and nothing about the other: unknown, no flip.
    let mut all = Vec::new();
    for i in 1..=2 {
        all.extend(p.handle(
            Input::ProbeRound {
                node: NodeId::B,
                ok: false,
            },
            t0 + INTERVAL * i,
        ));
    }
    assert!(flips(&all).is_empty());
    assert_eq!(p.health(NodeId::A), Health::Unknown);
}

#[test]
fn a_lost_flip_result_is_recovered_from_the_record() {
    let t0 = Instant::now();
    let mut p = healthy_pair(t0);
    for i in 1..=3 {
        p.handle(
            Input::ProbeRound {
                node: NodeId::A,
                ok: false,
            },
            t0 + INTERVAL * i,
        );
    }
    assert_eq!(p.pending_flip(), Some(NodeId::B));
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::B),
        },
        t0 + INTERVAL * 5,
    );
    assert_eq!(p.pending_flip(), None);
    assert_eq!(p.active(), Some(NodeId::B));
}

// ---------------------------------------------------------------- properties (virtual clock)

#[derive(Debug, Clone)]
enum Step {
    Round(NodeId, bool),
    Record(Option<NodeId>),
    Lag(NodeId, u64),
    Drift(bool),
    Switch(NodeId),
    Result(bool),
    Wait(u64),
}

fn node() -> impl Strategy<Value = NodeId> {
    prop_oneof![Just(NodeId::A), Just(NodeId::B)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (node(), any::<bool>()).prop_map(|(n, ok)| Step::Round(n, ok)),
        1 => proptest::option::of(node()).prop_map(Step::Record),
        1 => (node(), 0u64..30_000).prop_map(|(n, ms)| Step::Lag(n, ms)),
        1 => any::<bool>().prop_map(Step::Drift),
        1 => node().prop_map(Step::Switch),
        2 => any::<bool>().prop_map(Step::Result),
        2 => (0u64..120_000).prop_map(Step::Wait),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// A flip was asked for.
    Requested {
        at: Duration,
        to: NodeId,
        health: Health,
        manual: bool,
    },
    /// A pending flip took effect (result ok, or the record moved to its target).
    Applied { at: Duration },
    /// A pending flip was reported failed.
    Failed,
}

/// Runs `steps` from a fresh policy, advancing the clock by the interval per step; returns the
/// flips asked for (with the target's health at that moment) and when flips took effect, plus
/// every action for the determinism check.
fn run(steps: &[Step]) -> (Vec<Event>, Vec<Action>) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut p = FailoverPolicy::new(settings());
    p.handle(
        Input::FloatingRecord {
            active: Some(NodeId::A),
        },
        now,
    );
    let mut events = Vec::new();
    let mut all = Vec::new();
    for s in steps {
        now += INTERVAL;
        let manual = matches!(s, Step::Switch(_));
        let pending_before = p.pending_flip();
        let actions = match s {
            Step::Round(n, ok) => p.handle(Input::ProbeRound { node: *n, ok: *ok }, now),
            Step::Record(a) => p.handle(Input::FloatingRecord { active: *a }, now),
            Step::Lag(n, ms) => p.handle(
                Input::ReplicationLag {
                    node: *n,
                    lag: Some(Duration::from_millis(*ms)),
                },
                now,
            ),
            Step::Drift(d) => p.handle(Input::SchemaDrift { drift: *d }, now),
            Step::Switch(n) => p.handle(Input::SwitchoverRequest { to: *n }, now),
            Step::Result(ok) => match p.pending_flip() {
                Some(to) => p.handle(Input::FlipResult { to, ok: *ok }, now),
                None => Vec::new(),
            },
            Step::Wait(ms) => {
                now += Duration::from_millis(*ms);
                p.tick(now)
            }
        };
        let applied = match (s, pending_before) {
            (Step::Result(true), Some(_)) => true,
            (Step::Record(a), Some(to)) => *a == Some(to),
            _ => false,
        };
        if applied {
            events.push(Event::Applied { at: now - t0 });
        }
        if matches!((s, pending_before), (Step::Result(false), Some(_))) {
            events.push(Event::Failed);
        }
        for to in flips(&actions) {
            events.push(Event::Requested {
                at: now - t0,
                to,
                health: p.health(to),
                manual,
            });
        }
        all.extend(actions);
    }
    (events, all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_flips_to_an_unhealthy_node(steps in proptest::collection::vec(step(), 0..200)) {
        for e in run(&steps).0 {
            if let Event::Requested { health, .. } = e {
                prop_assert_eq!(health, Health::Up);
            }
        }
    }

    #[test]
    fn automatic_flips_respect_the_hold_down(steps in proptest::collection::vec(step(), 0..200)) {
        let hold = settings().hold_down;
        let mut last_applied: Option<Duration> = None;
        for e in run(&steps).0 {
            match e {
                Event::Applied { at } => last_applied = Some(at),
                Event::Requested { at, manual: false, .. } => {
                    if let Some(prev) = last_applied {
                        prop_assert!(at - prev >= hold, "flip at {at:?} only {:?} after the last one", at - prev);
                    }
                }
                Event::Requested { .. } | Event::Failed => {}
            }
        }
    }

    #[test]
    fn one_flip_at_a_time(steps in proptest::collection::vec(step(), 0..200)) {
        // After a flip is asked for, the next one comes only once the first took effect, failed,
        // or stayed unanswered for the flip timeout.
        let timeout = settings().flip_timeout;
        let mut open: Option<Duration> = None;
        for e in run(&steps).0 {
            match e {
                Event::Requested { at, .. } => {
                    if let Some(prev) = open {
                        prop_assert!(at - prev >= timeout, "second flip {:?} after the first", at - prev);
                    }
                    open = Some(at);
                }
                Event::Applied { .. } | Event::Failed => open = None,
            }
        }
    }

    #[test]
    fn same_inputs_same_actions(steps in proptest::collection::vec(step(), 0..120)) {
        prop_assert_eq!(run(&steps), run(&steps));
    }

    #[test]
    fn blips_shorter_than_fall_never_flip(pattern in proptest::collection::vec(1u32..3, 1..40)) {
        // The active node fails for 1..fall-1 rounds, then recovers, again and again.
        let t0 = Instant::now();
        let mut p = healthy_pair(t0);
        let mut now = t0;
        for bad in pattern {
            for _ in 0..bad {
                now += INTERVAL;
                let a = p.handle(Input::ProbeRound { node: NodeId::A, ok: false }, now);
                prop_assert!(flips(&a).is_empty());
            }
            now += INTERVAL;
            let a = p.handle(Input::ProbeRound { node: NodeId::A, ok: true }, now);
            prop_assert!(flips(&a).is_empty());
        }
    }
}
