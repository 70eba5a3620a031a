use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Syncs every 100 ms, each answered after 2 ms; returns what each answer proved.
fn steady(chain: &mut Chain, beats: u64) -> Vec<Option<Duration>> {
    (0..beats)
        .map(|b| chain.answered(ms(1000 + b * 100), ms(1000 + b * 100 + 2), true))
        .collect()
}

#[test]
fn one_answer_proves_nothing() {
    let mut chain = Chain::new(ms(250));
    assert_eq!(chain.answered(ms(1000), ms(1002), true), None);
    assert_eq!(chain.answered(ms(1100), ms(1102), true), None);
}

#[test]
fn a_steady_run_proves_a_moment_a_ping_gap_and_two_beats_back() {
    let mut chain = Chain::new(ms(250));
    let proven = steady(&mut chain, 10);
    // Beat 9 (sent 1900): j = beat 8 (sent 1800); i answered by 1550: beat 5 (sent 1500).
    assert_eq!(proven[9], Some(ms(1500)));
    for (b, p) in proven.iter().enumerate() {
        if let Some(p) = p {
            let sent = ms(1000 + b as u64 * 100);
            assert!(sent - *p >= ms(250) + ms(100), "beat {b} proved too much");
        }
    }
}

#[test]
fn answers_held_up_in_a_cut_prove_nothing_of_the_time_after_it() {
    let mut chain = Chain::new(ms(250));
    steady(&mut chain, 10);
    // A cut from 2000 on: beats sent at 2000..2400 are all answered at 5000, when it heals.
    let proven: Vec<_> = (0..5)
        .map(|b| chain.answered(ms(2000 + b * 100), ms(5000), true))
        .collect();
    // None of them was sent after another's answer in the cut, so none proves anything
    // after the last beat the leader had surely heard of before the cut.
    for p in proven.into_iter().flatten() {
        assert!(p <= ms(1900 - 250), "proved {p:?}");
    }
    // The next beat, sent after those answers, proves the beats before the cut at most:
    // the leader may have heard of nothing from the cut.
    let after = chain.answered(ms(5100), ms(5102), true).unwrap();
    assert!(after <= ms(1900), "proved {after:?}");
}

/// A read the follower answers itself may begin a proof, but never stand for a `sync`: its
/// answer says nothing of the leader's pings.
#[test]
fn reads_begin_a_proof_but_only_syncs_carry_it() {
    let mut chain = Chain::new(ms(250));
    // Cold reads every 500 ms, then reads where the syncs would be: nothing proven.
    for b in 0..6 {
        assert_eq!(
            chain.answered(ms(1000 + b * 500), ms(1000 + b * 500 + 2), false),
            None
        );
    }
    assert_eq!(chain.answered(ms(4000), ms(4002), false), None);
    // A sync after reads alone proves nothing either: it is j at best.
    assert_eq!(chain.answered(ms(4100), ms(4102), true), None);
    // The next sync is k: i is the newest read answered a ping gap before j (sent 4100).
    assert_eq!(chain.answered(ms(4103), ms(4105), true), Some(ms(3500)));
}

/// A run that turns warm after waiting cold sends two syncs at once: the second proves the
/// newest cold read answered a tick before the first, at most a tick and a cold interval old.
#[test]
fn turning_warm_proves_within_two_round_trips() {
    let (timeout, tick) = (Duration::from_secs(10), Duration::from_secs(2));
    let cold = cold_every(timeout);
    let mut chain = Chain::new(tick);
    let mut t = Duration::from_secs(100);
    for _ in 0..8 {
        chain.answered(t, t + ms(1), false);
        t += cold;
    }
    // Turned warm just before the next cold read would have gone.
    let j = t - ms(10);
    assert_eq!(chain.answered(j, j + ms(1), true), None);
    let proven = chain.answered(j + ms(1), j + ms(2), true).expect("a proof");
    assert!(
        j + ms(2) - proven <= tick + cold + ms(2),
        "proved {proven:?}"
    );
}

#[test]
fn the_warm_pace_is_at_most_one_beat_a_tenth_of_the_timeout() {
    let s = Duration::from_secs;
    assert_eq!(warm_every(s(10), s(2)), ms(1025));
    assert_eq!(warm_every(s(4), ms(100)), ms(400));
    assert_eq!(warm_every(s(20), s(2)), ms(2100));
    for (timeout, tick) in [(s(10), s(2)), (s(4), ms(100)), (s(8), s(2)), (s(30), s(3))] {
        assert!(warm_every(timeout, tick) >= timeout / 10);
    }
}

/// At the warm pace, with answers on time, the proof never trails by more than the span the
/// pace is set for (a tick and a round trip) and two beats: the figure docs/safety.md builds
/// its outage tolerance on.
#[test]
fn at_the_warm_pace_a_proof_trails_by_a_tick_and_two_beats_at_most() {
    let s = Duration::from_secs;
    for (timeout, tick) in [
        (s(10), s(2)),
        (s(4), ms(100)),
        (s(8), s(2)),
        (s(10), ms(100)),
    ] {
        let every = warm_every(timeout, tick);
        let bound = (tick + round_trip(timeout)).max(every) + 2 * every + ms(2);
        let mut chain = Chain::new(tick);
        let mut acked = Duration::ZERO;
        let start = s(1000);
        for b in 0..100u32 {
            let sent = start + every * b;
            // Just before this beat's answer: the trail is at its longest.
            if acked > Duration::ZERO {
                let trail = sent + ms(2) - acked;
                assert!(
                    trail <= bound,
                    "T {timeout:?}, tick {tick:?}: trails {trail:?} > {bound:?}"
                );
            }
            if let Some(p) = chain.answered(sent, sent + ms(2), true) {
                acked = acked.max(p);
            }
        }
        assert!(
            acked > start,
            "T {timeout:?}, tick {tick:?}: nothing proven"
        );
    }
}
