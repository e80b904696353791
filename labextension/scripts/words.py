"""Write the kmodel word lists from ``kmagic.registry`` as JSON for the highlighter.

Run by ``jlpm build:words`` (through ``scripts/words.mjs``) before TypeScript is
compiled, so the front end always highlights exactly the words the compiler knows.
Needs only the standard library and the kmagic source tree next to ``labextension/``.

    python labextension/scripts/words.py            # write labextension/src/words.json
    python labextension/scripts/words.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGET = HERE.parent / "src" / "words.json"


def render() -> str:
    """The JSON text of ``kmagic.registry.word_lists()``, stable across runs."""
    sys.path.insert(0, str(REPO))
    from kmagic.registry import word_lists

    return json.dumps(word_lists(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} does not match kmagic.registry; run `jlpm build:words`", file=sys.stderr)
            return 1
        return 0
    if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
        TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
