"""The sync's batch parse pauses the cyclic garbage collector, and always restores it."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from pathlib import Path

import pytest

from app.sync.parsing import collector_paused, parse_batch
from tests.support import wait_for


def test_the_collector_is_paused_for_a_batch_and_restored_after_nested_pauses():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a second batch in another thread, say
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch is still running
    assert gc.isenabled()


def test_the_collector_is_restored_when_a_batch_fails_and_left_off_if_it_was_off():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("parse crashed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_parse_batch_parses_and_hashes_every_file():
    parsed, hashes = parse_batch({"catalog/a.yaml": b'name: "a"\n', "catalog/b.yaml": b"[broken\n"})
    assert parsed["catalog/a.yaml"].identifier == "a"
    assert parsed["catalog/b.yaml"].document is None and not parsed["catalog/b.yaml"].ok
    assert set(hashes) == {"catalog/a.yaml", "catalog/b.yaml"}
    assert gc.isenabled()


ROOT = Path(__file__).resolve().parent.parent


def _mixed_batch() -> dict[str, bytes]:
    """Every outcome a file can have: valid items and bundles, findings, broken YAML,
    an unstorable value, a name held twice, a title as name, non-UTF-8."""
    files = {str(p.relative_to(ROOT / "examples")): p.read_bytes()
             for p in sorted((ROOT / "examples" / "catalog").rglob("*.yaml"))}
    files.update({
        "catalog/x/broken.yaml": b"name: [unclosed\n",
        "catalog/x/nul.yaml": b'name: "nul"\nversion: "1.0.0"\ndescription: "a\\0b"\nowner: t\n',
        "catalog/x/title.yaml": b'name: "A Title"\nversion: "1.0.0"\ndescription: d\nowner: t\n',
        "catalog/x/latin1.yaml": b"name: caf\xe9\n",
        "catalog/x/dup.yaml": b"name: redis-cache\nname: again\n",
        "catalog/x/list.yaml": b"- 1\n- 2\n",
    })
    for i in range(40):
        files[f"catalog/gen/item-{i:03d}.yaml"] = (
            f'name: "item-{i:03d}"\nversion: "1.{i}.0"\ndescription: "item {i}"\nowner: "team"\n'
            f'tags: ["a", "b", "{"a" if i % 5 == 0 else "c"}"]\n'
            'presentation:\n  fields:\n    - name: "size"\n      type: "selection"\n'
            f'      oneof: ["s", "m"]\n      default: "{"m" if i % 3 else "xl"}"\n'
            'fulfillment:\n  manual:\n    system: "jira"\n    template:\n'
            '      summary: "{{ size }} for {{ requester.team }}"\n').encode()
    return files


async def test_processes_parse_exactly_as_one_thread_does(monkeypatch):
    from app.sync import parsing

    files = _mixed_batch()
    monkeypatch.setattr(parsing, "PARALLEL_FROM", 10)
    monkeypatch.setattr(parsing, "CHUNK_FILES", 7)  # several chunks per process, merged in order
    serial = await parsing.parse_many(files, processes=1)
    chunks: list[dict] = []

    async def staged(parsed, hashes):
        chunks.append(parsed)

    parallel = await parsing.parse_many(files, processes=3, on_chunk=staged)
    assert list(parallel[0]) == list(serial[0]) == list(files)
    # Every chunk's results as they came, each file once, each as the whole parse has it.
    assert len(chunks) > 1 and sorted(p for c in chunks for p in c) == sorted(files)
    assert all(c[path] == serial[0][path] for c in chunks for path in c)
    assert parallel == serial  # documents, findings, identifiers, hashes
    assert any(not p.ok for p in serial[0].values()) and any(p.ok for p in serial[0].values())
    for path, p in serial[0].items():
        q = parallel[0][path]
        assert (q.loaded.marks, q.loaded.key_marks) == (p.loaded.marks, p.loaded.key_marks) \
            if p.loaded is not None else q.loaded is None
    assert not multiprocessing.active_children()  # the pool's processes ended with it


async def test_a_cancelled_parallel_parse_leaves_no_process_behind(monkeypatch):
    from app.sync import parsing

    monkeypatch.setattr(parsing, "PARALLEL_FROM", 10)
    monkeypatch.setattr(parsing, "CHUNK_FILES", 20)
    files = {f"catalog/gen/item-{i:04d}.yaml": b'name: "x"\ntags: [' + b"1, " * 2000 + b"2]\n"
             for i in range(400)}
    parse = asyncio.create_task(parsing.parse_many(files, processes=2))
    async def pool_running() -> bool:
        return bool(multiprocessing.active_children())

    await wait_for(pool_running, what="the pool's processes")
    parse.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parse
    assert not multiprocessing.active_children()


class _KillsItsReader(bytes):
    """Bytes that end the process unpickling them: a parsing process that dies."""

    def __reduce__(self):  # type: ignore[override]
        return (os._exit, (3,))


async def test_the_thread_parses_what_a_dead_parsing_process_had_taken(monkeypatch, caplog):
    from app.sync import parsing

    files = _mixed_batch()
    monkeypatch.setattr(parsing, "PARALLEL_FROM", 10)
    monkeypatch.setattr(parsing, "CHUNK_FILES", 7)
    serial = await parsing.parse_many(files, processes=1)
    deadly = {path: _KillsItsReader(data) for path, data in files.items()}
    seen: list[str] = []

    async def staged(parsed, hashes):  # what the sync writes while the rest is parsed
        assert parsed.keys() == hashes.keys()
        seen.extend(parsed)

    assert await parsing.parse_many(deadly, processes=3, on_chunk=staged) == serial
    assert sorted(seen) == sorted(files)  # each file once, the thread's chunks included
    # (BrokenProcessPool, or OSError when the pool breaks while chunks are still handed out)
    assert "parsing process failed (" in caplog.text
    assert not multiprocessing.active_children()


_MAIN_SCRIPT = '''
import asyncio, os, sys
if __name__ != "__main__":  # run again in a pool process, as __mp_main__
    open(os.environ["RERUN_MARK"], "a").write(__name__ + "\\n")
from app.sync import parsing

async def main():
    parsing.PARALLEL_FROM = 10
    parsing.CHUNK_FILES = 5
    files = {f"catalog/x/item-{i:02d}.yaml": f"name: item-{i:02d}\\nversion: '1.0.0'\\n".encode()
             for i in range(40)}
    parsed, _ = await parsing.parse_many(files, processes=2)
    main = sys.modules["__main__"]
    print(len(parsed), sorted({p.identifier is not None for p in parsed.values()}),
          main.__file__ == os.path.abspath(sys.argv[0]), main.__spec__ is None)

if __name__ == "__main__":
    asyncio.run(main())
'''


def test_pool_processes_do_not_run_the_main_script_again(tmp_path):
    """multiprocessing would run the caller's main script in each pool process (0.1-0.4 s
    each, every big sync): the pool starts without it, and the main module is left intact."""
    import subprocess
    import sys

    script, mark = tmp_path / "main_script.py", tmp_path / "reruns"
    script.write_text(_MAIN_SCRIPT)
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "RERUN_MARK": str(mark),
                              "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])})
    assert out.returncode == 0, out.stderr
    assert "parsing process failed" not in out.stderr  # the pool parsed, not the fallback
    assert out.stdout.split() == ["40", "[True]", "True", "True"], out.stdout
    assert not mark.exists(), mark.read_text()


_FORK_REFUSED = '''
import errno, os

def _refused():
    raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

os.fork = _refused  # what fork() gives at a process limit (RLIMIT_NPROC)
'''

_FAULT_SCRIPT = '''
import asyncio, logging, os, sys
from multiprocessing import forkserver
from app.sync import parsing

async def main():
    parsing.PARALLEL_FROM = 10
    parsing.CHUNK_FILES = 5
    # The forkserver starts, but every fork it is asked for is refused, and it dies.
    context = parsing._context()
    context.set_forkserver_preload([*forkserver._forkserver._preload_modules, "fork_refused"])
    files = {f"catalog/x/item-{i:02d}.yaml": f"name: item-{i:02d}\\nversion: '1.0.0'\\n".encode()
             for i in range(40)}
    parsed = await parsing.parse_many(files, processes=2)
    main = sys.modules["__main__"]
    print(parsed == parsing.parse_batch(files), main.__file__ == os.path.abspath(sys.argv[0]),
          main.__spec__ is None)

logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
asyncio.run(main())
'''


def test_a_forkserver_that_cannot_fork_leaves_the_parse_to_the_thread(tmp_path):
    """A process limit reached: the forkserver dies on the refused fork (the pool sees EOF,
    not an OSError); the sync still parses everything, in its thread, with one WARNING,
    and the main module hidden while the pool started is whole again."""
    import subprocess
    import sys

    (tmp_path / "fork_refused.py").write_text(_FORK_REFUSED)
    script = tmp_path / "main_script.py"
    script.write_text(_FAULT_SCRIPT)
    # On PYTHONPATH: the forkserver imports its preload with the interpreter's own sys.path.
    path = [str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")]
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"], out.stdout
    # One WARNING, and the forkserver's one line naming the cause: no traceback.
    assert sorted(out.stderr.splitlines()) == [
        "WARNING app.sync.parsing parsing process failed (EOFError: unexpected EOF); parsing in this process",
        "parsing processes' forkserver stopped: BlockingIOError: [Errno 11] Resource temporarily unavailable",
    ], out.stderr


async def test_a_pool_process_that_will_not_end_is_killed_after_the_grace(monkeypatch, caplog):
    """A pool process blocked for good (on a queue lock a killed sibling held, in the
    wild) must not keep the pool, and so the worker's stop, waiting forever."""
    import time
    from concurrent.futures import ProcessPoolExecutor

    from app.sync import parsing

    monkeypatch.setattr(parsing, "SHUTDOWN_GRACE_SECONDS", 0.5)
    executor = ProcessPoolExecutor(max_workers=1, mp_context=parsing._context(),
                                   initializer=parsing._in_pool_process)
    try:
        with parsing._main_not_rerun():
            executor.submit(time.sleep, 3600)

        async def started():
            return [p for p in executor._processes.values() if p.is_alive()] or None

        [process] = await wait_for(started, what="the pool process")
        await asyncio.wait_for(asyncio.to_thread(parsing._shut_down, executor), timeout=30)
        assert not process.is_alive()
        assert f"killed parsing process(es) {process.pid}" in caplog.text
    finally:
        for leftover in list((executor._processes or {}).values()):
            leftover.kill()
