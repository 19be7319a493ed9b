"""The bad-input corpus for test_bad_input.py: hostile or malformed requests for every
route of `quorum serve`, each with the answer it must get.

A case is data: a method, a path, headers, a body (a JSON value, or raw bytes), the
statuses it may answer with, and optionally the `param` a 400 must name, substrings the
answer must not contain (`.git` contents, /etc/passwd), or a shorter time limit. Whatever
the case says, no answer may be a 5xx, take over 30 s or drop the connection.

Rules for adding cases: no request here may be a valid pipeline task (it would run the
pipeline), and a bad request that a server might still accept for generation carries
`max_tokens: 1`, so that accepting it costs one token and not a long generation.
"""

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

# ---------------------------------------------------------------------------------------
# Expectations

CLIENT_ERRORS = frozenset(range(400, 500))
"""Any 4xx: the server refused, for whatever reason it names."""

OK_OR_400 = frozenset({200, 400})
"""Accepting is allowed (e.g. an unknown field ignored), or a 400."""

MCP_ANY = frozenset({200, 202}) | CLIENT_ERRORS
"""/mcp may answer a JSON-RPC error inside a 200, 202 for messages that need no answer,
or a 4xx; never a 5xx."""

NO_JSON = object()
"""The default of `Case.json`: the case sends `body` (or nothing)."""

SESSION = "<mcp-session>"
"""In a header value: replaced by the id of an initialized MCP session."""

JSON_CT = {"content-type": "application/json"}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
MCP_SESSION_HEADERS = {**MCP_HEADERS, "mcp-session-id": SESSION}

# Files the test creates inside the workspace fixture before the corpus (and removes after).
FIFO = "bad_input_fifo"
FIFO_PY = "bad_input_fifo_src.py"  # a FIFO with a source-file name: analyze_codebase reads those
PASSWD_LINK = "bad_input_passwd_link"  # symlink -> /etc/passwd
GIT_CONFIG_LINK = "bad_input_git_config_link"  # symlink -> .git/config

# `git diff --output=FILE` would write FILE: the test checks that this file never appears.
GIT_OUTPUT_PROBE = os.path.join(tempfile.gettempdir(), "quorum-bad-input-git-output")

# Text that must never come back: /etc/passwd, and .git/config / .git/HEAD of the workspace.
PASSWD_TEXT = ("root:x:0:0",)
GIT_TEXT = ("repositoryformatversion =", "logallrefupdates", "bare = false", "ref: refs/heads/")


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    json: Any = NO_JSON
    # Raw bytes, or a function returning them (for the big bodies, built only when sent).
    body: Union[bytes, Callable[[], bytes], None] = None
    # Header values of None remove the header; JSON bodies get application/json unless set.
    headers: dict = field(default_factory=dict)
    expect: frozenset = CLIENT_ERRORS
    # When the answer is a 400: the `param` of its error must be one of these.
    param: Optional[tuple] = None
    # Substrings the answer (status line aside) must not contain.
    forbid: tuple = ()
    timeout: float = 30.0
    # /mcp: the JSON-RPC answer must be an error, or a tool result with isError: true.
    mcp_error: bool = False
    # Sent through a raw socket that reads the answer while the body is still going out
    # (a server may answer 413 and close before reading a 20 MB body).
    raw: bool = False

    def body_bytes(self) -> Optional[bytes]:
        if self.json is not NO_JSON:
            import json

            return json.dumps(self.json).encode()
        if callable(self.body):
            return self.body()
        return self.body


def one(*codes):
    return frozenset(codes)


CASES: list = []


def add(name, method, path, **kw):
    if "expect" in kw and isinstance(kw["expect"], int):
        kw["expect"] = one(kw["expect"])
    CASES.append(Case(name, method, path, **kw))


# ---------------------------------------------------------------------------------------
# Building blocks

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
USER = [{"role": "user", "content": "hi"}]

KB100 = "x" * (100 * 1024)
MB20 = 20 * 1024 * 1024


def chat(**fields):
    """A chat request for the coder role with one short user message, plus `fields`."""
    body = {"model": "coder", "messages": USER}
    body.update(fields)
    return body


def cheap_chat(**fields):
    """Like chat(), with max_tokens 1 (unless given): for bad requests that might be accepted."""
    return chat(**{"max_tokens": 1, **fields})


def completion(**fields):
    body = {"model": "coder", "prompt": "def add(a, b):"}
    body.update(fields)
    return body


def cheap_completion(**fields):
    return completion(**{"max_tokens": 1, **fields})


def nested_items(depth):
    """An array schema whose items are arrays, `depth` deep (past the schema checks' 32)."""
    schema = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def nested_arrays_json(depth):
    """`[[[...]]]` `depth` deep, as bytes (too deep for Python's json to write)."""
    return b"[" * depth + b"]" * depth


def nested_schema_bytes(depth):
    """A chat request whose response_format schema is arrays in arrays, `depth` deep."""
    schema = b'{"type":"array","items":' * depth + b'{"type":"integer"}' + b"}" * depth
    return (
        b'{"model":"coder","messages":[{"role":"user","content":"hi"}],"max_tokens":1,'
        b'"response_format":{"type":"json_schema","json_schema":{"name":"deep","schema":' + schema + b"}}}"
    )


def schema_chat(schema):
    return cheap_chat(response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})


def big_chat_body():
    return b'{"model":"coder","messages":[{"role":"user","content":"' + b"a" * MB20 + b'"}]}'


def big_completion_body():
    return b'{"model":"coder","prompt":"' + b"a" * MB20 + b'"}'


def big_tool_body():
    return b'{"name":"read_file","arguments":{"path":"' + b"a" * MB20 + b'"}}'


def big_tool_args_body():
    return b'{"path":"' + b"a" * MB20 + b'"}'


def big_workflow_body():
    # Only whitespace: even if it were read whole, an empty task is refused.
    return b'{"task":"' + b" " * MB20 + b'"}'


def big_mcp_body():
    return (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        b'"capabilities":{},"clientInfo":{"name":"' + b"a" * MB20 + b'","version":"1"}}}'
    )


# ---------------------------------------------------------------------------------------
# /v1/chat/completions: the body as a whole

add("chat_malformed_json", "POST", CHAT, body=b'{"model": "coder",', headers=JSON_CT, expect=400)
add("chat_empty_body", "POST", CHAT, body=b"", headers=JSON_CT, expect=400)
add("chat_body_null", "POST", CHAT, body=b"null", headers=JSON_CT, expect=400)
add("chat_body_array", "POST", CHAT, body=b"[]", headers=JSON_CT, expect=400)
add("chat_body_string", "POST", CHAT, body=b'"hello"', headers=JSON_CT, expect=400)
add("chat_body_number", "POST", CHAT, body=b"12345", headers=JSON_CT, expect=400)
add("chat_trailing_garbage", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"hi"}],"max_tokens":1} trailing', headers=JSON_CT,
    expect=400)
add("chat_invalid_utf8", "POST", CHAT, body=b'{"model":"coder","messages":[{"role":"user","content":"\xff\xfe\xc3"}]}',
    headers=JSON_CT, expect=400)
add("chat_raw_nul_in_string", "POST", CHAT, body=b'{"model":"coder","messages":[{"role":"user","content":"a\x00b"}]}',
    headers=JSON_CT, expect=400)
add("chat_nan_literal", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"hi"}],"temperature":NaN}', headers=JSON_CT,
    expect=400)
add("chat_infinity_literal", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"hi"}],"max_tokens":Infinity}', headers=JSON_CT,
    expect=400)
add("chat_number_1e400", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"hi"}],"temperature":1e400}', headers=JSON_CT,
    expect=400)
add("chat_json_nested_100000_deep", "POST", CHAT, body=nested_arrays_json(100_000), headers=JSON_CT, expect=400)
add("chat_duplicate_model_key", "POST", CHAT,
    body=b'{"model":"coder","model":"voter","messages":[{"role":"user","content":"hi"}],"max_tokens":1}',
    headers=JSON_CT, expect=OK_OR_400)
add("chat_utf8_bom", "POST", CHAT,
    body=b'\xef\xbb\xbf{"model":"coder","messages":[{"role":"user","content":"hi"}],"max_tokens":1}', headers=JSON_CT,
    expect=OK_OR_400)
add("chat_content_type_text_plain", "POST", CHAT, json=cheap_chat(), headers={"content-type": "text/plain"},
    expect=one(400, 415))
add("chat_content_type_missing", "POST", CHAT, json=cheap_chat(), headers={"content-type": None},
    expect=one(400, 415))
add("chat_content_type_form", "POST", CHAT, json=cheap_chat(),
    headers={"content-type": "application/x-www-form-urlencoded"}, expect=one(400, 415))
add("chat_content_type_garbage", "POST", CHAT, json=cheap_chat(), headers={"content-type": ";;;/"},
    expect=one(400, 415))
add("chat_body_20mb", "POST", CHAT, body=big_chat_body, headers=JSON_CT, expect=413, raw=True)
add("chat_host_header_foreign", "POST", CHAT, json=cheap_chat(), headers={"host": "evil.example"}, expect=403)

# model
add("chat_model_missing", "POST", CHAT, json={"messages": USER, "max_tokens": 1}, expect=400)
add("chat_model_number", "POST", CHAT, json=cheap_chat(model=5), expect=400)
add("chat_model_null", "POST", CHAT, json=cheap_chat(model=None), expect=400)
add("chat_model_object", "POST", CHAT, json=cheap_chat(model={"id": "coder"}), expect=400)
add("chat_model_unknown", "POST", CHAT, json=cheap_chat(model="gpt-9"), expect=404)
add("chat_model_empty", "POST", CHAT, json=cheap_chat(model=""), expect=404)
add("chat_model_path_traversal", "POST", CHAT, json=cheap_chat(model="../../etc/passwd"), expect=404,
    forbid=PASSWD_TEXT)
