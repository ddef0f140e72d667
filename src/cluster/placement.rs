//! Where new partitions' replicas go when the request names none: Kafka's
//! `assignReplicasToBrokers` with a fixed start (partition `p`'s leader
//! is the `p`-th broker in the list, so placement is predictable), and
//! with racks (`broker.rack`) its rack-aware form: the broker list
//! alternates racks, and each partition's replicas go to as many
//! different racks as there are, before a rack gets a second one.

use std::collections::{BTreeMap, BTreeSet};

/// Replica lists (leader first) for partitions `from..to` with
/// `replicas` each, over `brokers` (node id, rack) in node id order.
/// Racks count only when every broker has one (as Kafka refuses a mix
/// unless told to ignore racks, strom then ignores them).
pub fn assign(
    brokers: &[(i32, Option<String>)],
    from: i32,
    to: i32,
    replicas: i16,
) -> Vec<Vec<i32>> {
    let racks: Option<BTreeMap<i32, &str>> = brokers
        .iter()
        .map(|(id, rack)| Some((*id, rack.as_deref()?)))
        .collect();
    let (order, racks) = match racks {
        Some(racks) if !brokers.is_empty() => (rack_alternated(&racks), Some(racks)),
        _ => (brokers.iter().map(|(id, _)| *id).collect(), None),
    };
    let n = order.len().max(1);
    let width = usize::try_from(replicas).unwrap_or(1).clamp(1, n);
    let rack_count = racks
        .as_ref()
        .map_or(1, |r| r.values().collect::<BTreeSet<_>>().len());
    (from..to)
        .map(|p| {
            let first = usize::try_from(p).unwrap_or(0) % n;
            let Some(racks) = &racks else {
                return (0..width).map(|r| order[(first + r) % n]).collect();
            };
            // Kafka's rack-aware walk: from the leader on, take the next
            // broker whose rack has no replica yet (or every rack has
            // one), and that holds none yet.
            let mut chosen = vec![order[first]];
            let mut used_racks: BTreeSet<&str> =
                racks.get(&order[first]).copied().into_iter().collect();
            for k in 1..2 * n {
                if chosen.len() == width {
                    break;
                }
                let broker = order[(first + k) % n];
                let rack = racks.get(&broker).copied().unwrap_or_default();
                let rack_ok = !used_racks.contains(rack) || used_racks.len() == rack_count;
                if rack_ok && !chosen.contains(&broker) {
                    chosen.push(broker);
                    used_racks.insert(rack);
                }
            }
            chosen
        })
        .collect()
}

/// Brokers ordered rack by rack in turn (Kafka's
/// `getRackAlternatedBrokerList`): racks sorted, each rack's brokers in
/// id order, one from each rack per round.
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, rack) in racks {
        by_rack.entry(rack).or_default().push(*id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[Option<&str>]) -> Vec<(i32, Option<String>)> {
        (1..)
            .zip(racks)
            .map(|(id, r)| (id, r.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn without_racks_leaders_go_round_robin() {
        let b = brokers(&[None, None, None]);
        assert_eq!(
            assign(&b, 0, 4, 2),
            [vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 2]]
        );
        assert_eq!(assign(&b, 0, 1, 5), [vec![1, 2, 3]], "at most every broker");
    }

    #[test]
    fn with_racks_replicas_spread_over_racks() {
        // Racks a: 1, 2; b: 3, 4. Alternated order: 1 (a), 3 (b), 2 (a), 4 (b).
        let b = brokers(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        let rack = |id: i32| if id <= 2 { "a" } else { "b" };
        let assigned = assign(&b, 0, 8, 2);
        for replicas in &assigned {
            assert_eq!(replicas.len(), 2);
            assert_ne!(rack(replicas[0]), rack(replicas[1]), "{assigned:?}");
        }
        let leaders: BTreeSet<i32> = assigned.iter().map(|r| r[0]).collect();
        assert_eq!(leaders.len(), 4, "every broker leads some: {assigned:?}");
        // Three replicas over two racks: both racks, three brokers.
        for replicas in assign(&b, 0, 4, 3) {
            let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
            let racks: BTreeSet<&str> = replicas.iter().map(|id| rack(*id)).collect();
            assert_eq!((distinct.len(), racks.len()), (3, 2), "{replicas:?}");
        }
    }

    #[test]
    fn a_broker_without_a_rack_turns_racks_off() {
        let b = brokers(&[Some("a"), None, Some("b")]);
        assert_eq!(assign(&b, 0, 1, 3), [vec![1, 2, 3]]);
    }
}
