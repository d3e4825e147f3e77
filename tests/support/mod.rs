//! Helpers shared by the integration tests. Each test binary uses a part of them.
#![allow(dead_code, unused_imports)]

mod busy_pool;
mod child;
mod coop;
pub mod counting;
mod deadline;
mod drop_flag;
mod echo;
mod errno;
mod example;
mod fd;
mod fd_passing;
mod fifo;
mod files;
mod gate;
mod limits;
mod mailbox;
mod model;
mod net;
mod no_threads;
mod panic;
mod park_on;
mod pid_namespace;
mod polled;
mod proc_stat;
mod proc_status;
mod reaped;
mod rng;
pub mod scripted;
pub mod seccomp;
mod serving;
mod straggler;
mod tagged;
mod threads_named;
mod unread_stdout;
pub mod word_codecs;

pub use busy_pool::{hold_pool, one_thread_pool, runtime_with_a_busy_pool};
pub use child::{run_in_child, run_in_child_blocking};
pub use coop::steps_before_another_task_runs;
pub use deadline::{exit_if_still_running_after, on_thread_within, settle, until, within};
pub use drop_flag::DropFlag;
pub use echo::{echo_server, echo_until_eof, pass_through};
pub use errno::{expect_errno, in_our_words, lowest_free_fd, open_fds_polled};
pub use example::{
    example_bin, run_example, run_example_with_nofile, stderr_lines, ExampleRun, ExampleServer,
};
pub use fd::*;
pub use fd_passing::*;
pub use fifo::{mkfifo, SlowFifo};
pub use files::*;
pub use gate::{jobs_held_at, Gate};
pub use limits::*;
pub use mailbox::Mailbox;
pub use model::{for_seeds, watchdog, SeedOnPanic, WakeCount, XorShift};
pub use net::{
    conn_with_urgent_mark, datagram, fill_send_buffer, open_fresh, open_read_write, tcp_pair,
    udp_trio, unix_accept_and_echo, unix_bound_at_108_bytes,
};
pub use no_threads::{no_pool_threads, without_new_threads};
pub use panic::{
    panic_message, panic_twice, quiet_panics, waker_panicking_twice, Loud, PanickingPayload,
};
pub use park_on::park_on;
pub use pid_namespace::{next_pid_is, run_in_pid_namespace};
pub use polled::{
    abandon, abandon_slot, any_woken, poll_once, poll_once_then_drop, polled, tasks_still_held,
    wait_on, ManualTask, Polled,
};
pub use proc_stat::{live_group_members, parent_pid, process_state};
pub use proc_status::status_kib;
pub use reaped::{children, gone};
pub use rng::Rng;
pub use serving::{a_new_pair_still_serves, still_serves};
pub use straggler::KillIfPanicking;
pub use tagged::tagged_lines;
pub use threads_named::{comm_of, threads_named};
pub use unread_stdout::{run_with_unread_stdout, UnreadStdout};
