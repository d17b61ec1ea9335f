"""UTF-8 bytes per token by content type, measured with a public tokenizer: the table in
docs/reservation-bounds.md, reproducible.

The only public Claude tokenizer is the ``tokenizer.json`` the ``anthropic`` Python SDK shipped up to 0.38
(a Claude 2-era vocabulary: a proxy for today's models, not their exact counts). It is a bench tool, never a
dependency of the library; install it beside the project, in a separate environment if you like:

    python3 -m venv /tmp/tok && /tmp/tok/bin/pip install 'anthropic<0.39'
    /tmp/tok/bin/python bench/token_density.py

or point ``--tokenizer-json`` at any Hugging Face ``tokenizer.json`` (needs the ``tokenizers`` package).
Without a tokenizer the script says so and exits without measuring.

For each content type it prints bytes per token, how the old 3-bytes-per-token estimate compares with the
real count, and whether the reservation's text bound holds: tokens <= UTF-8 bytes, or the NFKC form's
bytes where longer (the last row is text NFKC expands, which beats one token per raw byte).
"""

from __future__ import annotations

import argparse
import base64
import inspect
import json
import random
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

OLD_BYTES_PER_TOKEN = 3.0
SAMPLE_BYTES = 40_000


def load_tokenizer(path: str | None) -> Callable[[str], int] | None:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    if path is not None:
        tokenizer: Any = Tokenizer.from_file(path)
    else:
        try:
            from anthropic._tokenizers import sync_get_tokenizer
        except ImportError:
            return None
        tokenizer = sync_get_tokenizer()
    return lambda text: len(tokenizer.encode(text).ids)


def _clip(text: str) -> str:
    while len(text.encode()) > SAMPLE_BYTES:
        text = text[: len(text) * 9 // 10]
    return text


def samples() -> dict[str, str]:
    """Deterministic samples: standard-library prose and code, generated data, fixed CJK sentences."""
    import argparse as prose_module
    import json.decoder as code_module

    rng = random.Random(20)
    prose = " ".join(
        line.strip()
        for line in (prose_module.__doc__ or "").splitlines()
        if line.strip() and "    " not in line
    )
    records = [
        {
            "id": rng.randrange(10**6),
            "name": f"item-{i}",
            "price": round(rng.random() * 100, 2),
            "tags": ["a", "b"],
        }
        for i in range(2000)
    ]
    cjk = "東京は日本の首都で、人口は約千四百万人です。"
    cjk += "予算の上限を超えないように、呼び出しの前に最悪の費用を予約します。"
    cjk += "北京是中国的首都，也是政治和文化中心。我们在调用之前预留最坏情况的费用。"
    return {
        "English prose": _clip((prose + " ") * 40),
        "Python code": _clip(inspect.getsource(code_module) * 4),
        "JSON": _clip(json.dumps(records)),
        "digits": _clip("".join(rng.choice("0123456789") for _ in range(SAMPLE_BYTES))),
        "random hex": _clip(rng.randbytes(SAMPLE_BYTES).hex()),
        "base64": _clip(base64.b64encode(rng.randbytes(SAMPLE_BYTES)).decode()),
        "CJK": _clip(cjk * 200),
        "emoji": _clip("".join(chr(rng.randrange(0x1F300, 0x1F5FF)) for _ in range(SAMPLE_BYTES // 4))),
        "math symbols": _clip("".join(chr(rng.randrange(0x2200, 0x22FF)) for _ in range(SAMPLE_BYTES // 3))),
        "NFKC-expanding (U+FDFA)": "\ufdfa" * 2000,
    }


def text_bound(text: str) -> int:
    """The reservation's text bound (bedrock_budget.extract.values.token_bytes), without importing it."""
    raw = len(text.encode())
    return max(raw, len(unicodedata.normalize("NFKC", text).encode()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tokenizer-json", help="a Hugging Face tokenizer.json (default: the anthropic SDK's)"
    )
    args = parser.parse_args()
    count = load_tokenizer(args.tokenizer_json)
    if count is None:
        print(
            "no public tokenizer installed: install 'anthropic<0.39' (it bundles the Claude tokenizer) or "
            "the 'tokenizers' package and pass --tokenizer-json; nothing measured"
        )
        return 0
    print(f"{'content':<26} {'bytes/token':>11} {'real / old estimate':>20} {'tokens <= bound':>16}")
    for name, text in samples().items():
        size = len(text.encode())
        tokens = count(text)
        old_estimate = size / OLD_BYTES_PER_TOKEN
        holds = "yes" if tokens <= text_bound(text) else "NO"
        print(f"{name:<26} {size / tokens:>11.2f} {tokens / old_estimate:>19.2f}x {holds:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