add("chat_model_100kb", "POST", CHAT, json=cheap_chat(model=KB100), expect=one(400, 404))
add("chat_model_lone_surrogate", "POST", CHAT,
    body=b'{"model":"\\ud800","messages":[{"role":"user","content":"hi"}]}', headers=JSON_CT, expect=400)

# messages
add("chat_messages_missing", "POST", CHAT, json={"model": "coder", "max_tokens": 1}, expect=400)
add("chat_messages_empty", "POST", CHAT, json=cheap_chat(messages=[]), expect=400)
add("chat_messages_string", "POST", CHAT, json=cheap_chat(messages="hi"), expect=400)
add("chat_messages_object", "POST", CHAT, json=cheap_chat(messages={"role": "user", "content": "hi"}), expect=400)
add("chat_messages_numbers", "POST", CHAT, json=cheap_chat(messages=[1, 2, 3]), expect=400)
add("chat_messages_null_entry", "POST", CHAT, json=cheap_chat(messages=[None]), expect=400)
add("chat_message_role_missing", "POST", CHAT, json=cheap_chat(messages=[{"content": "hi"}]), expect=400)
add("chat_message_role_number", "POST", CHAT, json=cheap_chat(messages=[{"role": 1, "content": "hi"}]), expect=400)
add("chat_message_role_unknown", "POST", CHAT, json=cheap_chat(messages=[{"role": "wizard", "content": "hi"}]),
    expect=OK_OR_400)
add("chat_message_role_empty", "POST", CHAT, json=cheap_chat(messages=[{"role": "", "content": "hi"}]),
    expect=OK_OR_400)
add("chat_message_role_100kb", "POST", CHAT, json=cheap_chat(messages=[{"role": KB100, "content": "hi"}]),
    expect=OK_OR_400)
add("chat_message_content_number", "POST", CHAT, json=cheap_chat(messages=[{"role": "user", "content": 5}]),
    expect=400)
add("chat_message_content_object", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": {"type": "text", "text": "hi"}}]), expect=400)
add("chat_message_content_null", "POST", CHAT, json=cheap_chat(messages=[{"role": "user", "content": None}]),
    expect=OK_OR_400)
add("chat_content_part_unknown_type", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "hologram", "text": "hi"}]}]), expect=400)
add("chat_content_part_image", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
    expect=400)
add("chat_content_part_audio", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": ""}}]}]),
    expect=400)
add("chat_content_part_audio_not_base64", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "@@@"}}]}]),
    expect=400)
add("chat_content_part_audio_not_audio", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "aGVsbG8gd29ybGQ=", "format": "wav"}}]}]), expect=400)
add("chat_content_part_image_remote", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}]}]), expect=400)
add("chat_content_part_image_outside_workspace", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]), forbid=PASSWD_TEXT)
add("chat_content_part_image_dir", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "."}}]}]))
add("chat_content_parts_too_many_media", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}] * 9}]), expect=400)

AUDIO = "/v1/audio/transcriptions"
MULTIPART = {"content-type": "multipart/form-data; boundary=XyZ"}


def form(*fields):
    """A multipart body of (name, filename or None, bytes) fields."""
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--XyZ--\r\n"


add("audio_json_body", "POST", AUDIO, json={"file": "x", "model": "whisper-1"}, expect=400)
add("audio_no_file", "POST", AUDIO, body=form(("model", None, b"whisper-1")), headers=MULTIPART, expect=400)
add("audio_empty_file", "POST", AUDIO, body=form(("file", "a.wav", b"")), headers=MULTIPART, expect=400)
add("audio_not_audio", "POST", AUDIO, body=form(("file", "a.wav", b"GIF89a" + b"\0" * 200)), headers=MULTIPART,
    expect=400)
add("audio_wav_header_claims_hours", "POST", AUDIO, headers=MULTIPART, expect=400, body=form(("file", "a.wav",
    b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\xff\xff\xff\x7f")))
add("audio_bad_format", "POST", AUDIO, headers=MULTIPART, expect=400,
    body=form(("file", "a.wav", b"RIFF"), ("response_format", None, b"yaml")))
add("audio_language_injection", "POST", AUDIO, headers=MULTIPART, expect=400,
    body=form(("file", "a.wav", b"RIFF"), ("language", None, b"en|>\n<|translate")))
add("audio_broken_multipart", "POST", AUDIO, headers=MULTIPART, body=b"--XyZ\r\nContent-Disposition: form-da")
add("audio_over_limit", "POST", AUDIO, headers=MULTIPART, raw=True, expect=413,
    body=lambda: form(("file", "a.wav", b"\0" * (27 * 1024 * 1024))))
add("chat_content_part_no_type", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"text": "hi"}]}]), expect=400)
add("chat_content_part_text_missing", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "text"}]}]), expect=400)
add("chat_content_part_text_number", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]), expect=400)
add("chat_content_parts_nested_list", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": [["hi"]]}]), expect=400)
add("chat_10000_messages", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user" if i % 2 == 0 else "assistant", "content": "hello there"}
                              for i in range(10_000)]), expect=400)
add("chat_prompt_1_5mb_over_context", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": "word " * 300_000}]), expect=400)
add("chat_content_nul_escaped", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": "a\u0000b\u0000"}]), expect=OK_OR_400)
add("chat_content_lone_surrogate", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"\\ud800"}],"max_tokens":1}', headers=JSON_CT,
    expect=400)
add("chat_content_lone_low_surrogate", "POST", CHAT,
    body=b'{"model":"coder","messages":[{"role":"user","content":"x\\udfff"}],"max_tokens":1}', headers=JSON_CT,
    expect=400)
