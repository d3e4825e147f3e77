//! Picking a child's own output lines out of what it printed under the test harness.

/// The lines of `text` from `tag` on, in order. The test harness's own "test … " may share a
/// line with the child's first output line, so a tag may start mid-line.
pub fn tagged_lines<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.find(tag).map(|i| &l[i..]))
        .collect()
}
