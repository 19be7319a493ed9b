"""Speech to text on this machine, side by side in one run: quorum's Whisper (candle,
through `/v1/audio/transcriptions` of a running server) and faster-whisper (CTranslate2)
on the same tiny.en weights, greedy (beam 1), the same threads, interleaved clip by clip.
Prints each clip's word error rate and real-time factor (seconds of work per second of
audio) for both, then their medians.

    python benches/speech.py URL [--threads 2] [--rounds 2]

URL is a quorum server (`quorum serve`); faster-whisper comes from the bench venv
(`pip install faster-whisper`). The clips are the speech tests' own (tests/python/speech_clips.py).
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "python"))
from speech_clips import CLIPS, speak, wer  # noqa: E402

MODEL_DIR = pathlib.Path.home() / ".cache" / "quorum" / "models" / "whisper-tiny.en"


def duration(path):
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model-dir", default=str(MODEL_DIR))
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    reference = WhisperModel(args.model_dir, device="cpu", compute_type="float32", cpu_threads=args.threads)
    work = pathlib.Path(tempfile.mkdtemp())
    clips = [(text, speak(work, i, text, voice, speed, fmt)) for i, (text, voice, speed, fmt) in enumerate(CLIPS)]
    rows = []
    for text, path in clips:
        secs = duration(path)
        q_times, f_times = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            r = httpx.post(f"{args.url}/v1/audio/transcriptions", files={"file": (path.name, path.read_bytes())},
                           data={"model": "whisper-1"}, timeout=600)
            q_times.append(time.perf_counter() - start)
            r.raise_for_status()
            q_text = r.json()["text"]
            start = time.perf_counter()
            segments, _ = reference.transcribe(str(path), beam_size=1, temperature=0.0, language="en",
                                               condition_on_previous_text=False, vad_filter=False)
            f_text = " ".join(s.text.strip() for s in segments)
            f_times.append(time.perf_counter() - start)
        rows.append((path.name, secs, statistics.median(q_times) / secs, wer(text, q_text),
                     statistics.median(f_times) / secs, wer(text, f_text), q_text, f_text))
    print("| clip | audio s | quorum RTF | quorum WER | faster-whisper RTF | faster-whisper WER |")
    print("|---|---|---|---|---|---|")
    for name, secs, q_rtf, q_wer, f_rtf, f_wer, _, _ in rows:
        print(f"| {name} | {secs:.1f} | {q_rtf:.3f} | {q_wer:.2f} | {f_rtf:.3f} | {f_wer:.2f} |")
    med = lambda i: statistics.median(r[i] for r in rows)  # noqa: E731
    mean = lambda i: sum(r[i] for r in rows) / len(rows)  # noqa: E731
    print(f"| median RTF / mean WER | | {med(2):.3f} | {mean(3):.3f} | {med(4):.3f} | {mean(5):.3f} |")
    print(f"quorum / faster-whisper time: {med(2) / med(4):.2f}x")
    for name, _, _, _, _, _, q_text, f_text in rows:
        print(f"{name}\n  quorum:         {q_text}\n  faster-whisper: {f_text}")


if __name__ == "__main__":
    main()
