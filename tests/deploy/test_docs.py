"""The repository explains itself: docs/RULES.md is linked from the README, every link of the
docs reaches a file of the repository, and no file cites a document the repository does not
hold."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# spelt in pieces, so that this file does not cite them itself
OUTSIDE = ["DOMAIN" + ".md", "CONTRACT" + ".md", "STYLE" + ".md", "shared/" + "docs/"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    citing = []
    for path in _tracked():
        if path.suffix in (".jar", ".png", ".gz", ".pyc"):
            continue
        text = path.read_text(errors="ignore")
        citing += [f"{path.relative_to(ROOT)}: {name}" for name in OUTSIDE if name in text]
    assert not citing, "cites what the repository does not hold:\n" + "\n".join(citing)


def test_the_rules_are_linked_from_the_readme_and_every_doc_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/RULES.md)" in readme
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(doc.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (doc.parent / target).resolve().exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)


def test_the_rules_cover_every_area_they_promise() -> None:
    rules = (ROOT / "docs" / "RULES.md").read_text()
    for heading in ("Tiers: fast up, slow down", "Signals", "Fees and tier benefits", "Points",
                    "Responsibility to a person", "Segments", "Branch reports"):
        assert f"## {heading}" in rules, heading
    for term in ("average daily AUM", "Watch", "Downgrade", "suppression", "contribution discount",
                 "holders_with_balance", "tier correspondence", "defaults.yaml"):
        assert term.lower() in rules.lower(), term
