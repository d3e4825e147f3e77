//! Topic names and topic filters: a filter's `+` matches one level and `#` (last, alone
//! in its level) the level it is in and every level below; topics starting with `$` are
//! not matched by a filter that starts with a wildcard.

/// Whether `topic` is a name a PUBLISH (or a will) may carry: not empty, no wildcard.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// Whether `filter` is one a SUBSCRIBE may carry.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == last,
        "+" => true,
        other => !other.contains(['+', '#']),
    })
}

/// Whether `filter` (valid) matches `topic` (valid).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[test]
fn topic_filters_match_as_the_spec_says() {
    for (filter, topic, want) in [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("#", "any/thing/at/all", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("#", "$SYS/x", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("a/b", "a/b", true),
        ("a/b", "a/B", false),
        ("a/b", "a/b/c", false),
    ] {
        assert_eq!(matches(filter, topic), want, "{filter} on {topic}");
    }
    for f in ["#", "+", "a/#", "+/+/#", "/", "a//b", "+/a/+"] {
        assert!(valid_filter(f), "{f}");
    }
    for f in ["", "a/#/b", "a#", "a/b+", "sport+", "#/a", "a/##"] {
        assert!(!valid_filter(f), "{f}");
    }
    assert!(valid_topic("a/b") && valid_topic("/") && !valid_topic(""));
    assert!(!valid_topic("a/+") && !valid_topic("a/#"));
}
