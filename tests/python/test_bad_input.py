"""The bad-input corpus (issue 19): a few hundred malformed or hostile requests
(bad_inputs.py) against the real server, one after another.

Every request has 30 s (some 5 s) to be answered. Over the whole corpus: no 5xx, no hang,
no dropped connection (a dropped connection means the server crashed or a handler
panicked); each case gets the status its entry names; REST and OpenAI errors come in
OpenAI's shape {"error": {"message", "type", "param", "code"}}; nothing from .git or
/etc/passwd comes back. Afterwards /health still answers 200, a tiny chat still answers
200, and the server's resident memory grew by at most 10%.

The corpus runs once (a module fixture); each case is then its own test, so that a report
names every case that failed. Run with -s for the summary line and the list of problems.
"""

import collections
import json
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

import httpx
import pytest

import bad_inputs
from bad_inputs import CASES, CLIENT_ERRORS, MCP_ANY, SESSION, Case

TINY_CHAT = {"model": "coder", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
# How much of an answer is kept (the leak checks read it); SSE streams stop earlier.
MAX_KEPT = 8 * 1024 * 1024
# Statuses hyper itself answers before any route runs: no JSON body is expected of them.
PROTOCOL_STATUSES = {414, 431}
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


# ---------------------------------------------------------------------------------------
# The server process and its memory


def server_pid(url: str) -> Optional[int]:
    """The pid of the process listening on `url`'s port: the socket's inode from
    /proc/net/tcp{,6}, then the process with that inode among its file descriptors."""
    port = urllib.parse.urlsplit(url).port
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def rss_kib(pid: Optional[int]) -> Optional[int]:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def mib(kib: Optional[int]) -> str:
    return "?" if kib is None else f"{kib / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------
# Hostile files inside the workspace


def make_hostile_files(workspace):
    made = []
    for name in (bad_inputs.FIFO, bad_inputs.FIFO_PY):
        path = workspace / name
        if not path.exists():
            os.mkfifo(path)
        made.append(path)
    for name, target in ((bad_inputs.PASSWD_LINK, "/etc/passwd"), (bad_inputs.GIT_CONFIG_LINK, ".git/config")):
        path = workspace / name
        if not path.is_symlink():
            os.symlink(target, path)
        made.append(path)
    return made


def release_fifo_readers(workspace) -> bool:
    """A server thread blocked opening one of the FIFOs for reading is let go: opening the
    write end (non-blocking) succeeds only when a reader waits, and closing it gives EOF."""
    released = False
    for name in (bad_inputs.FIFO, bad_inputs.FIFO_PY):
        try:
            fd = os.open(workspace / name, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue  # ENXIO: nobody is reading; ENOENT: gone
        os.close(fd)
        released = True
    return released


def remove_hostile_files(workspace, made):
    # A thread still blocked opening a FIFO could never be let go once its path is gone.
    for _ in range(20):
        release_fifo_readers(workspace)
        time.sleep(0.05)
    for path in made:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------------------
# Sending one case


@dataclass
class Outcome:
    status: Optional[int] = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    # None, "hang" (no complete answer in time) or "dropped" (the connection failed)
    failure: Optional[str] = None
    detail: str = ""

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def sse_messages(body: bytes):
    """The JSON payloads of an SSE body's data lines (or the body itself, if JSON)."""
    text = body.decode("utf-8", errors="replace")
    found = []
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            found.append(json.loads(stripped))
            return found
        except ValueError:
            pass
    for line in text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                found.append("[DONE]")
                continue
            try:
                found.append(json.loads(data))
            except ValueError:
                pass
    return found


def is_final(message) -> bool:
    """An SSE payload after which nothing more is needed: OpenAI's [DONE], a JSON-RPC
    response or error, or a batch of them."""
    if message == "[DONE]" or isinstance(message, list):
        return True
    return isinstance(message, dict) and "id" in message and ("result" in message or "error" in message)


def prepared_headers(case: Case, session: str):
    headers = {}
    for key, value in case.headers.items():
        headers[key.lower()] = None if value is None else value.replace(SESSION, session)
    if case.json is not bad_inputs.NO_JSON and "content-type" not in headers:
        headers["content-type"] = "application/json"
    return headers


def send_httpx(client: httpx.Client, base: str, case: Case, headers: dict, content: Optional[bytes]) -> Outcome:
    start = time.monotonic()
    deadline = start + case.timeout
    request = client.build_request(
        case.method,
        base + case.path,
        content=content,
        headers={k: v for k, v in headers.items() if v is not None},
        timeout=httpx.Timeout(case.timeout),
    )
    for key, value in headers.items():
        if value is None and key in request.headers:
            del request.headers[key]
    try:
        response = client.send(request, stream=True)
        try:
            sse = response.headers.get("content-type", "").startswith("text/event-stream")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    return Outcome(response.status_code, dict(response.headers), b"".join(chunks),
                                   time.monotonic() - start, "hang", f"still streaming after {case.timeout:.0f} s")
                if size > MAX_KEPT or (sse and any(is_final(m) for m in sse_messages(b"".join(chunks)))):
                    break
            return Outcome(response.status_code, dict(response.headers), b"".join(chunks), time.monotonic() - start)
        finally:
            response.close()
    except httpx.TimeoutException as e:
        return Outcome(elapsed=time.monotonic() - start, failure="hang", detail=f"{type(e).__name__} after {case.timeout:.0f} s")
    except httpx.TransportError as e:
        return Outcome(elapsed=time.monotonic() - start, failure="dropped", detail=f"{type(e).__name__}: {e}")


def _response_complete(data: bytes) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = data[:head_end].decode("latin-1").lower()
    rest = data[head_end + 4:]
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            return len(rest) >= int(value.strip() or 0)
        if name.strip() == "transfer-encoding" and "chunked" in value:
            return rest.endswith(b"0\r\n\r\n")
    return False


def _parse_raw(data: bytes):
    head_end = data.find(b"\r\n\r\n")
    head = data[:head_end].decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = data[head_end + 4:]
    if "chunked" in headers.get("transfer-encoding", ""):
        out, rest = bytearray(), body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        body = bytes(out)
    return status, headers, body


def send_raw(base: str, case: Case, headers: dict, body: bytes) -> Outcome:
    """One request over a plain socket, reading the answer while the body is still being
    written: a server may answer 413 and close long before a 20 MB body is through."""
    url = urllib.parse.urlsplit(base)
    start = time.monotonic()
    deadline = start + case.timeout
    try:
        sock = socket.create_connection((url.hostname, url.port), timeout=case.timeout)
    except OSError as e:
        return Outcome(elapsed=time.monotonic() - start, failure="dropped", detail=f"connect: {e}")
    lines = [f"{case.method} {case.path} HTTP/1.1", f"Host: {url.hostname}:{url.port}",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()

    def pump():
        try:
            sock.sendall(head)
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                sock.sendall(view[i:i + (1 << 16)])
        except OSError:
            pass  # the server stopped reading: its answer tells why

    writer = threading.Thread(target=pump, daemon=True)
    writer.start()
    data, error = bytearray(), None
    try:
        while not _response_complete(bytes(data)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    except OSError as e:
        error = e
    finally:
        sock.close()
        writer.join(timeout=5)
    elapsed = time.monotonic() - start
    if b"\r\n\r\n" not in data:
        if error is not None or elapsed < case.timeout:
            return Outcome(elapsed=elapsed, failure="dropped", detail=f"no answer, connection ended: {error or 'EOF'}")
        return Outcome(elapsed=elapsed, failure="hang", detail=f"no answer within {case.timeout:.0f} s")
    status, response_headers, response_body = _parse_raw(bytes(data))
    return Outcome(status, response_headers, response_body, elapsed)


def send(client, base, case: Case, session: str) -> Outcome:
    headers = prepared_headers(case, session)
    content = case.body_bytes()
    if case.raw:
        return send_raw(base, case, headers, content or b"")
    return send_httpx(client, base, case, headers, content)


# ---------------------------------------------------------------------------------------
# Judging one answer


def describe(expect: frozenset) -> str:
    if expect == CLIENT_ERRORS:
        return "a 4xx"
    if expect == MCP_ANY:
        return "200, 202 or a 4xx"
    return " or ".join(str(s) for s in sorted(expect))


def problems_of(case: Case, out: Outcome) -> list:
    if out.failure == "dropped":
        return [f"connection dropped (crash or panic?): {out.detail}"]
    if out.failure == "hang":
        return [f"hang: {out.detail}"]
    found = []
    snippet = out.text()[:300].replace("\n", " ")
    if out.elapsed > case.timeout:
        found.append(f"hang: answered after {out.elapsed:.1f} s (limit {case.timeout:.0f} s)")
    if out.status >= 500:
        found.append(f"server error {out.status}: {snippet}")
    elif out.status not in case.expect:
        found.append(f"status {out.status}, expected {describe(case.expect)}: {snippet}")
    is_mcp = case.path.startswith("/mcp")
    if case.path.startswith("/v1/messages") and out.status in (400, 404):
        try:
            body = json.loads(out.body)
            if body.get("type") != "error" or not body["error"].get("type") or not body["error"].get("message"):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            found.append(f"error body is not Anthropic's {{\"type\": \"error\", \"error\": {{type, message}}}}: {snippet!r}")
    elif not is_mcp and out.status >= 400 and case.method != "HEAD" and out.status not in PROTOCOL_STATUSES:
        try:
            error = json.loads(out.body)["error"]
            if not isinstance(error, dict) or not OPENAI_ERROR_KEYS <= error.keys() or not error.get("message"):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            found.append(f"error body is not OpenAI's {{\"error\": {{message, type, param, code}}}}: {snippet!r}")
        else:
            if case.param and out.status == 400 and error.get("param") not in case.param:
                found.append(f"error param is {error.get('param')!r}, expected {' or '.join(map(repr, case.param))}: "
                             f"{error.get('message', '')[:200]}")
    text = out.text()
    for secret in case.forbid:
        if secret in text:
            found.append(f"the answer contains {secret!r}: {snippet}")
    if case.mcp_error and out.status < 400:
        messages = [m for m in sse_messages(out.body) if isinstance(m, dict)]
        errored = any(
            "error" in m or (isinstance(m.get("result"), dict) and m["result"].get("isError") is True) for m in messages
        )
        if not errored:
            found.append(f"expected a JSON-RPC error or an isError tool result: {snippet}")
    return found


# ---------------------------------------------------------------------------------------
# The corpus, run once


@dataclass
class Report:
    outcomes: dict
    problems: dict
    setup: list
    rss_before: Optional[int]
    rss_after: Optional[int]
    pid: Optional[int]
    health: object
    chat: object
    git_output_written: bool
    released_fifo_readers: list
    # VmRSS (KiB) after each case, to tell which cases the memory went to
    rss_trace: dict

    def largest_rss_steps(self, count=8) -> str:
        steps, previous = [], self.rss_before
        for name, kib in self.rss_trace.items():
            if kib is not None and previous is not None and kib > previous:
                steps.append((kib - previous, name))
            previous = kib if kib is not None else previous
        return ", ".join(f"{name} +{mib(step)}" for step, name in sorted(steps, reverse=True)[:count])


def mcp_session(client, base, setup: list) -> str:
    """A session initialized the regular way, for the cases that need one."""
    init = Case("setup_initialize", "POST", "/mcp", json=bad_inputs.INITIALIZE, headers=bad_inputs.MCP_HEADERS)
    out = send(client, base, init, "")
    session = (out.headers or {}).get("mcp-session-id")
    if out.status != 200 or not session:
        setup.append(f"MCP initialize failed: {out.status} {out.failure or ''} {out.detail} {out.text()[:200]}")
        return "no-session"
    note = Case("setup_initialized", "POST", "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                headers=bad_inputs.MCP_SESSION_HEADERS)
    out = send(client, base, note, session)
    if out.status not in (200, 202):
        setup.append(f"MCP notifications/initialized failed: {out.status} {out.failure or ''} {out.text()[:200]}")
    return session


def status_or_error(call):
    try:
        return call().status_code
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"


@pytest.fixture(scope="module")
def corpus(server, workspace):
    setup = []
    pid = server_pid(server)
    if pid is None:
        setup.append(f"no process found listening on {server} (/proc/net/tcp)")
    if os.path.lexists(bad_inputs.GIT_OUTPUT_PROBE):
        os.unlink(bad_inputs.GIT_OUTPUT_PROBE)
    made = make_hostile_files(workspace)
    outcomes, problems, released, rss_trace = {}, {}, [], {}
    limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection per request
    try:
        with httpx.Client(limits=limits, timeout=30.0) as client:
            warm = client.post(f"{server}/v1/chat/completions", json=TINY_CHAT)
            assert warm.status_code == 200, warm.text
            rss_before = rss_kib(pid)
            session = mcp_session(client, server, setup)
            for case in CASES:
                out = send(client, server, case, session)
                outcomes[case.name] = out
                problems[case.name] = problems_of(case, out)
                if release_fifo_readers(workspace):
                    released.append(case.name)
                rss_trace[case.name] = rss_kib(pid)
            if session != "no-session":
                status_or_error(lambda: client.delete(f"{server}/mcp", headers={"mcp-session-id": session}))
            health = status_or_error(lambda: client.get(f"{server}/health"))
            chat = status_or_error(lambda: client.post(f"{server}/v1/chat/completions", json=TINY_CHAT))
            rss_after = rss_kib(pid)
            # A second pass tells a leak (growing again) from the allocator's high-water mark.
            second = mcp_session(client, server, setup)
            for case in CASES:
                send(client, server, case, second)
                release_fifo_readers(workspace)
            rss_second = rss_kib(pid)
    finally:
        remove_hostile_files(workspace, made)
    git_output_written = os.path.lexists(bad_inputs.GIT_OUTPUT_PROBE)

    report = Report(outcomes, problems, setup, rss_before, rss_after, pid, health, chat, git_output_written, released,
                    rss_trace)
    report.rss_second = rss_second
    print(f"\nRSS before={mib(rss_before)} after one pass={mib(rss_after)} after two={mib(rss_second)}")
    classes = collections.Counter()
    for out in outcomes.values():
        classes[out.failure or f"{out.status // 100}xx"] += 1
    failing = {name: p for name, p in problems.items() if p}
    print()
    for name, found in failing.items():
        case = next(c for c in CASES if c.name == name)
        print(f"  FAIL {name} ({case.method} {case.path[:60]}): {'; '.join(found)}")
    for line in setup:
        print(f"  SETUP {line}")
    if released:
        print(f"  server threads were blocked on a workspace FIFO after: {', '.join(released)}")
    if report.largest_rss_steps():
        print(f"  largest RSS steps: {report.largest_rss_steps()}")
    by_class = " ".join(f"{k}={v}" for k, v in sorted(classes.items()))
    print(
        f"bad-input corpus: {len(outcomes)} requests, {by_class}; 5xx={classes['5xx']} hangs={classes['hang']} "
        f"dropped={classes['dropped']}; cases failing={len(failing)}; health after={health} chat after={chat}; "
        f"RSS before={mib(rss_before)} after={mib(rss_after)} (pid {pid})"
    )
    return report


# ---------------------------------------------------------------------------------------
# The tests


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(corpus, case):
    found = corpus.problems[case.name]
    assert not found, f"{case.method} {case.path[:80]}: " + "; ".join(found)


def test_no_5xx_no_hang_no_dropped_connection(corpus):
    setup = corpus.setup
    assert not setup, setup
    bad = {
        name: out.failure or out.status
        for name, out in corpus.outcomes.items()
        if out.failure or out.status >= 500 or out.elapsed > 30
    }
    assert not bad, f"5xx, hangs or dropped connections: {bad}"


def test_the_server_still_answers_after_the_corpus(corpus):
    health, chat = corpus.health, corpus.chat
    assert health == 200, f"GET /health after the corpus: {health}"
    assert chat == 200, f"a tiny chat after the corpus: {chat}"


def test_no_server_thread_was_left_blocked_on_a_fifo(corpus):
    released = corpus.released_fifo_readers
    assert not released, f"the server opened a workspace FIFO and blocked, after: {released}"


def test_git_diff_options_wrote_no_file(corpus):
    written = corpus.git_output_written
    assert not written, f"{bad_inputs.GIT_OUTPUT_PROBE} was written by git --output"


def test_resident_memory_does_not_grow_with_the_corpus(corpus):
    pid, before, after, second = corpus.pid, corpus.rss_before, corpus.rss_after, corpus.rss_second
    assert pid is not None, "the server's pid was not found (via /proc/net/tcp)"
    assert before is not None, "VmRSS could not be read before the corpus"
    assert after is not None and second is not None, f"the server (pid {pid}) is gone after the corpus"
    # The first pass may raise the allocator's high-water mark once; a leak grows again on the second.
    assert after <= before * 1.10, (
        f"RSS grew from {mib(before)} to {mib(after)}; largest steps: {corpus.largest_rss_steps()}"
    )
    assert second <= after * 1.03, f"RSS grew again on a second pass: {mib(after)} -> {mib(second)}"

