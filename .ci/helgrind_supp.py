#!/usr/bin/env python3
"""Writes .ci/helgrind.supp, the suppressions for overlap's tests under valgrind's helgrind and DRD.

Run it after editing a rule: `python3 .ci/helgrind_supp.py` (from the repository root).

Each rule becomes one entry per tool. How far down the reported access's stack a rule's
pattern may match is its kind: "top" only the first frame, "top3"/"near"/"pool"/"deep" within
the first 4/6/8/12 frames, "any" anywhere, "exact" a fixed run of frames. Rules for overlap's
own code stay near the top, so that what those functions call out to (a waker, a job, a
future's destructor) is still checked.

Patterns name non-inlined frames by their legacy-mangled symbol (`_ZN15overlap_runtime...`),
and inlined frames by their short name, as valgrind's `--gen-suppressions=all` prints them.
"""
import os
import sys

entries = []  # (name, comment, kind, patterns)
def add(name, comment, kind, pats):
    entries.append((name, comment, kind, pats))

add('std-mpmc', "std's channels (libtest's and the tests' own): lock-free lists and atomics.", 'any', ['*3std4sync4mpmc*'])
add('std-sys-sync', "std's Mutex, Condvar, Once and thread parking: futexes and atomics.", 'any', ['*3std3sys4sync*'])
add('std-poison', "std's Mutex poison flag and guard, read and written while the lock is held.", 'near', ['*3std4sync6poison*'])
add('std-sigaltstack', "std's per-thread stack-overflow handler set-up and tear-down.", 'any', ['*3std3sys3pal4unix14stack_overflow*'])
add('std-output-capture', "libtest's output capture, an atomic flag plus a thread-local.", 'any', ['*3std2io5stdio18set_output_capture*'])
add('std-thread', "std's thread handles (`thread::current`, park and unpark) and thread-locals, set up through atomics.",
    'near', ['*3std6thread7current*', '*3std6thread6Thread*', '*3std6thread9functions*', '*3std6thread5local*'])
add('arc-drop', "Arc's and Weak's counts are atomics; the last drop's acquire fence orders the free (and the drop glue before it).", 'deep', ['*5alloc4sync16Arc$LT$T$C$A$GT$9drop_slow*'])
add('arc-drop-glue', "As above, through drop glue.", 'near', ['*drop_in_place$LT$alloc..sync..Arc$LT$*'])
add('weak-drop-glue', "As above, for Weak.", 'near', ['*drop_in_place$LT$alloc..sync..Weak$LT$*'])
add('atomics', "An atomic operation, which the tools see as a plain access.", 'top', ['*4core4sync6atomic*'])
add('atomics-inlined', "As above, inlined.", 'top', ['atomic_*'])

add('overlap-shared',
    "executor/shared.rs: the remote queue, `waiting`, `spawns_open` and the eventfd live in "
    "`Shared::remote`, a Mutex; `notified` and the counters are atomics; `Notify::send` signals "
    "through its own Arcs. (Deeper than the others: the queue's Vec code is inlined several frames deep.)", 'pool', ['_ZN15overlap_runtime8executor6shared*'])
for fn_ in ['5Inner6worker17h', '5Inner6search17h', '5Inner4lock17h', '6Finish4done17h',
            '12BlockingPool5queue17h', '12BlockingPool8shutdown17h', '12BlockingPool12start_thread17h',
            '12BlockingPool7is_busy17h', '12BlockingPool7execute17h']:
    add('overlap-pool-' + fn_.split('17h')[0].lstrip('0123456789'),
        "blocking/pool.rs: the queue and thread counts live in `Inner::state`, a Mutex; `queued`, "
        "`running` and `search_misses` are atomics. (Not the jobs, which run outside the lock.)",
        'pool', ['_ZN15overlap_runtime8blocking4pool' + fn_ + '*'])
add('overlap-signal-registry',
    "signal/registry.rs: a slot's listener list, the self-pipe's read end and the install step are "
    "under their Mutexes; counts and flags are atomics. (Not `broadcast`, which wakes listeners "
    "outside the locks: its reports are left to read.)", 'near',
    ['_ZN15overlap_runtime6signal8registry4Slot*', '_ZN15overlap_runtime6signal8registry9open_pipe*',
     '_ZN15overlap_runtime6signal8registry9reader_fd*'])
add('overlap-completion',
    "blocking/completion.rs: a OnceSlot is only touched through its Arc<Mutex<..>>.", 'near',
    ['_ZN15overlap_runtime8blocking10completion*'])
add('overlap-jobcell', "blocking/remote.rs: a JobCell is a Mutex and an AtomicBool.", 'near',
    ['_ZN15overlap_runtime8blocking6remote16JobCell*'])
add('overlap-remotecell', "executor/remote_task.rs: a RemoteCell is a Mutex and an AtomicBool.", 'near',
    ['_ZN15overlap_runtime8executor11remote_task23RemoteCell$LT$F$C$T$GT$*'])
add('overlap-remotecell-slot', "As above: the handle's side (poll_output, abort, is_finished).", 'near',
    ['*overlap_runtime..executor..remote_task..RemoteCell*JoinSlot$LT$*'])
