# quorum's pytest fork server. It imports pytest and the installed pytest plugins once,
# then forks a child per request, so that a test run skips the interpreter's start and
# the plugins' imports (an ML environment's plugins take a second or more each start).
#
# Requests come one JSON object a line on stdin: {"id", "argv", "cwd", "env", "path0",
# "out"}. The answers go one a line to stdout: {"ready"} once the imports are done, then
# {"id", "pid"} when a run's child started (or {"id", "error"}), and {"id", "exit"} when
# it ended (the negated signal number if a signal ended it).
import importlib
import json
import os
import select
import signal
import sys

PROTOCOL = sys.stdout


def send(message):
    PROTOCOL.write(json.dumps(message) + "\n")
    PROTOCOL.flush()


def preload():
    import pytest  # noqa: F401
    import _pytest.config
    from _pytest.assertion.rewrite import AssertionRewritingHook
    from importlib.metadata import entry_points

    for name in _pytest.config.default_plugins:
        try:
            importlib.import_module("_pytest." + name)
        except ImportError:
            pass
    try:
        plugins = entry_points(group="pytest11")
    except TypeError:  # Python 3.8 and 3.9
        plugins = entry_points().get("pytest11", [])
    for plugin in plugins:
        try:
            plugin.load()
        except Exception:
            # The child's pytest loads it again and reports it as a cold start would.
            pass
    # A cold start rewrites the asserts of the plugins' packages, imported after pytest
    # marks them; here they were imported before, which pytest would warn about in
    # every run. Only the packages imported now are spared the warning.
    preloaded = set(sys.modules)
    warn = AssertionRewritingHook._warn_already_imported

    def warn_unless_preloaded(self, name):
        if name not in preloaded:
            warn(self, name)

    AssertionRewritingHook._warn_already_imported = warn_unless_preloaded


def thread_count():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def fork_safe_thread_count():
    """The threads left once a fork has happened: a pool that stops its threads before a
    fork (OpenBLAS, which numpy loads with a thread per core, does) is safe to fork."""
    if thread_count() == 1:
        return 1
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return thread_count()


def child(request, base_path, wakeup):
    """Runs in the forked child: becomes the run's own process (group, directory,
    environment, module path, output), runs pytest and exits with its status."""
    try:
        signal.set_wakeup_fd(-1)
        for fd in wakeup:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(request["out"], os.O_WRONLY | os.O_APPEND)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [request["path0"]] + extra + [p for p in base_path if p not in extra]
        sys.argv = list(request["argv"])
        importlib.invalidate_caches()
        import pytest

        code = int(pytest.main(sys.argv[1:]))
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException as error:  # noqa: BLE001 - the run's status says it failed
        try:
            os.write(2, f"quorum fork server: {error!r}\n".encode())
        finally:
            code = 4
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def start(request, base_path, wakeup):
    try:
        pid = os.fork()
    except OSError as error:
        send({"id": request["id"], "error": str(error)})
        return None
    if pid == 0:
        os.setpgid(0, 0)
        child(request, base_path, wakeup)
    # Both sides set the group, so that the server's answer names a group that exists
    # whichever of them runs first; a kill of the group then reaches the whole run.
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    send({"id": request["id"], "pid": pid})
    return pid


def reap(running):
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        id = running.pop(pid, None)
        if id is not None:
            code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
            send({"id": id, "exit": code})


def serve():
    # The server's own module path, without the directory of `-c`: the child puts its
    # tree's in front of it.
    base_path = [p for p in sys.path[1:]]
    preload()
    wakeup = os.pipe()
    os.set_blocking(wakeup[0], False)
    os.set_blocking(wakeup[1], False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    threads = fork_safe_thread_count()
    if threads > 1:
        # A fork copies only the calling thread: a lock another thread held stays held
        # in the child forever. A plugin whose threads keep running through a fork gets
        # cold starts.
        send({"ready": False, "why": f"{threads} threads after the plugins' imports"})
        return
    send({"ready": True, "python": sys.version.split()[0]})
    stdin = sys.stdin.buffer
    running = {}
    pending = b""
    while True:
        readable, _, _ = select.select([stdin.raw, wakeup[0]], [], [])
        if wakeup[0] in readable:
            try:
                while os.read(wakeup[0], 512):
                    pass
            except BlockingIOError:
                pass
        reap(running)
        if stdin.raw in readable:
            chunk = os.read(stdin.raw.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = start(request, base_path, wakeup)
                if pid is not None:
                    running[pid] = request["id"]
    # quorum has gone: the runs still going keep their own groups, as cold starts would.


serve()
