#!/usr/bin/env python3
"""Tool-calling benchmark for quorum (or any OpenAI-compatible server).

Usage:
  python3 run.py [--base-url URL] [--model NAME] [--out FILE.json] [--no-grammar]
                 [--limit N] [--kind KIND ...] [--prompts FILE] [--max-tokens N]
                 [--timeout S] [--api-key KEY] [-v]
  python3 run.py --check        # validate prompts.jsonl, no server
  python3 run.py --self-test    # test the scoring logic (and, if `openai` is
                                # installed, the request path against a mock server)

Scores (per kind and overall; prompts that hit a server error are left out of
the rates and counted in the "err" column):
  valid calls  - % of returned tool calls whose name is an offered tool and whose
                 arguments parse as a JSON object that validates against the schema
  right fn     - % of prompts with expected calls whose called names equal the
                 expected names (as a set; as a multiset for kind "parallel")
  right args   - % of prompts with expected calls where every expected call is
                 matched one-to-one by a returned call of the same name whose
                 arguments match every expected argument (strings: stripped,
                 case-insensitive; numbers: numerically; arrays: order-insensitive;
                 "loose" keys: presence only). Extra, unexpected arguments are allowed.
  false calls  - % of "none" prompts answered with any tool call
  missed calls - % of prompts with expected calls answered with no tool call
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROMPTS = os.path.join(HERE, "prompts.jsonl")
KINDS = ["pick", "args", "none", "parallel"]


# --------------------------------------------------------------------------
# Minimal JSON-schema validator for the subset used by the prompts:
# type (object/string/integer/number/boolean/array/null, or a list of them),
# enum, required, properties, additionalProperties (bool), items.
# --------------------------------------------------------------------------
def _is_type(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if t == "null":
        return value is None
    raise ValueError("unsupported schema type %r" % (t,))


def validate(schema, value, where="$"):
    """Returns a list of error strings (empty when value is valid)."""
    if not isinstance(schema, dict):
        return ["%s: schema is not an object" % where]
    errs = []
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_is_type(value, x) for x in types):
            return ["%s: expected %s, got %s" % (where, "/".join(types), type(value).__name__)]
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in enum %r" % (where, value, schema["enum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                errs.append("%s: missing required property %r" % (where, k))
        for k, v in value.items():
            if k in props:
                errs.extend(validate(props[k], v, "%s.%s" % (where, k)))
            elif schema.get("additionalProperties") is False:
                errs.append("%s: unexpected property %r" % (where, k))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs.extend(validate(schema["items"], v, "%s[%d]" % (where, i)))
    return errs


# --------------------------------------------------------------------------
# Argument matching
# --------------------------------------------------------------------------
def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def values_equal(exp, act):
    if isinstance(exp, bool):
        return isinstance(act, bool) and act == exp
    if _is_num(exp):
        return _is_num(act) and abs(float(act) - float(exp)) <= 1e-6 * max(1.0, abs(float(exp)))
    if isinstance(exp, str):
        return isinstance(act, str) and act.strip().casefold() == exp.strip().casefold()
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            return False
        used = [False] * len(act)
        for e in exp:  # order-insensitive; greedy is fine for primitive items
            for j, a in enumerate(act):
                if not used[j] and values_equal(e, a):
                    used[j] = True
                    break
            else:
                return False
        return True
    if isinstance(exp, dict):
        return isinstance(act, dict) and all(k in act and values_equal(v, act[k]) for k, v in exp.items())
    return exp == act


def call_matches(expect, call):
    """expect: {"name","arguments",["loose"]}; call: {"name","arguments"(dict or raw str)}."""
    if call.get("name") != expect["name"]:
        return False
    args = call.get("arguments")
    if not isinstance(args, dict):
        return False
    loose = set(expect.get("loose", []))
    for k in loose:
        if k not in args:
            return False
    for k, v in expect.get("arguments", {}).items():
        if k in loose:
            continue
        if k not in args or not values_equal(v, args[k]):
            return False
    return True


def all_expected_matched(expects, calls):
    """One-to-one (bipartite) matching of expected calls to returned calls."""
    owner = {}  # call index -> expect index

    def try_assign(i, seen):
        for j, call in enumerate(calls):
            if j in seen or not call_matches(expects[i], call):
                continue
            seen.add(j)
            if j not in owner or try_assign(owner[j], seen):
                owner[j] = i
                return True
        return False

    return all(try_assign(i, set()) for i in range(len(expects)))


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------
def tool_schemas(prompt):
    return {t["function"]["name"]: t["function"].get("parameters", {"type": "object"})
            for t in prompt.get("tools", [])}


def check_call(call, schemas):
    """Returns (valid, reason)."""
    name = call.get("name")
    if name not in schemas:
        return False, "unknown tool %r" % (name,)
    args = call.get("arguments")
    if not isinstance(args, dict):
        if isinstance(args, str):
            return False, "arguments are not valid JSON"
        return False, "arguments are not a JSON object"
    errs = validate(schemas[name], args)
    if errs:
        return False, "; ".join(errs)
    return True, ""


def score_record(prompt, rec):
    """Adds per-prompt score fields to rec (in place) and returns it."""
    schemas = tool_schemas(prompt)
    calls = rec.get("tool_calls") or []
    checks = [check_call(c, schemas) for c in calls]
    for c, (ok, why) in zip(calls, checks):
        c["valid"] = ok
        if not ok:
            c["invalid_reason"] = why
    expects = prompt.get("expect", [])
    s = {"errored": bool(rec.get("error")), "n_calls": len(calls),
         "n_valid": sum(1 for ok, _ in checks if ok)}
    if expects:
        got = [c.get("name") for c in calls]
        want = [e["name"] for e in expects]
        if prompt["kind"] == "parallel":
            s["right_fn"] = Counter(got) == Counter(want)
        else:
            s["right_fn"] = set(got) == set(want)
        s["right_args"] = all_expected_matched(expects, calls)
        s["missed"] = len(calls) == 0
    else:
        s["false_call"] = len(calls) > 0
    rec["score"] = s
    return rec


def _rate(num, den):
    return {"pct": (100.0 * num / den) if den else None, "num": num, "den": den}


def aggregate(prompts, records):
    by_id = {p["id"]: p for p in prompts}
    groups = {k: [] for k in KINDS}
    for r in records:
        groups.setdefault(by_id[r["id"]]["kind"], []).append(r)
    groups["overall"] = list(records)
    out = {}
    for g, recs in groups.items():
        if g != "overall" and not recs:
            continue
        ok = [r for r in recs if not r["score"]["errored"]]
        exp = [r for r in ok if "right_fn" in r["score"]]
        non = [r for r in ok if "false_call" in r["score"]]
        lats = [r["latency_s"] for r in ok if r.get("latency_s") is not None]
        out[g] = {
            "prompts": len(recs),
            "errors": len(recs) - len(ok),
            "valid_calls": _rate(sum(r["score"]["n_valid"] for r in ok), sum(r["score"]["n_calls"] for r in ok)),
            "right_function": _rate(sum(r["score"]["right_fn"] for r in exp), len(exp)),
            "right_arguments": _rate(sum(r["score"]["right_args"] for r in exp), len(exp)),
            "false_calls": _rate(sum(r["score"]["false_call"] for r in non), len(non)),
            "missed_calls": _rate(sum(r["score"]["missed"] for r in exp), len(exp)),
            "median_latency_s": statistics.median(lats) if lats else None,
        }
    return out


def format_table(scores):
    cols = [("valid_calls", "valid calls"), ("right_function", "right fn"),
            ("right_arguments", "right args"), ("false_calls", "false calls"),
            ("missed_calls", "missed")]

    def cell(r):
        if not r["den"]:
            return "-"
        return "%5.1f%% %d/%d" % (r["pct"], r["num"], r["den"])

    head = ["kind", "n", "err"] + [c[1] for c in cols] + ["p50 lat"]
    rows = []
    for g, s in scores.items():
        lat = "-" if s["median_latency_s"] is None else "%.2fs" % s["median_latency_s"]
        rows.append([g, str(s["prompts"]), str(s["errors"])] + [cell(s[k]) for k, _ in cols] + [lat])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    for r in rows:
        if r[0] == "overall":
            lines.append("  ".join("-" * w for w in widths))
        lines.append(fmt(r))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Prompt file checks
# --------------------------------------------------------------------------
def load_prompts(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_prompts(path):
    """Returns (prompts, errors)."""
    errors, prompts, seen = [], [], set()
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                errors.append("line %d: blank line" % ln)
                continue
            try:
                p = json.loads(line)
            except ValueError as e:
                errors.append("line %d: invalid JSON: %s" % (ln, e))
                continue
            prompts.append(p)
            pid = p.get("id")
            tag = "line %d (%s)" % (ln, pid)
            if pid in seen:
                errors.append("%s: duplicate id" % tag)
            seen.add(pid)
            if p.get("kind") not in KINDS:
                errors.append("%s: bad kind %r" % (tag, p.get("kind")))
            msgs = p.get("messages")
            if not msgs or msgs[-1].get("role") != "user" or not all(
                    m.get("role") in ("system", "user") and isinstance(m.get("content"), str) for m in msgs):
                errors.append("%s: messages must be system/user with string content, ending with user" % tag)
            tools = p.get("tools") or []
            if not tools:
                errors.append("%s: no tools" % tag)
            names = [t.get("function", {}).get("name") for t in tools]
            if len(set(names)) != len(names):
                errors.append("%s: duplicate tool names" % tag)
            for t in tools:
                if t.get("type") != "function" or not t.get("function", {}).get("description"):
                    errors.append("%s: malformed tool %r" % (tag, t))
                params = t.get("function", {}).get("parameters", {})
                if params.get("type") != "object":
                    errors.append("%s: parameters of %s must be type object" % (tag, t.get("function", {}).get("name")))
                for k in params.get("required", []):
                    if k not in params.get("properties", {}):
                        errors.append("%s: required %r not in properties" % (tag, k))
            schemas = tool_schemas(p) if tools else {}
            exp = p.get("expect")
            if not isinstance(exp, list):
                errors.append("%s: expect must be a list" % tag)
                continue
            if p.get("kind") == "none" and exp:
                errors.append("%s: kind none must have empty expect" % tag)
            if p.get("kind") in ("pick", "args") and len(exp) != 1:
                errors.append("%s: kind %s should expect exactly one call" % (tag, p["kind"]))
            if p.get("kind") == "parallel" and len(exp) < 2:
                errors.append("%s: kind parallel needs >= 2 expected calls" % tag)
            if p.get("kind") == "pick" and not 3 <= len(tools) <= 5:
                errors.append("%s: pick prompts should offer 3-5 tools" % tag)
            for e in exp:
                if e.get("name") not in schemas:
                    errors.append("%s: expected tool %r not offered" % (tag, e.get("name")))
                    continue
                errs = validate(schemas[e["name"]], e.get("arguments"))
                if errs:
                    errors.append("%s: expected args invalid: %s" % (tag, "; ".join(errs)))
                props = schemas[e["name"]].get("properties", {})
                for k in e.get("loose", []):
                    if k not in props:
                        errors.append("%s: loose key %r not a property" % (tag, k))
    return prompts, errors


# --------------------------------------------------------------------------
# Running against a server
# --------------------------------------------------------------------------
def parse_arguments(raw):
    if isinstance(raw, dict):
        return raw
    try:
        v = json.loads(raw)
    except (TypeError, ValueError):
        return raw
    return v if isinstance(v, dict) else raw


def run_prompt(client, prompt, args):
    rec = {"id": prompt["id"], "kind": prompt["kind"], "tool_calls": [], "content": None,
           "finish_reason": None, "latency_s": None, "error": None}
    kw = dict(model=args.model, messages=prompt["messages"], tools=prompt["tools"],
              tool_choice="auto", temperature=0)
    if args.max_tokens:
        kw["max_tokens"] = args.max_tokens
    if args.no_grammar:
        kw["extra_body"] = {"tool_grammar": False}
    t0 = time.perf_counter()
    try:
        resp = client.chat.completions.create(**kw)
    except Exception as e:  # noqa: BLE001 - record any server / transport error and go on
        rec["latency_s"] = time.perf_counter() - t0
        rec["error"] = "%s: %s" % (type(e).__name__, e)
        return rec
    rec["latency_s"] = time.perf_counter() - t0
    try:
        choice = resp.choices[0]
        msg = choice.message
        rec["finish_reason"] = choice.finish_reason
        rec["content"] = msg.content
        for tc in msg.tool_calls or []:
            fn = getattr(tc, "function", None)
            raw = getattr(fn, "arguments", None)
            rec["tool_calls"].append({"id": getattr(tc, "id", None), "name": getattr(fn, "name", None),
                                      "arguments": parse_arguments(raw), "raw_arguments": raw})
        usage = getattr(resp, "usage", None)
        if usage is not None:
            rec["usage"] = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    except Exception as e:  # noqa: BLE001 - malformed response
        rec["error"] = "bad response: %s: %s" % (type(e).__name__, e)
    return rec


def describe(rec):
    s = rec["score"]
    if rec.get("error"):
        return "ERROR " + rec["error"][:120]
    calls = ", ".join("%s(%s)%s" % (c["name"], json.dumps(c["arguments"], ensure_ascii=False)[:80],
                                    "" if c.get("valid") else "!") for c in rec["tool_calls"]) or "<no call>"
    if "right_fn" in s:
        mark = "ok " if s["right_args"] else ("fn " if s["right_fn"] else "BAD")
    else:
        mark = "ok " if not s["false_call"] else "BAD"
    return "%s %-8s %s" % (mark, rec.get("finish_reason"), calls)


def run_bench(args):
    from openai import OpenAI  # imported here so --check / --self-test need no deps

    prompts = load_prompts(args.prompts)
    if args.kind:
        prompts = [p for p in prompts if p["kind"] in args.kind]
    if args.limit:
        prompts = prompts[:args.limit]
    client = OpenAI(base_url=args.base_url, api_key=args.api_key or os.environ.get("OPENAI_API_KEY") or "none",
                    timeout=args.timeout, max_retries=0)
    records = []
    for i, p in enumerate(prompts, 1):
        rec = score_record(p, run_prompt(client, p, args))
        records.append(rec)
        print("[%2d/%d] %-12s %6.2fs %s" % (i, len(prompts), p["id"], rec["latency_s"] or 0, describe(rec)),
              flush=True)
        if args.verbose and rec.get("content"):
            print("        text: %s" % rec["content"].strip().replace("\n", " ")[:200])
    scores = aggregate(prompts, records)
    print()
    print("model=%s base_url=%s grammar=%s" % (args.model, args.base_url, "off" if args.no_grammar else "default"))
    print(format_table(scores))
    if args.out:
        doc = {"config": {"base_url": args.base_url, "model": args.model, "no_grammar": args.no_grammar,
                          "limit": args.limit, "kind": args.kind, "max_tokens": args.max_tokens,
                          "prompts": os.path.abspath(args.prompts),
                          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
               "scores": scores, "results": records}
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
        print("wrote %s" % args.out)
    return 0


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------
def _fake(pid, kind, calls=None, error=None, latency=1.0):
    tcs = []
    for c in calls or []:
        raw = c[1] if isinstance(c[1], str) else json.dumps(c[1])
        tcs.append({"name": c[0], "arguments": parse_arguments(raw), "raw_arguments": raw})
    return {"id": pid, "kind": kind, "tool_calls": tcs, "content": None if tcs else "hello",
            "finish_reason": "tool_calls" if tcs else "stop", "latency_s": latency, "error": error}


def self_test(prompts_path):
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    # validator
    sch = {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "integer"}, "b": {"type": "string", "enum": ["x", "y"]},
        "c": {"type": "array", "items": {"type": "string"}}, "d": {"type": "boolean"}, "e": {"type": "number"}}}
    expect(validate(sch, {"a": 1}) == [], "validator: minimal ok")
    expect(validate(sch, {"a": 2.0, "e": 3}) == [], "validator: 2.0 is an integer, 3 is a number")
    expect(validate(sch, {}) != [], "validator: missing required")
    expect(validate(sch, {"a": "1"}) != [], "validator: string is not integer")
    expect(validate(sch, {"a": True}) != [], "validator: bool is not integer")
    expect(validate(sch, {"a": 1.5}) != [], "validator: 1.5 is not integer")
    expect(validate(sch, {"a": 1, "b": "z"}) != [], "validator: enum")
    expect(validate(sch, {"a": 1, "c": ["p", 3]}) != [], "validator: array items")
    expect(validate(sch, {"a": 1, "d": "true"}) != [], "validator: string is not boolean")
    expect(validate(sch, {"a": 1, "zz": 1}) == [], "validator: extra props allowed by default")
    expect(validate(dict(sch, additionalProperties=False), {"a": 1, "zz": 1}) != [], "validator: additionalProperties")
    expect(validate(sch, []) != [], "validator: top-level type")

    # value matching
    expect(values_equal("Lisbon", "  lisbon "), "match: case/strip")
    expect(not values_equal("Lisbon", "Lisboa"), "match: different string")
    expect(values_equal(250, 250.0) and values_equal(1234.56, 1234.56000001), "match: numeric")
    expect(not values_equal(250, "250"), "match: string is not number")
    expect(not values_equal(True, 1) and not values_equal(1, True), "match: bool vs int")
    expect(values_equal(["a@x", "b@x"], ["B@x", "a@x"]), "match: arrays order-insensitive")
    expect(not values_equal(["a", "a"], ["a", "b"]), "match: arrays multiset")

    W = {"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {
        "type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}
    S = {"type": "function", "function": {"name": "lookup_stock", "description": "s", "parameters": {
        "type": "object", "required": ["symbol"], "properties": {"symbol": {"type": "string"}}}}}
    E = {"type": "function", "function": {"name": "send_email", "description": "e", "parameters": {
        "type": "object", "required": ["to", "body"], "properties": {
            "to": {"type": "string"}, "body": {"type": "string"}}}}}
    um = [{"role": "user", "content": "x"}]
    prompts = [
        {"id": "p1", "kind": "pick", "messages": um, "tools": [W, S],
         "expect": [{"name": "get_weather", "arguments": {"city": "Lisbon"}}]},
        {"id": "p2", "kind": "pick", "messages": um, "tools": [W, S],
         "expect": [{"name": "lookup_stock", "arguments": {"symbol": "NVDA"}}]},
        {"id": "a1", "kind": "args", "messages": um, "tools": [W],
         "expect": [{"name": "get_weather", "arguments": {"city": "Denver", "unit": "fahrenheit"}}]},
        {"id": "a2", "kind": "args", "messages": um, "tools": [E],
         "expect": [{"name": "send_email", "arguments": {"to": "a@b.c", "body": "hi"}, "loose": ["body"]}]},
        {"id": "a3", "kind": "args", "messages": um, "tools": [W],
         "expect": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"id": "n1", "kind": "none", "messages": um, "tools": [W], "expect": []},
        {"id": "n2", "kind": "none", "messages": um, "tools": [W], "expect": []},
        {"id": "n3", "kind": "none", "messages": um, "tools": [W], "expect": []},
        {"id": "x1", "kind": "parallel", "messages": um, "tools": [W, S],
         "expect": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_weather", "arguments": {"city": "Tokyo"}}]},
        {"id": "x2", "kind": "parallel", "messages": um, "tools": [W, S],
         "expect": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_weather", "arguments": {"city": "Tokyo"}}]},
        {"id": "x3", "kind": "parallel", "messages": um, "tools": [W, S],
         "expect": [{"name": "get_weather", "arguments": {"city": "Berlin"}},
                    {"name": "lookup_stock", "arguments": {"symbol": "SAP"}}]},
    ]
    records = [
        _fake("p1", "pick", [("get_weather", {"city": "lisbon", "unit": "celsius"})], latency=1.0),  # right, extra arg ok
        _fake("p2", "pick", [("get_weather", {"city": "NVDA"})], latency=2.0),       # wrong function
        _fake("a1", "args", [("get_weather", {"city": "Denver", "unit": "kelvin"})], latency=3.0),  # right fn, bad enum
        _fake("a2", "args", [("send_email", {"to": "A@B.C", "body": "whatever text"})], latency=4.0),  # loose ok
        _fake("a3", "args", [("get_weather", '{"city": "Oslo"')], latency=5.0),      # broken JSON
        _fake("n1", "none", [], latency=6.0),                                          # correct: text only
        _fake("n2", "none", [("get_weather", {"city": "Rome"})], latency=7.0),        # false call
        _fake("n3", "none", error="APIStatusError: 500", latency=None),              # server error
        _fake("x1", "parallel", [("get_weather", {"city": "Tokyo"}), ("get_weather", {"city": "Paris"})],
              latency=8.0),                                                            # right, any order
        _fake("x2", "parallel", [("get_weather", {"city": "Paris"})], latency=9.0),  # only one call
        _fake("x3", "parallel", [], latency=10.0),                                     # missed
    ]
    for p, r in zip(prompts, records):
        score_record(p, r)
    sc = {r["id"]: r["score"] for r in records}
    expect(sc["p1"]["right_fn"] and sc["p1"]["right_args"], "score: p1 right")
    expect(not sc["p2"]["right_fn"] and not sc["p2"]["right_args"], "score: p2 wrong fn")
    expect(sc["a1"]["right_fn"] and not sc["a1"]["right_args"] and sc["a1"]["n_valid"] == 0, "score: a1 bad enum")
    expect(sc["a2"]["right_args"] and sc["a2"]["n_valid"] == 1, "score: a2 loose body")
    expect(sc["a3"]["right_fn"] and not sc["a3"]["right_args"] and sc["a3"]["n_valid"] == 0, "score: a3 bad json")
    expect(not sc["n1"]["false_call"] and sc["n2"]["false_call"] and sc["n3"]["errored"], "score: none prompts")
    expect(sc["x1"]["right_fn"] and sc["x1"]["right_args"], "score: x1 parallel any order")
    expect(not sc["x2"]["right_fn"] and not sc["x2"]["right_args"] and not sc["x2"]["missed"], "score: x2 one of two")
    expect(sc["x3"]["missed"] and not sc["x3"]["right_fn"], "score: x3 missed")

    # loose key must be present
    r = score_record(prompts[3], _fake("a2", "args", [("send_email", {"to": "a@b.c"})]))
    expect(not r["score"]["right_args"] and r["score"]["n_valid"] == 0, "score: loose key absent")
    # unknown tool name is invalid
    r = score_record(prompts[0], _fake("p1", "pick", [("get_wether", {"city": "Lisbon"})]))
    expect(r["score"]["n_valid"] == 0 and not r["score"]["right_fn"], "score: unknown tool")
    # non-parallel uses a set: a duplicated right call still counts as right function
    r = score_record(prompts[0], _fake("p1", "pick", [("get_weather", {"city": "Lisbon"})] * 2))
    expect(r["score"]["right_fn"] and r["score"]["right_args"], "score: set semantics for pick")
    # parallel uses a multiset: an extra third call is wrong function but the expected args are all matched
    r = score_record(prompts[8], _fake("x1", "parallel", [("get_weather", {"city": "Paris"})] * 2 +
                                       [("get_weather", {"city": "Tokyo"})]))
    expect(not r["score"]["right_fn"] and r["score"]["right_args"], "score: multiset for parallel")
    # one returned call cannot satisfy two identical expectations
    p_dup = dict(prompts[8], expect=[prompts[8]["expect"][0]] * 2)
    r = score_record(p_dup, _fake("x1", "parallel", [("get_weather", {"city": "Paris"})]))
    expect(not r["score"]["right_args"], "score: one-to-one matching")

    agg = aggregate(prompts, records)
    o = agg["overall"]

    def rate(x):
        return (x["num"], x["den"])

    # returned calls (errors excluded): p1 1 valid, p2 1 valid, a1 invalid, a2 valid, a3 invalid, n2 valid,
    # x1 2 valid, x2 1 valid  -> 7 / 9
    expect(rate(o["valid_calls"]) == (7, 9), "agg: valid calls %r" % (rate(o["valid_calls"]),))
    # expected-call prompts: p1 p2 a1 a2 a3 x1 x2 x3 = 8; right fn: p1 a1 a2 a3 x1 = 5
    expect(rate(o["right_function"]) == (5, 8), "agg: right fn %r" % (rate(o["right_function"]),))
    expect(rate(o["right_arguments"]) == (3, 8), "agg: right args %r" % (rate(o["right_arguments"]),))
    expect(rate(o["missed_calls"]) == (1, 8), "agg: missed %r" % (rate(o["missed_calls"]),))
    expect(rate(o["false_calls"]) == (1, 2), "agg: false calls %r" % (rate(o["false_calls"]),))
    expect(o["errors"] == 1 and o["prompts"] == 11, "agg: errors")
    expect(o["median_latency_s"] == 5.5, "agg: median latency %r" % (o["median_latency_s"],))
    expect(rate(agg["pick"]["right_function"]) == (1, 2), "agg: per-kind pick")
    expect(agg["none"]["right_function"]["den"] == 0 and agg["pick"]["false_calls"]["den"] == 0, "agg: n/a cells")
    expect(rate(agg["parallel"]["right_arguments"]) == (1, 3), "agg: per-kind parallel")
    table = format_table(agg)
    expect("overall" in table and "-" in table, "table renders")
    print(table)

    # prompt file
    if os.path.exists(prompts_path):
        ps, errs = check_prompts(prompts_path)
        expect(not errs, "prompts file: %s" % "; ".join(errs[:5]))
        # the expected calls, replayed as responses, must score perfectly
        replay = []
        for p in ps:
            rec = _fake(p["id"], p["kind"], [(e["name"], e["arguments"]) for e in p["expect"]])
            replay.append(score_record(p, rec))
        a = aggregate(ps, replay)["overall"]
        expect(a["valid_calls"]["pct"] == 100 and a["right_function"]["pct"] == 100 and
               a["right_arguments"]["pct"] == 100 and a["false_calls"]["num"] == 0 and
               a["missed_calls"]["num"] == 0, "prompts file: replaying expectations scores 100%%: %r" % a)
        print("prompts file: %d prompts, replay of expected calls scores 100%%" % len(ps))
    else:
        print("prompts file %s not found, skipped" % prompts_path)

    failures.extend(_mock_server_test(prompts_path))

    if failures:
        print("SELF-TEST FAILED:")
        for f in failures:
            print("  - " + f)
        return 1
    print("self-test passed")
    return 0


def _mock_server_test(prompts_path):
    """Runs run_bench against an in-process mock server (needs the `openai` package)."""
    try:
        import openai  # noqa: F401
    except ImportError:
        print("openai package not installed: mock-server test skipped")
        return []
    import http.server
    import tempfile
    import threading

    seen_bodies = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen_bodies.append(body)
            text = body["messages"][-1]["content"]
            if "FAIL" in text:
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "boom", "type": "server_error"}}')
                return
            msg = {"role": "assistant", "content": None}
            if "weather" in text:
                msg["tool_calls"] = [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                    {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"'}}]
                fr = "tool_calls"
            else:
                msg["content"] = "Hello!"
                fr = "stop"
            out = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "message": msg, "finish_reason": fr}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    failures = []
    W = {"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
    rows = [
        {"id": "m1", "kind": "parallel", "messages": [{"role": "user", "content": "weather in Paris and Tokyo?"}],
         "tools": [W], "expect": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                                  {"name": "get_weather", "arguments": {"city": "Tokyo"}}]},
        {"id": "m2", "kind": "none", "messages": [{"role": "user", "content": "hi"}], "tools": [W], "expect": []},
        {"id": "m3", "kind": "none", "messages": [{"role": "user", "content": "FAIL please"}], "tools": [W],
         "expect": []},
    ]
    with tempfile.TemporaryDirectory() as d:
        pf, of = os.path.join(d, "p.jsonl"), os.path.join(d, "out.json")
        with open(pf, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        ns = argparse.Namespace(base_url="http://127.0.0.1:%d/v1" % srv.server_address[1], model="coder",
                                out=of, no_grammar=True, limit=0, kind=None, prompts=pf, max_tokens=64,
                                timeout=10, api_key=None, verbose=False)
        print("\n--- mock server run ---")
        try:
            run_bench(ns)
            doc = json.load(open(of))
        except Exception as e:  # noqa: BLE001
            srv.shutdown()
            return ["mock server run raised %s: %s" % (type(e).__name__, e)]
    srv.shutdown()
    res = {r["id"]: r for r in doc["results"]}
    ok = (len(seen_bodies) == 3
          and all(b.get("tool_grammar") is False and b.get("temperature") == 0 and b.get("tool_choice") == "auto"
                  and b.get("tools") for b in seen_bodies)
          and res["m1"]["tool_calls"][0]["arguments"] == {"city": "Paris"}
          and res["m1"]["tool_calls"][1]["arguments"] == '{"city": "Tokyo"'
          and res["m1"]["finish_reason"] == "tool_calls"
          and res["m1"]["score"]["right_fn"] and not res["m1"]["score"]["right_args"]
          and res["m2"]["content"] == "Hello!" and not res["m2"]["score"]["false_call"]
          and res["m3"]["error"] and "500" in res["m3"]["error"]
          and doc["scores"]["overall"]["errors"] == 1
          and doc["scores"]["overall"]["valid_calls"]["num"] == 1)
    if not ok:
        failures.append("mock server run: unexpected results %s" % json.dumps(
            {"bodies": seen_bodies, "results": doc["results"]})[:2000])
    return failures


def main():
    ap = argparse.ArgumentParser(description="Tool-calling benchmark for OpenAI-compatible servers")
    ap.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    ap.add_argument("--model", default="coder")
    ap.add_argument("--out", metavar="FILE.json", help="write config, scores and per-prompt results here")
    ap.add_argument("--no-grammar", action="store_true", help='send extra_body={"tool_grammar": false}')
    ap.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N prompts (after --kind)")
    ap.add_argument("--kind", action="append", choices=KINDS, help="only this kind (repeatable)")
    ap.add_argument("--prompts", default=DEFAULT_PROMPTS, help="prompt file (default: prompts.jsonl next to run.py)")
    ap.add_argument("--max-tokens", type=int, default=512, help="max_tokens per request (0: not sent)")
    ap.add_argument("--timeout", type=float, default=300.0, help="per-request timeout in seconds")
    ap.add_argument("--api-key", default=None, help="API key (default $OPENAI_API_KEY or 'none')")
    ap.add_argument("-v", "--verbose", action="store_true", help="also print text replies")
    ap.add_argument("--check", action="store_true", help="validate the prompt file and exit")
    ap.add_argument("--self-test", action="store_true", help="test the scoring logic without a server")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.prompts)
    if args.check:
        ps, errs = check_prompts(args.prompts)
        print("%d prompts: %s" % (len(ps), ", ".join("%s=%d" % (k, v) for k, v in
                                                     sorted(Counter(p.get("kind") for p in ps).items()))))
        for e in errs:
            print("ERROR " + e)
        print("ok" if not errs else "%d errors" % len(errs))
        return 1 if errs else 0
    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
