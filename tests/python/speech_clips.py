"""The spoken coding requests of the speech tests and benches/speech.py: espeak-ng voices,
speeds and file formats, and the word error rate they are scored by."""

import re
import subprocess

# (spoken text, espeak-ng voice, words a minute, file format)
CLIPS = [
    ("Fix the add function in calc dot py, it subtracts instead of adding.", "en-us", 150, "wav"),
    ("Add a function called is even to a new file named util dot py.", "en-gb", 170, "mp3"),
    ("The test named test parse config fails with a key error.", "en+f3", 160, "flac"),
    ("Please rename the class user manager to account manager everywhere.", "en-us+m3", 140, "ogg"),
    ("Make the default timeout 30 seconds instead of 10.", "en", 180, "wav"),
    ("Write a function that reverses a string in Rust.", "en-us", 200, "wav"),
    ("The server crashes when the request body is empty.", "en+f2", 150, "mp3"),
    ("Add a verbose flag to the command line interface.", "en-gb", 160, "wav"),
    ("Sort the list of names in alphabetical order before printing it.", "en-us+f4", 170, "flac"),
    ("Return an empty list when the input file does not exist.", "en+m1", 150, "wav"),
]

def words(text):
    """Lower-case words; `calc.py` is read as `calc dot py`, as it is spoken."""
    text = re.sub(r"(\w)\.(\w)", r"\1 dot \2", text.lower()).replace("-", " ")
    return re.sub(r"[^a-z0-9' ]+", " ", text).split()


def wer(reference, hypothesis):
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / len(ref)


def speak(directory, index, text, voice, speed, fmt):
    wav = directory / f"clip{index}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    if fmt == "wav":
        return wav
    out = directory / f"clip{index}.{fmt}"
    subprocess.run(["sox", str(wav), str(out)], check=True)
    return out


