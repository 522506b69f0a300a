"""The ``leak_check`` entry of the students shipped before the leak guard existed (not retrained).

    python benchmarks/card_leak_checks.py [--data DIR] [--write]

Each card is checked twice: on the training data its weights actually saw (these students were trained
before ``train/BSDS500-train-color`` lost the 67 BSDS500 photos now in ``train/BSDS500-rain100-test-scenes``,
so for them both folders are compared) against the test sets the card reports, and with its recipe as it
is today (``kdrestore check-leaks --recipe``: held-out validation part and the task's benchmark set).
Prints one line per card; ``--write`` stores the entry in ``src/kdrestore/pretrained/*/card.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from kdrestore.config import load_config  # noqa: E402
from kdrestore.data.leaks import find_leaks, image_set  # noqa: E402
from kdrestore.data.leakguard import LeakCheck, recipe_leak_check  # noqa: E402

# folder name in a card's training.data.path -> what that folder held when the shipped students trained
AT_TRAINING = {"BSDS500-train-color": ["train/BSDS500-train-color", "train/BSDS500-rain100-test-scenes"],
               "BSD400-gray": ["train/BSD400-gray"]}
# test set a card reports -> its folder today (SOTS-indoor-200 held 4 hazy images of the same 50 scenes)
TEST_FOLDERS = {"Set12": "denoise/Set12", "CBSD68": "denoise/CBSD68", "Rain100H": "derain/Rain100H",
                "SOTS-indoor-200": "dehaze/SOTS-indoor-50", "SOTS-indoor-50": "dehaze/SOTS-indoor-50"}
VALIDATED_ON = {"derain": "the first 10 Rain100H pairs", "dehaze": "the first 10 SOTS-indoor-200 pairs",
                "denoise-gray": "Set12", "denoise-rgb": "the first 12 CBSD68 images"}
# students trained on today's folders, validated on a held-out part of their training data
HELD_OUT_VALIDATION = {"dehaze-small", "derain-light", "denoise-gray-s25"}


def card_entry(name: str, card: dict, root: Path) -> dict:
    if name in HELD_OUT_VALIDATION:
        return recipe_entry(card, root)
    train = [image_set(root / f, label=f) for f in AT_TRAINING[card["training"]["data"]["path"]]]
    tests = sorted({TEST_FOLDERS[s["data"]] for s in card["scores"]})
    then = LeakCheck(find_leaks(train, [image_set(root / t, label=t) for t in tests]), [], root)
    entry = then.record()
    today = recipe_leak_check(load_config(REPO / card["training"]["recipe"]), tests=[root / t for t in tests], root=root)
    entry["compared"]["when"] = "the training data as it was when these weights were trained"
    entry["recipe_today"] = {"recipe": card["training"]["recipe"], "result": today.record()["result"],
                             "against": [f"{r.label} ({r.images} images, best score {r.highest:.3f})"
                                         for r in today.report.results]}
    kind = card["task"] + ("-gray" if card["task"] == "denoise" and card["channels"] == 1 else
                           "-rgb" if card["task"] == "denoise" else "")
    notes = [f"checked after shipping, not retrained (benchmarks/card_leak_checks.py); its training run "
             f"validated on {VALIDATED_ON[kind]} (a test set: monitored only, the last checkpoint was shipped)"]
    if then.leaked:
        notes.append(f"{then.leaked} of the test images it is scored on show scenes it was trained on: "
                     "its score on them is not a held-out result")
    entry["notes"] = notes
    return entry


def recipe_entry(card: dict, root: Path) -> dict:
    """A student trained on today's folders with a held-out validation part: its recipe checked as it is
    (training data against the validation part and the benchmark sets its card reports)."""
    tests = sorted({TEST_FOLDERS[s["data"]] for s in card["scores"] if s["data"] in TEST_FOLDERS})
    check = recipe_leak_check(load_config(REPO / card["training"]["recipe"]), tests=[root / t for t in tests], root=root)
    entry = check.record()
    entry["notes"] = list(entry.get("notes", [])) + [
        "checked after shipping (benchmarks/card_leak_checks.py) on the recipe's training data, which these weights "
        "were trained on; checkpoints were chosen on the recipe's held-out validation part"]
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("KDRESTORE_DATA", "../shared/data"))
    ap.add_argument("--write", action="store_true", help="store the entries in the shipped cards")
    args = ap.parse_args()
    root = Path(args.data)
    for path in sorted((REPO / "src" / "kdrestore" / "pretrained").glob("*/card.json")):
        card = json.loads(path.read_text(encoding="utf-8"))
        entry = card_entry(path.parent.name, card, root)
        against = "; ".join(f"{t['test']}: {t['leaked']}/{t['images']} leaked (best {t['highest_score']:.3f})"
                            for t in entry["compared"]["against"])
        print(f"{path.parent.name:<20} trained on {' + '.join(t['label'] for t in entry['compared']['train'])}: "
              f"{against}; recipe today: {entry.get('recipe_today', entry)['result']}")
        if args.write:
            keys = list(card)
            card["leak_check"] = entry
            order = keys[:keys.index("scores") + 1] + ["leak_check"] + [k for k in keys[keys.index("scores") + 1:]
                                                                        if k != "leak_check"]
            text = json.dumps({k: card[k] for k in order}, indent=2) + "\n"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    if args.write:
        print("updated the cards")


if __name__ == "__main__":
    main()
