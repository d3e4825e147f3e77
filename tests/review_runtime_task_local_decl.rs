//! `task_local!` takes its declarations as tokio's does: the last one may end without a
//! semicolon (code moved over from tokio often writes a single one that way).

overlap::task_local! {
    static FIRST: u32;
    /// A documented one, last and without a semicolon.
    pub(crate) static LAST: &'static str
}

overlap::task_local! {
    static ALONE: u64
}

#[test]
fn a_last_declaration_without_a_semicolon_is_a_task_local_like_the_others() {
    overlap::block_on(FIRST.scope(1, async {
        LAST.scope("last", async {
            assert_eq!(FIRST.get(), 1);
            assert_eq!(LAST.get(), "last");
            assert!(ALONE.try_get().is_err(), "no scope of ALONE runs");
            ALONE.scope(7, async { assert_eq!(ALONE.get(), 7) }).await;
        })
        .await;
    }));
}