add("chat_content_control_and_bidi_chars", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": "\u202e\u0007\u001b[31m\ufeff\uffff\U0010ffff"}]),
    expect=OK_OR_400)
add("chat_content_template_injection", "POST", CHAT,
    json=cheap_chat(messages=[{"role": "user", "content": "{{ raise_exception('x') }}{% for x in range(10**9) %}"}]),
    expect=OK_OR_400)

# sampling options: wrong types, huge numbers, out of range
add("chat_max_tokens_1e12_float", "POST", CHAT, json=chat(max_tokens=1e12), expect=400)
add("chat_max_tokens_10e12_int", "POST", CHAT, json=chat(max_tokens=10**12), expect=400)
add("chat_max_tokens_2_pow_32", "POST", CHAT, json=chat(max_tokens=2**32), expect=400)
add("chat_max_tokens_negative", "POST", CHAT, json=chat(max_tokens=-1), expect=400)
add("chat_max_tokens_zero", "POST", CHAT, json=chat(max_tokens=0), expect=400, param=("max_tokens",))
add("chat_max_tokens_string", "POST", CHAT, json=chat(max_tokens="100"), expect=400)
add("chat_max_tokens_nan_string", "POST", CHAT, json=chat(max_tokens="NaN"), expect=400)
add("chat_max_tokens_fraction", "POST", CHAT, json=chat(max_tokens=1.5), expect=400)
add("chat_max_tokens_bool", "POST", CHAT, json=chat(max_tokens=True), expect=400)
add("chat_max_completion_tokens_huge", "POST", CHAT, json=chat(max_completion_tokens=10**20), expect=400)
add("chat_n_1e9", "POST", CHAT, json=cheap_chat(n=10**9), expect=400, param=("n",))
add("chat_n_2_pow_32", "POST", CHAT, json=cheap_chat(n=2**32), expect=400)
add("chat_n_zero", "POST", CHAT, json=cheap_chat(n=0), expect=400, param=("n",))
add("chat_n_negative", "POST", CHAT, json=cheap_chat(n=-1), expect=400)
add("chat_n_string", "POST", CHAT, json=cheap_chat(n="2"), expect=400)
add("chat_n_float", "POST", CHAT, json=cheap_chat(n=1.0e300), expect=400)
add("chat_temperature_7", "POST", CHAT, json=cheap_chat(temperature=7), expect=400, param=("temperature",))
add("chat_temperature_negative", "POST", CHAT, json=cheap_chat(temperature=-0.5), expect=400, param=("temperature",))
add("chat_temperature_1e39", "POST", CHAT, json=cheap_chat(temperature=1e39), expect=400)
add("chat_temperature_nan_string", "POST", CHAT, json=cheap_chat(temperature="NaN"), expect=400)
add("chat_temperature_inf_string", "POST", CHAT, json=cheap_chat(temperature="Infinity"), expect=400)
add("chat_temperature_list", "POST", CHAT, json=cheap_chat(temperature=[0.5]), expect=400)
add("chat_top_p_zero", "POST", CHAT, json=cheap_chat(top_p=0), expect=400, param=("top_p",))
add("chat_top_p_above_one", "POST", CHAT, json=cheap_chat(top_p=1.5), expect=400, param=("top_p",))
add("chat_top_p_negative", "POST", CHAT, json=cheap_chat(top_p=-1), expect=400, param=("top_p",))
add("chat_top_p_underflows_to_zero", "POST", CHAT, json=cheap_chat(top_p=1e-50), expect=400)
add("chat_top_p_nan_string", "POST", CHAT, json=cheap_chat(top_p="NaN"), expect=400)
add("chat_seed_string", "POST", CHAT, json=cheap_chat(seed="x"), expect=400)
add("chat_seed_2_pow_64", "POST", CHAT, json=cheap_chat(seed=2**64), expect=400)
add("chat_seed_below_i64", "POST", CHAT, json=cheap_chat(seed=-(2**63) - 1), expect=400)
add("chat_stop_10000_entries", "POST", CHAT, json=cheap_chat(stop=["s%d" % i for i in range(10_000)]), expect=400,
    param=("stop",))
add("chat_stop_100_entries", "POST", CHAT, json=cheap_chat(stop=["s%d" % i for i in range(100)]), expect=400,
    param=("stop",))
add("chat_stop_100kb_string", "POST", CHAT, json=cheap_chat(stop=KB100), expect=OK_OR_400)
add("chat_stop_four_100kb_strings", "POST", CHAT, json=cheap_chat(stop=[KB100] * 4), expect=OK_OR_400)
add("chat_stop_numbers", "POST", CHAT, json=cheap_chat(stop=[1, 2]), expect=400)
add("chat_stop_object", "POST", CHAT, json=cheap_chat(stop={"a": 1}), expect=400)
add("chat_stop_empty_string", "POST", CHAT, json=cheap_chat(stop=[""]), expect=OK_OR_400)
add("chat_stream_string", "POST", CHAT, json=cheap_chat(stream="yes"), expect=400)
add("chat_stream_options_string", "POST", CHAT, json=cheap_chat(stream=True, stream_options="usage"), expect=400)
add("chat_ignore_eos_string", "POST", CHAT, json=cheap_chat(ignore_eos="true"), expect=400)
add("chat_bad_param_while_streaming", "POST", CHAT, json=chat(stream=True, temperature=9), expect=400,
    param=("temperature",))
add("chat_unknown_fields", "POST", CHAT,
    json=cheap_chat(frobnicate=True, logit_bias={"50256": -100}, tools=[{"type": "function"}], **{"": None}),
    expect=OK_OR_400)

# grammar (llama.cpp GBNF): every malformed one is a 400 naming `grammar`, before generation
add("chat_grammar_unbalanced_open", "POST", CHAT, json=cheap_chat(grammar='root ::= ("a"'), expect=400,
    param=("grammar",))
add("chat_grammar_unbalanced_close", "POST", CHAT, json=cheap_chat(grammar='root ::= "a")'), expect=400,
    param=("grammar",))
add("chat_grammar_repetition_min_over_max", "POST", CHAT, json=cheap_chat(grammar='root ::= "a"{5,2}'), expect=400,
    param=("grammar",))
add("chat_grammar_10000_nested_parens", "POST", CHAT,
    json=cheap_chat(grammar="root ::= " + "(" * 10_000 + '"a"' + ")" * 10_000), expect=OK_OR_400,
    param=("grammar",))
add("chat_grammar_repetition_100000", "POST", CHAT, json=cheap_chat(grammar='root ::= "a"{100000}'),
    expect=OK_OR_400, param=("grammar",))
add("chat_grammar_nested_repetitions", "POST", CHAT,
    json=cheap_chat(grammar='root ::= (("a"{1000}){1000}){1000}'), expect=OK_OR_400, param=("grammar",))
add("chat_grammar_repetition_upper_1e8", "POST", CHAT, json=cheap_chat(grammar='root ::= "a"{0,100000000}'),
    expect=OK_OR_400, param=("grammar",))
add("chat_grammar_negative_repetition", "POST", CHAT, json=cheap_chat(grammar='root ::= "a"{-1}'), expect=400,
    param=("grammar",))
add("chat_grammar_no_root", "POST", CHAT, json=cheap_chat(grammar='start ::= "a"'), expect=400, param=("grammar",))
add("chat_grammar_undefined_rule", "POST", CHAT, json=cheap_chat(grammar="root ::= missing"), expect=400,
    param=("grammar",))
add("chat_grammar_left_recursion", "POST", CHAT, json=cheap_chat(grammar='root ::= root "a"'), expect=400,
    param=("grammar",))
add("chat_grammar_unterminated_string", "POST", CHAT, json=cheap_chat(grammar='root ::= "a'), expect=400,
    param=("grammar",))
add("chat_grammar_unterminated_class", "POST", CHAT, json=cheap_chat(grammar="root ::= [a-"), expect=400,
    param=("grammar",))
add("chat_grammar_bad_escape", "POST", CHAT, json=cheap_chat(grammar='root ::= "\\x"'), expect=400,
    param=("grammar",))
add("chat_grammar_nul_byte", "POST", CHAT, json=cheap_chat(grammar='root ::= "a\u0000b"'), expect=400,
    param=("grammar",))
add("chat_grammar_garbage", "POST", CHAT, json=cheap_chat(grammar=":::= ::= ::="), expect=400, param=("grammar",))
add("chat_grammar_empty", "POST", CHAT, json=cheap_chat(grammar=""), expect=OK_OR_400, param=("grammar",))
add("chat_grammar_number", "POST", CHAT, json=cheap_chat(grammar=5), expect=400)
add("chat_grammar_1mb_alternation", "POST", CHAT, json=cheap_chat(grammar="root ::= " + ' | '.join(['"a"'] * 200_000)),
    expect=OK_OR_400, param=("grammar",))
add("chat_grammar_bad_with_streaming", "POST", CHAT, json=cheap_chat(grammar='root ::= ((', stream=True), expect=400,
    param=("grammar",))

# response_format / JSON schema
add("chat_schema_min_items_over_max", "POST", CHAT,
    json=schema_chat({"type": "array", "items": {"type": "integer"}, "minItems": 5, "maxItems": 2}), expect=400,
    param=("response_format",))
add("chat_schema_min_length_over_max", "POST", CHAT,
    json=schema_chat({"type": "string", "minLength": 5, "maxLength": 2}), expect=400, param=("response_format",))
add("chat_schema_minimum_over_maximum", "POST", CHAT,
    json=schema_chat({"type": "integer", "minimum": 5, "maximum": 2}), expect=OK_OR_400, param=("response_format",))
# 1000 deep is past serde_json's nesting limit (128): refused as a body that does not parse.
add("chat_schema_nested_1000_deep", "POST", CHAT, body=nested_schema_bytes(1000), headers=JSON_CT, expect=OK_OR_400)
add("chat_schema_nested_100_deep", "POST", CHAT, body=nested_schema_bytes(100), headers=JSON_CT, expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_max_items_1e9", "POST", CHAT,
    json=schema_chat({"type": "array", "items": {"type": "integer"}, "maxItems": 10**9}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_min_items_1e9", "POST", CHAT,
    json=schema_chat({"type": "array", "items": {"type": "integer"}, "minItems": 10**9}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_min_length_1e9", "POST", CHAT,
    json=schema_chat({"type": "string", "minLength": 10**9}), expect=OK_OR_400, param=("response_format",))
add("chat_schema_ref_cycle", "POST", CHAT,
    json=schema_chat({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}),
    expect=OK_OR_400, param=("response_format",))
add("chat_schema_ref_self", "POST", CHAT, json=schema_chat({"$ref": "#"}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_ref_missing", "POST", CHAT, json=schema_chat({"$ref": "#/$defs/missing"}), expect=400,
    param=("response_format",))
add("chat_schema_ref_remote", "POST", CHAT, json=schema_chat({"$ref": "http://127.0.0.1:9/schema.json"}), expect=400,
    param=("response_format",))
add("chat_schema_ref_file", "POST", CHAT, json=schema_chat({"$ref": "file:///etc/passwd"}), expect=400,
    param=("response_format",), forbid=PASSWD_TEXT)
add("chat_schema_is_number", "POST", CHAT, json=schema_chat(5), expect=400)
add("chat_schema_is_string", "POST", CHAT, json=schema_chat("object"), expect=400)
add("chat_schema_is_array", "POST", CHAT, json=schema_chat([{"type": "object"}]), expect=400)
add("chat_schema_is_false", "POST", CHAT, json=schema_chat(False), expect=OK_OR_400)
add("chat_schema_unknown_type", "POST", CHAT, json=schema_chat({"type": "quaternion"}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_type_number", "POST", CHAT, json=schema_chat({"type": 5}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_bad_pattern", "POST", CHAT, json=schema_chat({"type": "string", "pattern": "(("}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_pattern_repetition", "POST", CHAT,
    json=schema_chat({"type": "string", "pattern": "^(a{1000}){1000}$"}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_empty_enum", "POST", CHAT, json=schema_chat({"enum": []}), expect=OK_OR_400,
    param=("response_format",))
add("chat_schema_10000_properties", "POST", CHAT,
    json=schema_chat({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10_000)},
                      "required": [f"p{i}" for i in range(10_000)]}), expect=OK_OR_400, param=("response_format",))
add("chat_response_format_json_schema_missing", "POST", CHAT,
    json=cheap_chat(response_format={"type": "json_schema"}), expect=400)
add("chat_response_format_unknown_type", "POST", CHAT, json=cheap_chat(response_format={"type": "yaml"}), expect=400)
add("chat_response_format_string", "POST", CHAT, json=cheap_chat(response_format="json"), expect=400)
add("chat_response_format_no_type", "POST", CHAT, json=cheap_chat(response_format={"schema": {}}), expect=400)

# the pipeline model: only bad conversations (a valid one would run the pipeline)
add("chat_quorum_no_messages", "POST", CHAT, json={"model": "quorum", "messages": []}, expect=400)
add("chat_quorum_no_user_message", "POST", CHAT,
    json={"model": "quorum", "messages": [{"role": "assistant", "content": "hi"}]}, expect=400)
add("chat_quorum_image_part", "POST", CHAT,
    json={"model": "quorum", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    expect=400)
add("chat_quorum_messages_string", "POST", CHAT, json={"model": "quorum", "messages": "fix it"}, expect=400)

# ---------------------------------------------------------------------------------------
# /v1/completions

add("completion_malformed_json", "POST", COMPLETIONS, body=b'{"model":"coder","prompt":', headers=JSON_CT, expect=400)
add("completion_empty_body", "POST", COMPLETIONS, body=b"", headers=JSON_CT, expect=400)
add("completion_prompt_missing", "POST", COMPLETIONS, json={"model": "coder", "max_tokens": 1}, expect=400)
add("completion_prompt_token_ids", "POST", COMPLETIONS, json=cheap_completion(prompt=[1, 2, 3]), expect=400)
add("completion_prompt_nested_token_ids", "POST", COMPLETIONS, json=cheap_completion(prompt=[[1, 2], [3]]),
    expect=400)
add("completion_prompt_huge_token_ids", "POST", COMPLETIONS, json=cheap_completion(prompt=[10**30, -1]), expect=400)
add("completion_prompt_empty_list", "POST", COMPLETIONS, json=cheap_completion(prompt=[]), expect=400)
add("completion_prompt_two_strings", "POST", COMPLETIONS, json=cheap_completion(prompt=["a", "b"]), expect=400,
    param=("prompt",))
add("completion_prompt_number", "POST", COMPLETIONS, json=cheap_completion(prompt=5), expect=400)
add("completion_prompt_null", "POST", COMPLETIONS, json=cheap_completion(prompt=None), expect=400)
add("completion_prompt_object", "POST", COMPLETIONS, json=cheap_completion(prompt={"text": "x"}), expect=400)
add("completion_prompt_empty_string", "POST", COMPLETIONS, json=cheap_completion(prompt=""), expect=OK_OR_400)
add("completion_prompt_lone_surrogate", "POST", COMPLETIONS,
    body=b'{"model":"coder","prompt":"\\udbff","max_tokens":1}', headers=JSON_CT, expect=400)
add("completion_prompt_nul_escaped", "POST", COMPLETIONS, json=cheap_completion(prompt="\u0000"), expect=OK_OR_400)
add("completion_model_quorum", "POST", COMPLETIONS, json=cheap_completion(model="quorum"), expect=400,
    param=("model",))
add("completion_model_unknown", "POST", COMPLETIONS, json=cheap_completion(model="davinci"), expect=404)
add("completion_max_tokens_1e12", "POST", COMPLETIONS, json=completion(max_tokens=1e12), expect=400)
add("completion_max_tokens_negative", "POST", COMPLETIONS, json=completion(max_tokens=-5), expect=400)
add("completion_n_1e9", "POST", COMPLETIONS, json=cheap_completion(n=10**9), expect=400, param=("n",))
add("completion_temperature_out_of_range", "POST", COMPLETIONS, json=cheap_completion(temperature=2.5), expect=400,
    param=("temperature",))
add("completion_top_p_out_of_range", "POST", COMPLETIONS, json=cheap_completion(top_p=2), expect=400,
    param=("top_p",))
add("completion_stop_huge_list", "POST", COMPLETIONS, json=cheap_completion(stop=[KB100[:100]] * 1000), expect=400,
    param=("stop",))
add("completion_stop_100kb", "POST", COMPLETIONS, json=cheap_completion(stop=KB100), expect=OK_OR_400)
add("completion_grammar_repetition_min_over_max", "POST", COMPLETIONS,
    json=cheap_completion(grammar='root ::= "a"{5,2}'), expect=400, param=("grammar",))
add("completion_grammar_unbalanced", "POST", COMPLETIONS, json=cheap_completion(grammar="root ::= ((((("),
    expect=400, param=("grammar",))
add("completion_schema_min_items_over_max", "POST", COMPLETIONS,
    json=cheap_completion(response_format={"type": "json_schema", "json_schema": {"schema": {
        "type": "array", "minItems": 5, "maxItems": 2}}}), expect=400, param=("response_format",))
add("completion_unknown_fields", "POST", COMPLETIONS, json=cheap_completion(echo=True, best_of=10**9, logprobs=10**9),
    expect=OK_OR_400)
add("completion_body_20mb", "POST", COMPLETIONS, body=big_completion_body, headers=JSON_CT, expect=413, raw=True)
add("completion_content_type_text_plain", "POST", COMPLETIONS, json=cheap_completion(),
    headers={"content-type": "text/plain"}, expect=one(400, 415))

# ---------------------------------------------------------------------------------------
# Methods, unknown routes, /v1/models

add("get_on_chat", "GET", CHAT, expect=405)
add("put_on_chat", "PUT", CHAT, json=cheap_chat(), expect=405)
add("delete_on_chat", "DELETE", CHAT, expect=405)
add("patch_on_chat", "PATCH", CHAT, json=cheap_chat(), expect=405)
add("head_on_chat", "HEAD", CHAT, expect=405)
add("get_on_completions", "GET", COMPLETIONS, expect=405)
add("post_on_models", "POST", "/v1/models", json={}, expect=405)
add("delete_on_models", "DELETE", "/v1/models", expect=405)
add("post_on_health", "POST", "/health", json={}, expect=405)
add("post_on_metrics", "POST", "/metrics", json={}, expect=405)
add("get_on_mcp_tool", "GET", "/api/mcp/tool", expect=405)
add("get_on_tools_name", "GET", "/api/tools/read_file", expect=405)
add("post_on_mcp_tools", "POST", "/api/mcp/tools", json={}, expect=405)
add("get_on_workflow", "GET", "/api/workflow", expect=405)
add("post_on_tasks", "POST", "/api/tasks", json={"task": ""}, expect=405)
add("post_on_task", "POST", "/api/task/nonexistent", json={}, expect=405)
add("delete_on_task", "DELETE", "/api/task/nonexistent", expect=405)
add("get_on_task_resume", "GET", "/api/task/nonexistent/resume", expect=405)
add("models_with_junk_body_and_query", "GET", "/v1/models?limit=-1&x=%00", body=b"\xff\xfe", headers=JSON_CT,
    expect=200)
add("models_one_model_route", "GET", "/v1/models/coder", expect=one(200, 404))
add("unknown_route", "GET", "/v1/nothing-here", expect=404)
add("unknown_route_post", "POST", "/v2/chat/completions", json=cheap_chat(), expect=404)
add("unknown_route_encoded_traversal", "GET", "/%2e%2e/%2e%2e/etc/passwd", expect=one(400, 404), forbid=PASSWD_TEXT)
add("unknown_route_long_path", "GET", "/" + "a" * 8000, expect=one(400, 404, 414))

# ---------------------------------------------------------------------------------------
# Tools over REST: POST /api/mcp/tool and POST /api/tools/{name}, GET /api/mcp/tools

TOOL = "/api/mcp/tool"


def tool(name, arguments):
    return {"name": name, "arguments": arguments}


add("tool_malformed_json", "POST", TOOL, body=b'{"name": "read_file", "arguments": {', headers=JSON_CT, expect=400)
add("tool_empty_body", "POST", TOOL, body=b"", headers=JSON_CT, expect=400)
# serde reads a struct from a sequence too: the call is well-formed, only its shape is odd.
add("tool_body_array", "POST", TOOL, json=["read_file", {"path": "README.md"}], expect=one(200, 400))
add("tool_name_missing", "POST", TOOL, json={"arguments": {}}, expect=400)
add("tool_name_number", "POST", TOOL, json={"name": 5}, expect=400)
add("tool_name_null", "POST", TOOL, json={"name": None}, expect=400)
add("tool_unknown_field", "POST", TOOL, json={"name": "read_file", "arguments": {"path": "README.md"}, "as": "root"},
    expect=400)
add("tool_unknown_name", "POST", TOOL, json=tool("delete_everything", {}), expect=404)
add("tool_empty_name", "POST", TOOL, json=tool("", {}), expect=404)
add("tool_name_case", "POST", TOOL, json=tool("READ_FILE", {"path": "README.md"}), expect=404)
add("tool_name_with_nul", "POST", TOOL, json=tool("read_file\u0000", {"path": "README.md"}), expect=404)
add("tool_name_10kb", "POST", TOOL, json=tool("t" * 10_000, {}), expect=404)
add("tool_arguments_array", "POST", TOOL, json=tool("read_file", ["README.md"]), expect=400)
add("tool_arguments_string", "POST", TOOL, json=tool("read_file", "README.md"), expect=400)
add("tool_arguments_number", "POST", TOOL, json=tool("read_file", 5), expect=400)
add("tool_arguments_bool", "POST", TOOL, json=tool("read_file", True), expect=400)
add("tool_arguments_null_means_none", "POST", TOOL, json=tool("read_file", None), expect=400)
add("tool_content_type_text_plain", "POST", TOOL, json=tool("read_file", {"path": "README.md"}),
    headers={"content-type": "text/plain"}, expect=one(400, 415))
add("tool_body_20mb", "POST", TOOL, body=big_tool_body, headers=JSON_CT, expect=413, raw=True)

# read_file paths
add("read_file_parent_escape", "POST", TOOL, json=tool("read_file", {"path": "../../etc/passwd"}), expect=403,
    forbid=PASSWD_TEXT)
add("read_file_absolute_outside", "POST", TOOL, json=tool("read_file", {"path": "/etc/passwd"}), expect=403,
    forbid=PASSWD_TEXT)
add("read_file_deep_escape", "POST", TOOL, json=tool("read_file", {"path": "app/" + "../" * 50 + "etc/passwd"}),
    expect=403, forbid=PASSWD_TEXT)
add("read_file_proc_environ", "POST", TOOL, json=tool("read_file", {"path": "/proc/self/environ"}), expect=403)
add("read_file_dev_zero", "POST", TOOL, json=tool("read_file", {"path": "/dev/zero"}), expect=403)
add("read_file_root", "POST", TOOL, json=tool("read_file", {"path": "/"}), expect=403)
add("read_file_5000_char_name", "POST", TOOL, json=tool("read_file", {"path": "a" * 5000}),
    expect=one(400, 403, 404))
add("read_file_5000_char_path", "POST", TOOL, json=tool("read_file", {"path": "ab/" * 1666 + "c"}),
    expect=one(400, 403, 404))
add("read_file_below_a_file", "POST", TOOL, json=tool("read_file", {"path": "README.md/x"}), expect=one(400, 404))
add("read_file_nul_byte", "POST", TOOL, json=tool("read_file", {"path": "README.md\u0000.txt"}), expect=one(400, 403))
add("read_file_git_config", "POST", TOOL, json=tool("read_file", {"path": ".git/config"}), expect=403,
    forbid=GIT_TEXT)
add("read_file_git_head_dotted", "POST", TOOL, json=tool("read_file", {"path": "./app/../.git/HEAD"}), expect=403,
    forbid=GIT_TEXT)
add("read_file_git_dir", "POST", TOOL, json=tool("read_file", {"path": ".git"}), expect=one(400, 403))
add("read_file_symlink_outside", "POST", TOOL, json=tool("read_file", {"path": PASSWD_LINK}), expect=403,
    forbid=PASSWD_TEXT)
add("read_file_symlink_into_git", "POST", TOOL, json=tool("read_file", {"path": GIT_CONFIG_LINK}), expect=403,
    forbid=GIT_TEXT)
add("read_file_fifo", "POST", TOOL, json=tool("read_file", {"path": FIFO}), expect=CLIENT_ERRORS, timeout=5.0)
add("read_file_directory", "POST", TOOL, json=tool("read_file", {"path": "app"}), expect=400)
add("read_file_empty_path", "POST", TOOL, json=tool("read_file", {"path": ""}), expect=400)
add("read_file_backslashes", "POST", TOOL, json=tool("read_file", {"path": "..\\..\\etc\\passwd"}),
    expect=one(403, 404), forbid=PASSWD_TEXT)
add("read_file_percent_encoded", "POST", TOOL, json=tool("read_file", {"path": "%2e%2e/%2e%2e/etc/passwd"}),
    expect=one(403, 404), forbid=PASSWD_TEXT)
add("read_file_tilde", "POST", TOOL, json=tool("read_file", {"path": "~/.ssh/id_rsa"}), expect=one(403, 404))
add("read_file_path_number", "POST", TOOL, json=tool("read_file", {"path": 5}), expect=400)
add("read_file_path_list", "POST", TOOL, json=tool("read_file", {"path": ["README.md"]}), expect=400)
add("read_file_path_missing", "POST", TOOL, json=tool("read_file", {}), expect=400)
add("read_file_unknown_argument", "POST", TOOL, json=tool("read_file", {"path": "README.md", "sudo": True}),
    expect=400)
add("read_file_start_line_zero", "POST", TOOL, json=tool("read_file", {"path": "README.md", "start_line": 0}),
    expect=400)
add("read_file_start_line_negative", "POST", TOOL, json=tool("read_file", {"path": "README.md", "start_line": -1}),
    expect=400)
add("read_file_start_line_huge", "POST", TOOL, json=tool("read_file", {"path": "README.md", "start_line": 10**30}),
    expect=400)
add("read_file_end_before_start", "POST", TOOL,
    json=tool("read_file", {"path": "README.md", "start_line": 5, "end_line": 2}), expect=400)
add("read_file_max_bytes_negative", "POST", TOOL, json=tool("read_file", {"path": "README.md", "max_bytes": -1}),
    expect=400)
add("read_file_max_bytes_huge", "POST", TOOL, json=tool("read_file", {"path": "README.md", "max_bytes": 10**20}),
    expect=400)
add("read_file_start_line_string", "POST", TOOL, json=tool("read_file", {"path": "README.md", "start_line": "1"}),
    expect=400)

# search_docs / find_references: globs must not open .git
GIT_GLOBS = ([".git", "*"], ["**"], [".*"], [".git/**"], ["**/.git/**", "**/config"])
for i, globs in enumerate(GIT_GLOBS):
    add(f"search_docs_git_glob_{i}", "POST", "/api/tools/search_docs",
        json={"query": "repositoryformatversion", "glob": globs}, expect=one(200, 400, 403), forbid=GIT_TEXT)
    add(f"find_references_git_glob_{i}", "POST", "/api/tools/find_references",
        json={"symbol": "repositoryformatversion", "glob": globs}, expect=one(200, 400, 403), forbid=GIT_TEXT)
add("search_docs_git_head_ref", "POST", "/api/tools/search_docs",
    json={"query": "refs/heads", "glob": ["*", ".*", "**"]}, expect=one(200, 400, 403), forbid=GIT_TEXT)
add("search_docs_path_git", "POST", "/api/tools/search_docs", json={"query": "core", "path": ".git"}, expect=403,
    forbid=GIT_TEXT)
add("search_docs_path_escape", "POST", "/api/tools/search_docs", json={"query": "root", "path": "../../etc"},
    expect=403, forbid=PASSWD_TEXT)
add("search_docs_path_absolute", "POST", "/api/tools/search_docs", json={"query": "root", "path": "/etc"},
    expect=403, forbid=PASSWD_TEXT)
add("search_docs_empty_query", "POST", "/api/tools/search_docs", json={"query": ""}, expect=400)
add("search_docs_query_missing", "POST", "/api/tools/search_docs", json={"glob": ["*"]}, expect=400)
add("search_docs_query_number", "POST", "/api/tools/search_docs", json={"query": 5}, expect=400)
add("search_docs_bad_regex", "POST", "/api/tools/search_docs", json={"query": "((", "regex": True}, expect=400)
add("search_docs_regex_too_big", "POST", "/api/tools/search_docs",
    json={"query": "(a{1000}){1000}", "regex": True}, expect=OK_OR_400)
add("search_docs_bad_glob", "POST", "/api/tools/search_docs", json={"query": "x", "glob": ["a[", "{"]}, expect=400)
add("search_docs_glob_string", "POST", "/api/tools/search_docs", json={"query": "x", "glob": "*.md"}, expect=400)
add("search_docs_glob_numbers", "POST", "/api/tools/search_docs", json={"query": "x", "glob": [1]}, expect=400)
add("search_docs_context_huge", "POST", "/api/tools/search_docs", json={"query": "x", "context": 10**20},
    expect=400)
add("search_docs_max_results_negative", "POST", "/api/tools/search_docs", json={"query": "x", "max_results": -1},
    expect=400)
add("search_docs_unknown_argument", "POST", "/api/tools/search_docs", json={"text": "x"}, expect=400)
add("search_docs_arguments_array", "POST", "/api/tools/search_docs", json=["parse_config"], expect=400)
add("find_references_not_identifier", "POST", "/api/tools/find_references", json={"symbol": "../etc passwd"},
    expect=400)
add("find_references_empty_symbol", "POST", "/api/tools/find_references", json={"symbol": ""}, expect=400)
add("find_references_symbol_object", "POST", "/api/tools/find_references", json={"symbol": {}}, expect=400)
add("find_references_path_escape", "POST", "/api/tools/find_references",
    json={"symbol": "root", "path": "../../"}, expect=403)

# git_diff: revisions cannot be options or paths out of the workspace
add("git_diff_from_path_escape", "POST", "/api/tools/git_diff", json={"from": "HEAD:../../etc/passwd"},
    expect=one(400, 403, 404), forbid=PASSWD_TEXT)
add("git_diff_from_git_internal_blob", "POST", "/api/tools/git_diff", json={"from": "HEAD:.git/config"},
    expect=one(400, 403, 404), forbid=GIT_TEXT)
add("git_diff_from_output_option", "POST", "/api/tools/git_diff", json={"from": "--output=" + GIT_OUTPUT_PROBE},
    expect=400)
add("git_diff_to_output_option", "POST", "/api/tools/git_diff",
    json={"from": "HEAD", "to": "--output=" + GIT_OUTPUT_PROBE}, expect=400)
add("git_diff_to_without_from", "POST", "/api/tools/git_diff", json={"to": "HEAD"}, expect=400)
add("git_diff_unknown_revision", "POST", "/api/tools/git_diff", json={"from": "HEAD~1000"}, expect=one(400, 404))
add("git_diff_shell_revision", "POST", "/api/tools/git_diff", json={"from": "$(touch /tmp/pwned)"},
    expect=one(400, 404))
add("git_diff_revision_with_space", "POST", "/api/tools/git_diff", json={"from": "HEAD --stat"}, expect=400)
add("git_diff_revision_nul", "POST", "/api/tools/git_diff", json={"from": "HEAD\u0000"}, expect=400)
add("git_diff_revision_5000_chars", "POST", "/api/tools/git_diff", json={"from": "r" * 5000}, expect=one(400, 404))
add("git_diff_unknown_mode", "POST", "/api/tools/git_diff", json={"mode": "everything"}, expect=400)
add("git_diff_path_escape", "POST", "/api/tools/git_diff", json={"path": "../../etc/passwd"}, expect=403)
add("git_diff_path_absolute", "POST", "/api/tools/git_diff", json={"path": "/etc"}, expect=403)
add("git_diff_path_option", "POST", "/api/tools/git_diff", json={"path": "--output=" + GIT_OUTPUT_PROBE},
    expect=one(200, 400, 403, 404))
add("git_diff_max_bytes_negative", "POST", "/api/tools/git_diff", json={"max_bytes": -1}, expect=400)

# run_tests: nothing here may actually start a runner
add("run_tests_unknown_command", "POST", "/api/tools/run_tests", json={"command": "rm -rf /"}, expect=400)
add("run_tests_shell_in_command", "POST", "/api/tools/run_tests", json={"command": "pytest; id"}, expect=400)
add("run_tests_command_number", "POST", "/api/tools/run_tests", json={"command": 1}, expect=400)
add("run_tests_filter_option", "POST", "/api/tools/run_tests", json={"command": "pytest", "filter": "-x"}, expect=400)
add("run_tests_filter_long_option", "POST", "/api/tools/run_tests",
    json={"command": "pytest", "filter": "--co"}, expect=400)
add("run_tests_filter_go_exec", "POST", "/api/tools/run_tests",
    json={"command": "go test", "filter": "-exec=/bin/sh"}, expect=400)
add("run_tests_filter_empty", "POST", "/api/tools/run_tests", json={"command": "pytest", "filter": ""}, expect=400)
add("run_tests_filter_nul", "POST", "/api/tools/run_tests", json={"command": "pytest", "filter": "a\u0000b"},
    expect=400)
add("run_tests_filter_too_long", "POST", "/api/tools/run_tests", json={"command": "pytest", "filter": "a" * 5000},
    expect=400)
add("run_tests_timeout_negative", "POST", "/api/tools/run_tests", json={"command": "pytest", "timeout_secs": -1},
    expect=400)
add("run_tests_worktree_outside", "POST", "/api/tools/run_tests", json={"command": "pytest", "worktree": "/etc"},
    expect=403)
add("run_tests_worktree_missing", "POST", "/api/tools/run_tests",
    json={"command": "pytest", "worktree": "w" * 5000}, expect=one(400, 403, 404))
add("run_tests_unknown_argument", "POST", "/api/tools/run_tests", json={"command": "pytest", "shell": True},
    expect=400)

# analyze_codebase
add("analyze_path_escape", "POST", "/api/tools/analyze_codebase", json={"path": "../../"}, expect=403)
add("analyze_path_git", "POST", "/api/tools/analyze_codebase", json={"path": ".git"}, expect=403, forbid=GIT_TEXT)
add("analyze_depth_negative", "POST", "/api/tools/analyze_codebase", json={"depth": -1}, expect=400)
add("analyze_max_entries_huge", "POST", "/api/tools/analyze_codebase", json={"max_entries": 10**20}, expect=400)
add("analyze_symbols_string", "POST", "/api/tools/analyze_codebase", json={"symbols": "no"}, expect=400)
add("analyze_fifo_source_file", "POST", "/api/tools/analyze_codebase", json={"path": FIFO_PY},
    expect=one(200, 400, 403, 422), timeout=5.0)
add("analyze_workspace_with_fifo", "POST", "/api/tools/analyze_codebase", json={"depth": 1, "symbols": True},
    expect=one(200, 400, 403, 422), timeout=5.0)

# POST /api/tools/{name} shapes
add("tools_name_unknown", "POST", "/api/tools/delete_everything", json={}, expect=404)
add("tools_name_encoded_traversal", "POST", "/api/tools/%2e%2e%2fread_file", json={"path": "README.md"}, expect=404)
add("tools_name_encoded_nul", "POST", "/api/tools/read_file%00", json={"path": "README.md"}, expect=one(400, 404))
add("tools_name_invalid_utf8", "POST", "/api/tools/%FF%FE", json={}, expect=one(400, 404))
add("tools_name_2000_chars", "POST", "/api/tools/" + "n" * 2000, json={}, expect=404)
add("tools_body_string", "POST", "/api/tools/read_file", json="README.md", expect=400)
add("tools_body_number", "POST", "/api/tools/read_file", json=42, expect=400)
add("tools_body_malformed", "POST", "/api/tools/read_file", body=b"{path: README.md}", headers=JSON_CT, expect=400)
add("tools_body_20mb", "POST", "/api/tools/read_file", body=big_tool_args_body, headers=JSON_CT, expect=413, raw=True)
add("tools_list_with_body_and_query", "GET", "/api/mcp/tools?cursor=%00&limit=-1", body=b"[[[", headers=JSON_CT,
    expect=200)

# ---------------------------------------------------------------------------------------
# Task routes: /api/workflow (bad bodies only), /api/task/{id}, /api/tasks, events

WORKFLOW = "/api/workflow"
add("workflow_malformed_json", "POST", WORKFLOW, body=b'{"task": ', headers=JSON_CT, expect=400)
add("workflow_empty_body", "POST", WORKFLOW, body=b"", headers=JSON_CT, expect=400)
add("workflow_task_missing", "POST", WORKFLOW, json={}, expect=400)
add("workflow_task_number", "POST", WORKFLOW, json={"task": 5}, expect=400)
add("workflow_task_null", "POST", WORKFLOW, json={"task": None}, expect=400)
add("workflow_task_list", "POST", WORKFLOW, json={"task": ["fix", "it"]}, expect=400)
add("workflow_task_empty", "POST", WORKFLOW, json={"task": ""}, expect=400)
add("workflow_task_whitespace", "POST", WORKFLOW, json={"task": " \n\t "}, expect=400)
add("workflow_unknown_field", "POST", WORKFLOW, json={"task": " ", "priority": "urgent"}, expect=400)
add("workflow_apply_string", "POST", WORKFLOW, json={"task": " ", "apply": "yes"}, expect=400)
add("workflow_options_string", "POST", WORKFLOW, json={"task": " ", "options": "fast"}, expect=400)
add("workflow_options_bad_rounds", "POST", WORKFLOW, json={"task": " ", "options": {"max_rounds": -1}}, expect=400)
add("workflow_options_huge_candidates", "POST", WORKFLOW,
    json={"task": " ", "options": {"candidates": 10**12}}, expect=400)
add("workflow_options_unknown", "POST", WORKFLOW, json={"task": " ", "options": {"rm": "-rf"}}, expect=400)
add("workflow_other_workspace", "POST", WORKFLOW, json={"task": " ", "workspace": "/etc"}, expect=403)
add("workflow_workspace_header_outside", "POST", WORKFLOW, json={"task": " "}, headers={"X-Quorum-Workspace": "/"}, expect=403)
add("workflow_workspace_unknown_name", "POST", WORKFLOW, json={"task": " ", "workspace": "no-such-repo"}, expect=404)
add("tool_workspace_header_outside", "POST", "/api/tools/analyze_codebase", json={}, headers={"X-Quorum-Workspace": "/etc"}, expect=403)
add("chat_quorum_alias_outside", "POST", CHAT, json={"model": "quorum@../../..", "messages": [{"role": "user", "content": "fix"}]}, expect=one(403, 404))
add("workflow_workspace_number", "POST", WORKFLOW, json={"task": " ", "workspace": 5}, expect=400)
add("workflow_body_array", "POST", WORKFLOW, json=[{"task": " "}], expect=400)
add("workflow_content_type_text", "POST", WORKFLOW, json={"task": " "}, headers={"content-type": "text/plain"},
    expect=one(400, 415))
add("workflow_body_20mb", "POST", WORKFLOW, body=big_workflow_body, headers=JSON_CT, expect=413, raw=True)

add("task_unknown_id", "GET", "/api/task/nonexistent", expect=404)
add("task_id_5000_chars", "GET", "/api/task/" + "i" * 5000, expect=one(400, 404, 414))
add("task_id_encoded_traversal", "GET", "/api/task/..%2f..%2fetc%2fpasswd", expect=one(400, 404), forbid=PASSWD_TEXT)
add("task_id_encoded_nul", "GET", "/api/task/abc%00def", expect=one(400, 404))
add("task_id_sql", "GET", "/api/task/%27%20OR%201%3D1%20--", expect=one(400, 404))
add("task_id_prefix_glob", "GET", "/api/task/%2A", expect=one(400, 404))
add("task_id_unicode", "GET", "/api/task/%F0%9F%92%A3", expect=one(400, 404))
add("task_id_invalid_utf8", "GET", "/api/task/%FF%FE", expect=one(400, 404))
add("task_events_unknown_id", "GET", "/api/task/nonexistent/events", expect=404)
add("task_events_long_id", "GET", "/api/task/" + "e" * 5000 + "/events", expect=one(400, 404, 414))
add("task_events_nul_id", "GET", "/api/task/%00/events", expect=one(400, 404))
add("task_events_from_negative", "GET", "/api/task/nonexistent/events?from=-1", expect=one(400, 404))
add("task_events_from_text", "GET", "/api/task/nonexistent/events?from=abc", expect=one(400, 404))
add("task_events_from_huge", "GET", "/api/task/nonexistent/events?from=99999999999999999999999",
    expect=one(400, 404))
add("task_resume_unknown_id", "POST", "/api/task/nonexistent/resume", expect=404)
add("task_resume_long_id", "POST", "/api/task/" + "r" * 5000 + "/resume", expect=one(400, 404, 414))
add("tasks_status_unknown", "GET", "/api/tasks?status=bogus", expect=400, param=("status",))
add("tasks_status_sql", "GET", "/api/tasks?status=%27%3B%20DROP%20TABLE%20tasks%3B--", expect=400,
    param=("status",))
add("tasks_status_nul", "GET", "/api/tasks?status=%00", expect=400)
add("tasks_status_5000_chars", "GET", "/api/tasks?status=" + "s" * 5000, expect=400)
add("tasks_status_twice", "GET", "/api/tasks?status=running&status=failed", expect=one(200, 400))
add("tasks_limit_negative", "GET", "/api/tasks?limit=-1", expect=400, param=("limit",))
add("tasks_limit_text", "GET", "/api/tasks?limit=ten", expect=400, param=("limit",))
add("tasks_limit_float", "GET", "/api/tasks?limit=1e9", expect=400, param=("limit",))
add("tasks_limit_overflow", "GET", "/api/tasks?limit=99999999999999999999999", expect=400, param=("limit",))
add("tasks_limit_1e9", "GET", "/api/tasks?limit=1000000000", expect=one(200, 400))
add("tasks_limit_zero", "GET", "/api/tasks?limit=0", expect=one(200, 400))
add("tasks_query_garbage", "GET", "/api/tasks?%zz=%zz&&&=", expect=one(200, 400))

# ---------------------------------------------------------------------------------------
# MCP over Streamable HTTP at /mcp

MCP = "/mcp"


def rpc(method, params=None, id=1, **extra):
    msg = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    msg.update(extra)
    return msg


INIT_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bad-input", "version": "1"}}
INITIALIZE = rpc("initialize", INIT_PARAMS)


_ids = iter(range(1000, 10**6))


def call(name, arguments):
    """A tools/call request with an id of its own."""
    return rpc("tools/call", {"name": name, "arguments": arguments}, id=next(_ids))


# without a session
add("mcp_malformed_json", "POST", MCP, body=b'{"jsonrpc": "2.0", "id": 1, "method": ', headers=MCP_HEADERS)
add("mcp_empty_body", "POST", MCP, body=b"", headers=MCP_HEADERS)
add("mcp_not_json", "POST", MCP, body=b"hello", headers=MCP_HEADERS)
add("mcp_invalid_utf8", "POST", MCP, body=b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}', headers=MCP_HEADERS)
add("mcp_deeply_nested", "POST", MCP,
    body=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":' + nested_arrays_json(100_000) + b"}",
    headers=MCP_HEADERS)
add("mcp_wrong_content_type", "POST", MCP, json=INITIALIZE,
    headers={"content-type": "text/plain", "accept": MCP_HEADERS["accept"]}, expect=one(400, 415))
add("mcp_no_accept", "POST", MCP, json=INITIALIZE, headers={"content-type": "application/json", "accept": None},
    expect=one(400, 406))
add("mcp_accept_json_only", "POST", MCP, json=INITIALIZE,
    headers={"content-type": "application/json", "accept": "application/json"}, expect=one(400, 406))
add("mcp_jsonrpc_1_0", "POST", MCP, json={**INITIALIZE, "jsonrpc": "1.0"}, headers=MCP_HEADERS, expect=MCP_ANY,
    mcp_error=True)
add("mcp_jsonrpc_missing", "POST", MCP, json={k: v for k, v in INITIALIZE.items() if k != "jsonrpc"},
    headers=MCP_HEADERS, expect=MCP_ANY, mcp_error=True)
add("mcp_jsonrpc_number", "POST", MCP, json={**INITIALIZE, "jsonrpc": 2.0}, headers=MCP_HEADERS, expect=MCP_ANY,
    mcp_error=True)
add("mcp_method_missing", "POST", MCP, json={"jsonrpc": "2.0", "id": 1}, headers=MCP_HEADERS, expect=MCP_ANY,
    mcp_error=True)
add("mcp_tools_list_without_session", "POST", MCP, json=rpc("tools/list"), headers=MCP_HEADERS, expect=MCP_ANY,
    mcp_error=True)
add("mcp_tools_call_without_session", "POST", MCP, json=call("read_file", {"path": "README.md"}),
    headers=MCP_HEADERS, expect=MCP_ANY, mcp_error=True)
add("mcp_unknown_session", "POST", MCP, json=rpc("tools/list"),
    headers={**MCP_HEADERS, "mcp-session-id": "no-such-session"}, expect=one(400, 404))
add("mcp_session_id_10kb", "POST", MCP, json=rpc("tools/list"),
    headers={**MCP_HEADERS, "mcp-session-id": "s" * 10_000}, expect=one(400, 404, 431))
add("mcp_batch_empty", "POST", MCP, json=[], headers=MCP_HEADERS, expect=MCP_ANY, mcp_error=True)
add("mcp_batch_initialize_and_list", "POST", MCP, json=[INITIALIZE, rpc("tools/list", id=2)], headers=MCP_HEADERS,
    expect=MCP_ANY)
add("mcp_batch_1000_pings", "POST", MCP, json=[rpc("ping", id=i) for i in range(1000)], headers=MCP_HEADERS,
    expect=MCP_ANY)
add("mcp_initialize_id_1e30", "POST", MCP, json={**INITIALIZE, "id": 10**30}, headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_initialize_id_float", "POST", MCP, json={**INITIALIZE, "id": 1.5}, headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_initialize_id_object", "POST", MCP, json={**INITIALIZE, "id": {"a": 1}}, headers=MCP_HEADERS,
    expect=MCP_ANY)
add("mcp_initialize_id_null", "POST", MCP, json={**INITIALIZE, "id": None}, headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_initialize_id_100kb_string", "POST", MCP, json={**INITIALIZE, "id": KB100}, headers=MCP_HEADERS,
    expect=MCP_ANY)
add("mcp_initialize_params_missing", "POST", MCP, json=rpc("initialize"), headers=MCP_HEADERS, expect=MCP_ANY,
    mcp_error=True)
add("mcp_initialize_params_array", "POST", MCP, json=rpc("initialize", [1, 2]), headers=MCP_HEADERS,
    expect=MCP_ANY, mcp_error=True)
add("mcp_initialize_bogus_protocol_version", "POST", MCP,
    json=rpc("initialize", {**INIT_PARAMS, "protocolVersion": "1999-01-01"}), headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_initialize_lone_surrogate", "POST", MCP,
    body=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
         b'"capabilities":{},"clientInfo":{"name":"\\ud800","version":"1"}}}', headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_response_without_session", "POST", MCP, json={"jsonrpc": "2.0", "id": 1, "result": {}},
    headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_notification_without_session", "POST", MCP, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
    headers=MCP_HEADERS, expect=MCP_ANY)
add("mcp_foreign_origin", "POST", MCP, json=INITIALIZE, headers={**MCP_HEADERS, "origin": "http://evil.example"},
    expect=403)
add("mcp_foreign_host", "POST", MCP, json=INITIALIZE, headers={**MCP_HEADERS, "host": "evil.example"}, expect=403)
add("mcp_get_without_accept", "GET", MCP, headers={"accept": "application/json"}, expect=one(400, 405, 406))
add("mcp_get_without_session", "GET", MCP, headers={"accept": "text/event-stream"}, expect=one(400, 404, 405))
add("mcp_get_unknown_session", "GET", MCP, headers={"accept": "text/event-stream", "mcp-session-id": "nope"},
    expect=one(400, 404, 405))
add("mcp_delete_without_session", "DELETE", MCP, expect=MCP_ANY)
add("mcp_delete_unknown_session", "DELETE", MCP, headers={"mcp-session-id": "nope"}, expect=MCP_ANY)
add("mcp_put", "PUT", MCP, json=INITIALIZE, headers=MCP_HEADERS, expect=405)
add("mcp_patch", "PATCH", MCP, json=INITIALIZE, headers=MCP_HEADERS, expect=405)
add("mcp_body_20mb", "POST", MCP, body=big_mcp_body, headers=MCP_HEADERS, expect=413, raw=True)

# inside an initialized session
S = MCP_SESSION_HEADERS
add("mcp_s_unknown_method", "POST", MCP, json=rpc("no/such/method", id=11), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_method_empty", "POST", MCP, json=rpc("", id=12), headers=S, expect=MCP_ANY, mcp_error=True)
add("mcp_s_method_number", "POST", MCP, json={"jsonrpc": "2.0", "id": 13, "method": 5}, headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_jsonrpc_1_0", "POST", MCP, json={**rpc("tools/list", id=14), "jsonrpc": "1.0"}, headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_bad_protocol_version_header", "POST", MCP, json=rpc("tools/list", id=15),
    headers={**S, "mcp-protocol-version": "1999-01-01"}, expect=CLIENT_ERRORS)
add("mcp_s_tools_list_bad_cursor", "POST", MCP, json=rpc("tools/list", {"cursor": 5}, id=16), headers=S,
    expect=MCP_ANY)
add("mcp_s_call_unknown_tool", "POST", MCP, json=call("delete_everything", {}), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_call_name_missing", "POST", MCP, json=rpc("tools/call", {"arguments": {}}, id=17), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_call_name_number", "POST", MCP, json=rpc("tools/call", {"name": 5}, id=18), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_call_arguments_string", "POST", MCP, json=call("read_file", "README.md"), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_call_arguments_array", "POST", MCP, json=call("read_file", ["README.md"]), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_call_arguments_number", "POST", MCP, json=call("read_file", 1), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_call_params_array", "POST", MCP, json=rpc("tools/call", ["read_file", {}], id=19), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_call_params_missing", "POST", MCP, json=rpc("tools/call", id=20), headers=S, expect=MCP_ANY,
    mcp_error=True)
add("mcp_s_read_file_escape", "POST", MCP, json=call("read_file", {"path": "../../etc/passwd"}), headers=S,
    expect=MCP_ANY, mcp_error=True, forbid=PASSWD_TEXT)
add("mcp_s_read_file_absolute", "POST", MCP, json=call("read_file", {"path": "/etc/passwd"}), headers=S,
    expect=MCP_ANY, mcp_error=True, forbid=PASSWD_TEXT)
add("mcp_s_read_file_git_config", "POST", MCP, json=call("read_file", {"path": ".git/config"}), headers=S,
    expect=MCP_ANY, mcp_error=True, forbid=GIT_TEXT)
add("mcp_s_read_file_long_path", "POST", MCP, json=call("read_file", {"path": "a" * 5000}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_read_file_below_a_file", "POST", MCP, json=call("read_file", {"path": "README.md/x"}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_read_file_nul", "POST", MCP, json=call("read_file", {"path": "README.md\u0000"}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_read_file_fifo", "POST", MCP, json=call("read_file", {"path": FIFO}), headers=S, expect=MCP_ANY,
    mcp_error=True, timeout=5.0)
add("mcp_s_read_file_1mb_path", "POST", MCP, json=call("read_file", {"path": "p" * (1024 * 1024)}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_search_docs_git_glob", "POST", MCP,
    json=call("search_docs", {"query": "repositoryformatversion", "glob": [".git", "*"]}), headers=S,
    expect=MCP_ANY, forbid=GIT_TEXT)
add("mcp_s_search_docs_glob_all", "POST", MCP,
    json=call("search_docs", {"query": "repositoryformatversion", "glob": ["**"]}), headers=S, expect=MCP_ANY,
    forbid=GIT_TEXT)
add("mcp_s_search_docs_glob_hidden", "POST", MCP,
    json=call("search_docs", {"query": "repositoryformatversion", "glob": [".*"]}), headers=S, expect=MCP_ANY,
    forbid=GIT_TEXT)
add("mcp_s_find_references_git_glob", "POST", MCP,
    json=call("find_references", {"symbol": "repositoryformatversion", "glob": [".git", "*"]}), headers=S,
    expect=MCP_ANY, forbid=GIT_TEXT)
add("mcp_s_git_diff_output_option", "POST", MCP, json=call("git_diff", {"from": "--output=" + GIT_OUTPUT_PROBE}),
    headers=S, expect=MCP_ANY, mcp_error=True)
add("mcp_s_git_diff_path_revision", "POST", MCP, json=call("git_diff", {"from": "HEAD:../../etc/passwd"}),
    headers=S, expect=MCP_ANY, mcp_error=True, forbid=PASSWD_TEXT)
add("mcp_s_git_diff_to_without_from", "POST", MCP, json=call("git_diff", {"to": "HEAD"}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_run_tests_unknown_command", "POST", MCP, json=call("run_tests", {"command": "sh"}), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_run_tests_option_filter", "POST", MCP, json=call("run_tests", {"command": "pytest", "filter": "--version"}),
    headers=S, expect=MCP_ANY, mcp_error=True)
add("mcp_s_id_1e30", "POST", MCP, json=rpc("tools/list", id=10**30), headers=S, expect=MCP_ANY)
add("mcp_s_id_2_pow_64", "POST", MCP, json=rpc("tools/list", id=2**64), headers=S, expect=MCP_ANY)
add("mcp_s_id_below_i64", "POST", MCP, json=rpc("tools/list", id=-(2**63) - 1), headers=S, expect=MCP_ANY)
add("mcp_s_id_float", "POST", MCP, json=rpc("tools/list", id=1e308), headers=S, expect=MCP_ANY)
add("mcp_s_id_bool", "POST", MCP, json=rpc("tools/list", id=True), headers=S, expect=MCP_ANY)
add("mcp_s_resources_read_passwd", "POST", MCP, json=rpc("resources/read", {"uri": "file:///etc/passwd"}, id=21),
    headers=S, expect=MCP_ANY, mcp_error=True, forbid=PASSWD_TEXT)
add("mcp_s_prompts_get_unknown", "POST", MCP, json=rpc("prompts/get", {"name": "x"}, id=22), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_logging_bad_level", "POST", MCP, json=rpc("logging/setLevel", {"level": "loudest"}, id=23), headers=S,
    expect=MCP_ANY, mcp_error=True)
add("mcp_s_initialize_again", "POST", MCP, json=rpc("initialize", INIT_PARAMS, id=24), headers=S, expect=MCP_ANY)
add("mcp_s_batch", "POST", MCP, json=[rpc("tools/list", id=25), rpc("tools/list", id=26)], headers=S,
    expect=MCP_ANY)
add("mcp_s_cancel_unknown_request", "POST", MCP,
    json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999_999}}, headers=S,
    expect=MCP_ANY)
add("mcp_s_response_to_nothing", "POST", MCP, json={"jsonrpc": "2.0", "id": 777, "result": {}}, headers=S,
    expect=MCP_ANY)
add("mcp_s_error_to_nothing", "POST", MCP,
    json={"jsonrpc": "2.0", "id": 778, "error": {"code": "x", "message": 5}}, headers=S, expect=MCP_ANY)
add("mcp_s_malformed_json", "POST", MCP, body=b'{"jsonrpc":"2.0","id":27,', headers=S)

# ---------------------------------------------------------------------------------------
# Tool calling, the Responses and Messages APIs, fill-in-the-middle: refused before a model runs

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
add("tools_name_with_spaces", "POST", CHAT,
    json=cheap_chat(tools=[{"type": "function", "function": {"name": "bad name!", "parameters": {}}}]), expect=400,
    param=("tools",))
add("tools_129", "POST", CHAT, json=cheap_chat(tools=[WEATHER] * 129), expect=400, param=("tools",))
add("tools_parameters_string", "POST", CHAT,
    json=cheap_chat(tools=[{"type": "function", "function": {"name": "f", "parameters": "object"}}]), expect=400,
    param=("tools",))
add("tools_schema_min_over_max", "POST", CHAT, json=cheap_chat(tools=[{"type": "function", "function": {
    "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "array", "minItems": 5, "maxItems": 2}}}}}]),
    expect=400, param=("tools",))
add("tools_schema_nested_deep", "POST", CHAT, json=cheap_chat(tools=[{"type": "function", "function": {
    "name": "f", "parameters": {"type": "object", "properties": {"a": nested_items(60)}}}}]), expect=400,
    param=("tools",))
add("tools_type_retrieval", "POST", CHAT, json=cheap_chat(tools=[{"type": "retrieval"}]), expect=400, param=("tools",))
add("tool_choice_unknown_function", "POST", CHAT,
    json=cheap_chat(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}), expect=400,
    param=("tool_choice",))
add("tool_choice_word", "POST", CHAT, json=cheap_chat(tools=[WEATHER], tool_choice="sometimes"), expect=400,
    param=("tool_choice",))
add("tool_choice_without_tools", "POST", CHAT, json=cheap_chat(tool_choice="required"), expect=400,
    param=("tool_choice",))
add("tools_with_grammar", "POST", CHAT, json=cheap_chat(tools=[WEATHER], tool_choice="required", grammar='root ::= "a"'),
    expect=400, param=("tools",))
add("tool_call_arguments_not_json", "POST", CHAT, json=cheap_chat(messages=[
    {"role": "user", "content": "hi"},
    {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{{{"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "x"}]), expect=OK_OR_400)
add("logprobs_true", "POST", CHAT, json=cheap_chat(logprobs=True, top_logprobs=3), expect=400, param=("logprobs",))
add("logit_bias_not_a_token", "POST", CHAT, json=cheap_chat(logit_bias={"abc": 1}), expect=400, param=("logit_bias",))
add("logit_bias_token_out_of_vocab", "POST", CHAT, json=cheap_chat(logit_bias={"1000000000": -100}), expect=400)
add("logit_bias_huge_bias", "POST", CHAT, json=cheap_chat(logit_bias={"1": 1e9}), expect=400, param=("logit_bias",))
add("presence_penalty_3", "POST", CHAT, json=cheap_chat(presence_penalty=3), expect=400, param=("presence_penalty",))
add("completion_echo", "POST", COMPLETIONS, json=cheap_completion(echo=True), expect=400, param=("echo",))
add("completion_suffix_number", "POST", COMPLETIONS, json=cheap_completion(suffix=5), expect=400)
add("model_retrieve_unknown", "GET", "/v1/models/nope", expect=404)
add("model_retrieve_long", "GET", "/v1/models/" + "a" * 4000, expect=one(404, 414))
add("infill_extra_65", "POST", "/infill", json={"input_prefix": "a", "input_extra": [{"filename": "x", "text": "y"}] * 65,
    "n_predict": 1}, expect=400, param=("input_extra",))
add("infill_prefix_number", "POST", "/infill", json={"input_prefix": 5}, expect=400)
add("responses_input_number", "POST", "/v1/responses", json={"model": "coder", "input": 5}, expect=400, param=("input",))
add("responses_unknown_previous", "POST", "/v1/responses",
    json={"model": "coder", "input": "hi", "previous_response_id": "resp_nope"}, expect=400,
    param=("previous_response_id",))
add("responses_item_reference", "POST", "/v1/responses",
    json={"model": "coder", "input": [{"type": "item_reference", "id": "x"}]}, expect=400, param=("input",))
add("responses_web_search_tool", "POST", "/v1/responses",
    json={"model": "coder", "input": "hi", "tools": [{"type": "web_search"}]}, expect=400, param=("tools",))
add("responses_max_output_tokens_0", "POST", "/v1/responses", json={"model": "coder", "input": "hi",
    "max_output_tokens": 0}, expect=400, param=("max_output_tokens",))
add("responses_get_unknown", "GET", "/v1/responses/resp_nope", expect=404)
add("responses_delete_unknown", "DELETE", "/v1/responses/resp_nope", expect=404)
MESSAGES = "/v1/messages"
ANTHROPIC_USER = [{"role": "user", "content": "hi"}]
add("messages_no_max_tokens", "POST", MESSAGES, json={"model": "coder", "messages": ANTHROPIC_USER}, expect=400)
add("messages_system_role", "POST", MESSAGES, json={"model": "coder", "max_tokens": 1,
    "messages": [{"role": "system", "content": "x"}]}, expect=400)
add("messages_max_tokens_huge", "POST", MESSAGES, json={"model": "coder", "max_tokens": 10**9,
    "messages": ANTHROPIC_USER}, expect=400)
add("messages_17_stop_sequences", "POST", MESSAGES, json={"model": "coder", "max_tokens": 1,
    "messages": ANTHROPIC_USER, "stop_sequences": [str(i) for i in range(17)]}, expect=400)
add("messages_image_block", "POST", MESSAGES, json={"model": "coder", "max_tokens": 1, "messages": [{"role": "user",
    "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]},
    expect=400)
add("messages_bad_tool_choice", "POST", MESSAGES, json={"model": "coder", "max_tokens": 1, "messages": ANTHROPIC_USER,
    "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "sometimes"}}, expect=400)
add("messages_server_tool", "POST", MESSAGES, json={"model": "coder", "max_tokens": 1, "messages": ANTHROPIC_USER,
    "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, expect=400)
add("messages_unknown_model", "POST", MESSAGES, json={"model": "nope", "max_tokens": 1, "messages": ANTHROPIC_USER},
    expect=404)
add("messages_malformed_json", "POST", MESSAGES, body=b'{"model": "coder",', headers=JSON_CT, expect=400)
add("count_tokens_no_messages", "POST", MESSAGES + "/count_tokens", json={"model": "coder"}, expect=400)

# ---------------------------------------------------------------------------------------

_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), sorted({n for n in _names if _names.count(n) > 1})