add('overlap-remotecell-start', "As above: the loop takes the maker out under the lock (then calls it outside).",
    'top3', ['*overlap_runtime..executor..remote_task..RemoteCell*RemoteJob$GT$5start17h*'])
add('overlap-drain-remote',
    "executor/core.rs: the loop reads the remote entries and spawns it swapped out under `Shared::remote`'s "
    "lock (`take_all`); the pushing thread wrote them under the same lock.", 'exact',
    [['read<*>', '*', 'map<*>', '*next*', '_ZN15overlap_runtime8executor4core4Core12drain_remote17h*']])
add('overlap-cell-vtable', "task/raw.rs: the header's vtable pointer, written once when the cell is made (as `shared`, below).",
    'top', ['_ZN15overlap_runtime4task3raw7TaskPtr7dealloc*'])
add('overlap-job-captures',
    "blocking/mod.rs, blocking/remote.rs: a job closure reading its own captures on the pool thread; it was made on "
    "the runtime thread and handed over through the pool's Mutex-guarded queue. (The job's own code, `f`, runs "
    "deeper than these frames.)", 'top3',
    ['_ZN15overlap_runtime8blocking9spawn_job28_$u7b$$u7b$closure$u7d$$u7d$17h*',
     '_ZN15overlap_runtime8blocking9spawn_job28_$u7b$$u7b$closure$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$17h*',
     '_ZN15overlap_runtime8blocking6remote13spawn_on_pool28_$u7b$$u7b$closure$u7d$$u7d$17h*'])
add('overlap-job-handle',
    "executor/handle.rs: the job's Handle (a capture, see above) cloned on the pool thread.", 'exact',
    [['as_ref<*>', 'inner<*>', '*clone*', '_ZN15overlap_runtime8executor6handle6Handle14run_as_current*']])
add('overlap-cell-dealloc',
    "task/raw.rs: a cell freed on another thread. The freeing thread's last release (AcqRel, or the "
    "acquire load of the fast path) follows every other claim's release, each after that claim's "
    "last use of the cell (invariant 2).", 'near', ['*15overlap_runtime4task3raw4cell*7dealloc*'])
add('overlap-cell-shared-ptr',
    "task/raw.rs: the header's `shared` pointer, written once when the cell is made, before any "
    "pointer to the cell leaves the runtime thread (through a Mutex-guarded queue or an Arc).",
    'top', ['_ZN15overlap_runtime4task3raw7TaskPtr*shared*'])
add('overlap-cell-remote-load',
    "task/raw.rs: the atomic load that starts the compare-exchange loop on `remote`, and the fast "
    "path's acquire load.", 'top', ['_ZN15overlap_runtime4task3raw7TaskPtr11mark_remote*'])
add('overlap-cell-release-load', "As above.", 'top',
    ['_ZN15overlap_runtime4task3raw7TaskPtr21release_unit_deferred*'])

out = ["# Suppressions for running overlap's tests under valgrind's helgrind and DRD, one test",
       "# at a time (debug build):",
       "#",
       "#   valgrind --tool=helgrind --suppressions=.ci/helgrind.supp BINARY TEST --exact --test-threads=1",
       "#   valgrind --tool=drd --suppressions=.ci/helgrind.supp BINARY TEST --exact --test-threads=1",
       "#",
       "# Neither tool sees Rust's own synchronisation: std's Mutex, Condvar, Once, thread parking",
       "# and channels are built on atomics and raw futex calls, not on pthreads, and both tools",
       "# treat atomic loads and stores as plain accesses. Without these entries every access",
       "# under a std Mutex is reported. What is left is worth a look; what still shows up and is",
       "# benign: data handed to another thread through a Mutex-guarded queue and read there",
       "# (a remote-queue entry, a job's captures), and tests' own allocators and helpers.",
       "#",
       "# A pattern hides a report when it matches the *reported* access's stack, whatever the",
       "# other access was. Entries for overlap's code match only near the top of the stack, so",
       "# that what those functions call out to (a waker, a job, a future's destructor) is still",
       "# checked: owner-only task state (flags, refs) read from a waking thread is still reported",
       "# by both tools with these entries in place.",
       "# Generated by .ci/helgrind_supp.py from its rules, each with its reason: edit those, not",
       "# this file.",
       ""]
tools = [('helgrind', 'Helgrind:Race'), ('drd', 'drd:ConflictingAccess')]
for name, comment, kind, pats in entries:
    out.append('# ' + comment)
    if kind == 'exact':
        for tool, k in tools:
            for i, seq in enumerate(pats):
                out += ['{', '   %s-%s-%d' % (name, tool, i), '   ' + k]
                out += ['   fun:' + x for x in seq] + ['}']
        out.append('')
        continue
    depths = {'any': [None], 'top': [0], 'top3': [0, 1, 2, 3], 'near': [0, 1, 2, 3, 4, 5], 'pool': list(range(8)),
              'deep': list(range(12))}[kind]
    for tool, k in tools:
        for d in depths:
            body = ['   ...'] if d is None else ['   fun:*'] * d
            for p in pats:
                out += ['{', '   %s-%s%s' % (name, tool, '' if d in (None, 0) else '-%d' % d), '   ' + k]
                out += body + ['   fun:' + p, '}']
    out.append('')
target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'helgrind.supp')
with open(target, 'w') as f:
    f.write('\n'.join(out) + '\n')
