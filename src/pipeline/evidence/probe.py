# The behaviour probe test quorum writes into a candidate's worktree (see probes.rs):
# the __NAMES__ are filled in before it is written.
import ast, importlib, itertools, json, linecache, os, re, signal, sys
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODULES = __MODULES__
CALLS = __CALLS__
CRASHES = __CRASHES__


def _show(value, depth=0, use=True):
    if depth > 8:
        return "..."
    show = lambda v: _show(v, depth + 1, use)
    if isinstance(value, (set, frozenset)):
        items = ", ".join(sorted(show(v) for v in value))
        return type(value).__name__ + ("({" + items + "})" if items else "()")
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(show(k) + ": " + show(v) for k, v in value.items()) + "}"
    if isinstance(value, Iterator):
        # Showing an argument before the call must not use it up.
        return "iter" + show(list(itertools.islice(value, 100))) if use else "iter"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _call(call, space):
    # A call with plain arguments runs on values kept aside, so that what it does to
    # them shows too; anything else is evaluated as it stands.
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        node = None
    plain = isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args) and all(k.arg for k in node.keywords)
    if not plain:
        return _show(eval(call, space)), []
    value = lambda n: eval(compile(ast.Expression(n), "<probe>", "eval"), space)
    function = value(node.func)
    args = [value(a) for a in node.args]
    kwargs = {k.arg: value(k.value) for k in node.keywords}

    def kept():
        try:
            return [_show(a, use=False) for a in args + list(kwargs.values())]
        except Exception:
            return None

    before = kept()
    shown = _show(function(*args, **kwargs))
    after = kept()
    return shown, [i + 1 for i, (b, a) in enumerate(zip(before or [], after or [])) if b != a]


def _crashed(error):
    # The innermost frame in the workspace's code (not this file): a crash unless that
    # line is a `raise` statement. None there: the probe's own expression failed.
    tb, frame = error.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        path = os.path.abspath(name)
        if not name.startswith("<") and path.startswith(HERE + os.sep) and path != os.path.abspath(__file__) and "site-packages" not in path:
            frame = tb
        tb = tb.tb_next
    return frame is not None and not linecache.getline(frame.tb_frame.f_code.co_filename, frame.tb_lineno).strip().startswith("raise")


def _timeout(signum, frame):
    raise TimeoutError("the call took over __CALL_SECS__ s")


def test_quorum_probes():
    space = {}
    for name in MODULES:
        space.update(vars(importlib.import_module(name)))
    # Calls may name the module as the task does (`pkg.mod.f(1)`); a name the modules
    # define wins (`from tqdm import *` binds the class `tqdm`).
    for name in MODULES:
        top = name.split(".")[0]
        space.setdefault(top, sys.modules[top])
    signal.signal(signal.SIGALRM, _timeout)
    seen = []
    for call in CALLS:
        signal.alarm(__CALL_SECS__)
        try:
            shown, changed = _call(call, dict(space))
            seen.append({"value": shown[:300], "changed": changed})
        except BaseException as e:
            name = type(e).__name__
            seen.append({"raises": name, "crash": name in CRASHES and _crashed(e)})
        finally:
            signal.alarm(0)
    with open(os.path.join(HERE, "__OUT__"), "w") as f:
        json.dump(seen, f)
