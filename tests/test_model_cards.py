"""pretrained/README.md describes the fields the shipped cards really have (and only those)."""
import json
import re
from pathlib import Path

import pytest

from kdrestore.models.shipped import CARD_REQUIRED, PRETRAINED_DIR, read_card, shipped_names

README = (PRETRAINED_DIR / "README.md").read_text(encoding="utf-8")


def documented() -> dict[str, str]:
    """Card keys of the README's table -> the meaning column."""
    rows = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] in ("yes", "no"):
            for key in re.findall(r"`(\w+)`", cells[0]):
                rows[key] = cells[2]
    return rows


def example() -> dict:
    return json.loads(README.split("```json", 1)[1].split("```", 1)[0])


def sub_keys(meaning: str, before: str) -> set[str]:
    """The backquoted names listed in a meaning after ``before`` (up to its nested parentheses)."""
    text = meaning.split(before, 1)[1]
    return {k for k in re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", text))}


@pytest.mark.parametrize("name", shipped_names())
def test_every_card_field_is_documented_with_its_real_shape(name):
    card = read_card(PRETRAINED_DIR / name)
    table = documented()
    assert set(card) <= set(table), f"{name}: undocumented card fields {set(card) - set(table)}"
    assert all(table[k] for k in CARD_REQUIRED)
    score_keys = sub_keys(table["scores"], "a list")
    for score in card.get("scores", []):
        assert set(score) == score_keys, f"{name}: scores fields {sorted(score)} vs README {sorted(score_keys)}"
    training = sub_keys(table["training"], "a mapping")
    assert set(card.get("training", {})) <= training, f"{name}: {set(card['training']) - training}"


def test_the_readme_example_is_a_card_of_the_documented_shape():
    card, table = example(), documented()
    assert set(card) <= set(table) and set(CARD_REQUIRED) <= set(card)
    assert all(set(s) == sub_keys(table["scores"], "a list") for s in card["scores"])
    shipped = read_card(PRETRAINED_DIR / card_name(card))
    assert {k: shipped[k] for k in ("model", "task", "channels", "params")} == \
        {k: card[k] for k in ("model", "task", "channels", "params")}


def card_name(card: dict) -> str:
    return re.search(r"--name (\S+)", card["command"]).group(1)


def test_the_shipped_list_names_every_folder():
    line = next(line for line in README.splitlines() if line.startswith("Shipped:"))
    assert set(re.findall(r"`([\w-]+)`", line)) == set(shipped_names())
